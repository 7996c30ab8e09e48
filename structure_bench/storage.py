"""A task's arrays and their storage form: ``TaskArrays`` (everything a task generates),
``flatten``/``unflatten`` (to and from named arrays plus a JSON layout, each structure as its kind
stores it) and the exact ``fingerprint`` of the named arrays. The cache stores this form; the
identity summarises it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from structure_bench.kinds import kind_named, kind_of
from structure_bench.structures import Structure, frame_from_arrays, frame_to_arrays

@dataclass
class TaskArrays:
    """Everything a task generates, over all samples.

    activations : site -> [n_samples, d_site] float32.
    inputs : DataFrame with n_samples rows (the task's variables).
    structures : site -> structure name -> structure (per-sample arrays over all samples).
    train_idx, test_idx : disjoint integer indices into the samples.
    targets : [n_samples] int class labels for the model, or None for tasks without one.
    """

    activations: dict[str, np.ndarray]
    inputs: pd.DataFrame
    structures: dict[str, dict[str, Structure]]
    train_idx: np.ndarray
    test_idx: np.ndarray
    targets: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.inputs)
        for site, X in self.activations.items():
            if X.dtype != np.float32 or X.ndim != 2 or X.shape[0] != n:
                raise ValueError(
                    f"site {site!r}: activations must be float32 [{n}, d], got {X.dtype} {X.shape}"
                )
        if set(self.structures) - set(self.activations):
            raise ValueError(f"structures name unknown sites {set(self.structures) - set(self.activations)}")
        self.train_idx = np.asarray(self.train_idx, dtype=np.int64)
        self.test_idx = np.asarray(self.test_idx, dtype=np.int64)
        if np.intersect1d(self.train_idx, self.test_idx).size:
            raise ValueError("train and test splits overlap")
        if self.targets is not None and len(self.targets) != n:
            raise ValueError(f"targets must have {n} entries, got {len(self.targets)}")


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
