"""Export a task's activations for trainers elsewhere (``structure-bench export``).

The folder holds what any trainer reads, and nothing that executes on load:

- ``activations.safetensors``: float32 tensors ``train`` [n_train, d] and ``test`` [n_test, d];
- ``train.npy``, ``test.npy``: the same arrays for NumPy-only code;
- ``inputs.csv``: the inputs of every sample of both splits, in the arrays' row order, with a
  ``split`` column;
- ``manifest.json``: the task's id, version, portable identity and fingerprint, the site, the
  shapes and split sizes, the task's grid and main score, and the sha256 of every file.

A dictionary trained on these arrays is scored against the same task by its identity: the
manifest's ``task_identity`` is what ``Task.identity`` gives for the same data on any machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.numpy import save_file

from structure_bench.errors import StructureBenchError
from structure_bench.identity import file_sha256
from structure_bench.registry import load_task
from structure_bench.results import file_mode, write_json, write_text
from structure_bench.provenance import package_version

EXPORT_VERSION = 1
SPLITS = ("train", "test")
MANIFEST = "manifest.json"


def export_task(task_id: str, out: str | Path, site: str | None = None) -> dict[str, Any]:
    """Write ``task_id``'s train and test activations at ``site`` (default: the task's default
    site), its inputs and a manifest into ``out``; returns the manifest.

    Raises StructureBenchError (one line) for an unknown task or site, or an ``out`` that is a file.
    """
    task = load_task(task_id)
    site = site or task.metadata.default_site
    if site not in task.sites:
        raise StructureBenchError(f"task {task.id} has no site {site!r} (its sites: {', '.join(task.sites)})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StructureBenchError(f"export: {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    arrays = {split: np.ascontiguousarray(task.activations(site, split), dtype=np.float32) for split in SPLITS}
    save_file(arrays, str(out / "activations.safetensors"), metadata={"task": task.id, "site": site, "task_identity": task.identity})
    (out / "activations.safetensors").chmod(file_mode())  # safetensors writes 0600; the rest are as the user's umask
    for split, array in arrays.items():
        np.save(out / f"{split}.npy", array)
    inputs = pd.concat([task.inputs(split).assign(split=split) for split in SPLITS], ignore_index=True)
    write_text(out / "inputs.csv", inputs.to_csv(index=False))
    files = ["activations.safetensors", *(f"{split}.npy" for split in SPLITS), "inputs.csv"]
    manifest = {
        "export_version": EXPORT_VERSION,
        "task": task.id,
        "version": task.metadata.version,
        "task_identity": task.identity,
        "task_fingerprint": task.fingerprint,
        "site": site,
        "d": int(arrays["train"].shape[1]),
        "dtype": "float32",
        "splits": {split: int(len(array)) for split, array in arrays.items()},
        "main_score": task.metadata.main_score,
        "grid": [{"n_latents": cell.n_latents, "l0_target": cell.l0_target} for cell in task.metadata.grid],
        "package_version": package_version(),
        "files": {name: file_sha256(out / name) for name in files},
    }
    write_json(out / MANIFEST, manifest)
    return manifest
