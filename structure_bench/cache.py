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
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from structure_bench.kinds import kind_named, kind_of
from structure_bench.structures import frame_from_arrays, frame_to_arrays

if TYPE_CHECKING:
    from structure_bench.structures import Structure
    from structure_bench.task import Task, TaskArrays

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


# -- flattening to named arrays -----------------------------------------------------------

def _structure_prefix(site: str, name: str) -> str:
    return f"structures/{site}/{name}/"


def flatten(arrays: TaskArrays, reference: bool = False) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """TaskArrays -> (named arrays, JSON-able layout) for storage and fingerprinting.

    Each structure is stored as its kind makes it (``Kind.to_arrays``) under
    ``structures/<site>/<name>/``, its meta with the ``kind`` it is read back by. With
    ``reference``, each structure is in the form its kind has the task's identity summarise
    (``Kind.reference_form``) instead, which need not be readable back.
    """
    flat: dict[str, np.ndarray] = {}
    layout: dict[str, Any] = {"sites": list(arrays.activations), "structures": {}}
    for site, X in arrays.activations.items():
        flat[f"activations/{site}"] = X
    input_arrays, layout["inputs"] = frame_to_arrays("inputs", arrays.inputs)
    flat.update(input_arrays)
    flat["split/train"] = arrays.train_idx
    flat["split/test"] = arrays.test_idx
    if arrays.targets is not None:
        flat["targets"] = np.asarray(arrays.targets)
    for key, value in arrays.extra.items():
        flat[f"extra/{key}"] = np.asarray(value)
    layout["extra"] = list(arrays.extra)
    for site, structures in arrays.structures.items():
        layout["structures"][site] = {}
        for name, structure in structures.items():
            kind = kind_of(structure)
            s_arrays, s_meta = kind.to_arrays(structure)
            s_meta = {"kind": structure.kind, **s_meta}
            if reference:
                s_arrays, s_meta = kind.reference_form(s_arrays, s_meta)
            flat.update({_structure_prefix(site, name) + key: value for key, value in s_arrays.items()})
            layout["structures"][site][name] = s_meta
    return flat, layout


def _structure_from_arrays(site: str, name: str, meta: dict[str, Any], flat: Mapping[str, np.ndarray]) -> Structure:
    prefix = _structure_prefix(site, name)
    own = {key[len(prefix):]: value for key, value in flat.items() if key.startswith(prefix)}
    return kind_named(meta["kind"]).from_arrays(name, own, meta)


def unflatten(flat: Mapping[str, np.ndarray], layout: dict[str, Any]) -> TaskArrays:
    from structure_bench.task import TaskArrays

    return TaskArrays(
        activations={site: flat[f"activations/{site}"] for site in layout["sites"]},
        inputs=frame_from_arrays("inputs", layout["inputs"], flat),
        structures={
            site: {name: _structure_from_arrays(site, name, meta, flat) for name, meta in structures.items()}
            for site, structures in layout["structures"].items()
        },
        train_idx=flat["split/train"],
        test_idx=flat["split/test"],
        targets=flat["targets"] if "targets" in flat else None,
        extra={key: flat[f"extra/{key}"] for key in layout["extra"]},
    )


def fingerprint(flat: dict[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order (this machine only)."""
    digest = hashlib.sha256()
    for name in sorted(flat):
        array = np.ascontiguousarray(flat[name])
        if array.dtype.hasobject:
            # Object arrays hash their pointers and cannot be stored without pickle.
            raise ValueError(f"task array {name!r} has dtype object: store numbers (e.g. an integer code) instead")
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def source_hash(task: Task) -> str:
    """Hash of what defines the stored bytes: the task's files and the code that stores and summarises them."""
    from structure_bench import identity, kinds, structures

    storing = [
        Path(structures.__file__), *sorted(Path(kinds.__file__).parent.glob("*.py")), Path(identity.__file__), Path(__file__)
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
    from structure_bench.identity import statistics

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
    summary = statistics(arrays)
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
