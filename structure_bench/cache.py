"""The activation cache: generate once, verify on every load.

Layout: ``$STRUCTURE_BENCH_CACHE/<task id>-<hash of kwargs>/{arrays.npz, manifest.json}``.
The manifest records the task's source hash (its code and checkpoints), the fingerprint of the
arrays and their reference statistics (``structure_bench.identity``, so a cached load does not
recompute them). A cache whose arrays no longer match the fingerprint (corrupt) or whose source
hash differs (stale) is rebuilt with a warning, never used.

The fingerprint hashes exact bytes, so it holds on this machine only: regenerated on another CPU,
float arrays may differ in the last bit. What identifies a task across machines is its ``identity``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from structure_bench import identity, kinds, storage, structures
from structure_bench.storage import TaskArrays, fingerprint, flatten, unflatten

if TYPE_CHECKING:
    from structure_bench.task import Task

CACHE_ENV = "STRUCTURE_BENCH_CACHE"
FORMAT_VERSION = 2  # 2: a structure's arrays and meta are its kind's (``Kind.to_arrays``)


class CacheWarning(UserWarning):
    """A cache entry was corrupt or stale and has been rebuilt."""


def cache_root() -> Path:
    """The cache directory: ``$STRUCTURE_BENCH_CACHE`` or ``~/.cache/structure_bench``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "structure_bench"


def source_hash(task: Task) -> str:
    """Hash of what defines the stored bytes: the task's files and the code that stores and summarises them."""
    storing = [
        Path(structures.__file__), *sorted(Path(kinds.__file__).parent.glob("*.py")), Path(storage.__file__), Path(identity.__file__), Path(__file__)
    ]
    digest = hashlib.sha256(f"format={FORMAT_VERSION}".encode())
    for path in sorted(task.source_files()) + storing:
        digest.update(path.name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def entry_dir(task: Task) -> Path:
    kwargs = json.dumps(getattr(task, "kwargs", {}), sort_keys=True, default=str)
    key = hashlib.sha256(kwargs.encode()).hexdigest()[:12]
    return cache_root() / f"{task.id}-{key}"


def discard(task: Task) -> None:
    """Delete the task's cache entry, if there is one (for single-use tasks: hidden instances)."""
    shutil.rmtree(entry_dir(task), ignore_errors=True)


# -- load / store ---------------------------------------------------------------------------

def _load(directory: Path, expected_source: str) -> tuple[TaskArrays, str, dict[str, Any]] | str:
    """The cached arrays, fingerprint and statistics, or the reason they cannot be used."""
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("source_hash") != expected_source:
            return "stale (the task's code or checkpoint changed)"
        statistics = manifest["statistics"]
        with np.load(directory / "arrays.npz", allow_pickle=False) as npz:
            flat = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError, json.JSONDecodeError, EOFError) as exc:
        return f"corrupt ({type(exc).__name__}: {exc})"
    except Exception as exc:  # zipfile.BadZipFile and friends
        return f"corrupt ({type(exc).__name__}: {exc})"
    actual = fingerprint(flat)
    if actual != manifest.get("fingerprint"):
        return "corrupt (arrays do not match the recorded fingerprint)"
    try:
        return unflatten(flat, manifest["layout"]), actual, statistics
    except (KeyError, ValueError) as exc:
        return f"corrupt (layout does not match the arrays: {exc})"


def _store(directory: Path, flat: dict[str, np.ndarray], manifest: dict[str, Any]) -> None:
    """Write atomically: a finished entry or none, even if interrupted."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        np.savez(tmp / "arrays.npz", **flat)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_or_generate(task: Task) -> tuple[TaskArrays, str, dict[str, Any]]:
    """The task's arrays, fingerprint and reference statistics, from a verified cache entry or freshly generated."""

    directory = entry_dir(task)
    expected_source = source_hash(task)
    if directory.exists():
        loaded = _load(directory, expected_source)
        if not isinstance(loaded, str):
            return loaded
        warnings.warn(
            f"cache for {task.id} at {directory} is {loaded}; rebuilding", CacheWarning, stacklevel=3
        )
    arrays = task.generate()
    flat, layout = flatten(arrays)
    digest = fingerprint(flat)
    summary = identity.statistics(arrays)
    manifest = {
        "task": task.id,
        "kwargs": getattr(task, "kwargs", {}),
        "source_hash": expected_source,
        "fingerprint": digest,
        "format": FORMAT_VERSION,
        "layout": layout,
        "statistics": summary,
    }
    try:
        _store(directory, flat, manifest)
    except OSError as exc:
        warnings.warn(f"could not write cache for {task.id} at {directory}: {exc}", CacheWarning, stacklevel=3)
    # Serve what round-trips through storage so cached and fresh runs see identical objects.
    return unflatten(flat, layout), digest, summary
