"""Provenance of a record: the code (package version, git commit, the method's source digest),
the machine, and the unit's peak memory."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np

from structure_bench.errors import StructureBenchError
from structure_bench.methods import get_method, method_source
from structure_bench.version import __version__


def package_version() -> str:
    return __version__


def method_source_of(spec: str) -> str | None:
    """The method's source digest (``method_source``), or None when it cannot be imported."""
    try:
        return method_source(get_method(spec))
    except StructureBenchError:
        return None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the structure_bench source tree, or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty else "")


@functools.lru_cache(maxsize=1)
def hardware() -> dict[str, Any]:
    import torch

    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
    }


class PeakMemory:
    """Peak resident memory (MB) of this process while the block runs, sampled every 5 ms."""

    _page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 0.0

    def __init__(self) -> None:
        self.peak_mb: float | None = None
        self._stop = threading.Event()

    def _rss_mb(self) -> float | None:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * self._page_mb
        except OSError:
            return None

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            rss = self._rss_mb()
            if rss is not None:
                self.peak_mb = max(self.peak_mb or 0.0, rss)

    def __enter__(self) -> PeakMemory:
        self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        rss = self._rss_mb()
        if rss is not None:
            self.peak_mb = max(self.peak_mb or 0.0, rss)
