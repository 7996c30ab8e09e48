"""The installed package's version (what records name as ``package_version``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("structure-bench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
