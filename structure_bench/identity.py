"""A task's portable identity: what defines the task, not the bytes of its arrays.

The exact ``fingerprint`` (``storage.fingerprint``) hashes every array's bytes; it checks the
integrity of this machine's cache and nothing more, because float arrays differ in the last bit
from one CPU to another (OpenBLAS and MKL choose other kernels, numpy's AVX-512 ``**`` and ``arctan2`` are not
libm's). ``Task.identity`` is the same on every machine:

    identity = sha256(canonical JSON {"definition": definition(task),
                                      "statistics": rounded(reference statistics)})

definition : the task id, its constructor kwargs (``task.kwargs``) and the sha256 of each shipped
    data file (``Task.data_files()``: checkpoints).
reference statistics (``statistics``) : a summary of the generated arrays (``storage.flatten``'s
    names) that survives last-bit differences and still detects a real change. Integer, bool and
    string arrays: sha256 of canonical bytes (little-endian 64-bit integers, UTF-8 strings), exact.
    Float arrays: dtype, shape, the positions of NaN/inf (exact), min, max and RMS, and the mean
    and RMS of each of ``N_CHUNKS`` contiguous chunks of the flattened array. A subspace basis is
    defined only up to a rotation within the subspace (the pizza's and the group's embedding planes
    come from an SVD, whose vectors' signs and rotations within equal singular values vary with
    the LAPACK kernel: pizza-ideal-v1's first plane comes back rotated under
    ``OPENBLAS_CORETYPE=Sandybridge``), so a basis B [r, d] is summarised by its projector
    B^T B [d, d]. The layout (sites, structure kinds, subspace labels, columns) is compared exactly.

A built-in task's statistics are pinned in ``tasks/<folder>/identity.json``. On load they are
compared with the pin: every float statistic within ``RTOL`` times the pinned array's RMS, and
everything else equal, gives the identity from the *pinned* statistics, identical on every
machine. Anything else warns (``IdentityWarning``, naming the first differing array and by how
much) and takes the identity from this machine's statistics. A task without a pin (a user's own,
or a built-in made with other kwargs) gets its identity from this machine's statistics: stable on
this machine, usually elsewhere, but not guaranteed; pin it (``structure-bench identity --pin``) to
make it portable.

Rounding (``DIGITS``): before hashing, each float statistic v of an array becomes the integer
floor(v / q + c), q = 2^e 10^-4 with e = floor(log2(RMS) + c): 4 significant digits of the array's
scale. The offset c = (3 - sqrt 5) / 2 is far from every fraction with a small denominator, so the
bucket edges stay off the values exact constructions produce (a projector's RMS sqrt(rank) / d is
often a power of two, pizza-ideal-v1's chunk means are 1/96), where a last-bit difference would
otherwise cross an edge. Pinned statistics are rounded the same way, so pinning a task does not
change its identity on the machine that pinned it.

Tolerance (``RTOL`` = 1e-5 of the pinned array's RMS), by measurement: regenerating every built-in
task under OpenBLAS's Haswell, Sandybridge, Nehalem and Prescott kernels, numpy without its AVX2 and
AVX-512 code paths (``NPY_DISABLE_CPU_FEATURES``), torch's default kernels
(``ATEN_CPU_CAPABILITY=default``), MKL limited to AVX2 or SSE4.2 (``MKL_ENABLE_INSTRUCTIONS``), and
all of these at once, on an AVX-512 Xeon, moved no statistic by more than 1.2e-14 of its array's
RMS (and no unpinned identity either). The tolerance leaves room for far larger platform noise:
every float32 activation of superposition-v1 one ulp up moves a statistic by 4.7e-7 (its minimum).
Real changes move them by more: superposition-v1 with noise_std 0.01001 instead of 0.01 by 5.6e-5,
0.0101 by 5.6e-4, one of its 64 feature directions redrawn by 0.65.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from structure_bench.task import Task, TaskArrays

PIN_FILE = "identity.json"
N_CHUNKS = 32
RTOL = 1e-5
DIGITS = 4
_OFFSET = (3 - math.sqrt(5)) / 2  # see "Rounding" in the module docstring
FLOAT_STATISTICS = ("min", "max", "rms", "chunk_mean", "chunk_rms")

Status = Literal["pinned", "differs", "other definition", "unpinned"]


class IdentityWarning(UserWarning):
    """A task's arrays differ from its pinned reference statistics beyond the tolerance."""


# -- what defines a task --------------------------------------------------------------------

def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a directory's files (relative name and bytes, sorted), read in blocks."""
    path = Path(path)
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if item.is_file():
            if path.is_dir():
                digest.update(item.relative_to(path).as_posix().encode())
            with open(item, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def definition(task: Task) -> dict[str, Any]:
    """The task id, its constructor kwargs and the sha256 of each of its data files (by name)."""
    return {
        "task": task.id,
        "kwargs": json.loads(json.dumps(task.kwargs, sort_keys=True, default=str)),
        "data_files": {Path(path).name: file_sha256(path) for path in task.data_files()},
    }


# -- reference statistics -------------------------------------------------------------------

def _exact_summary(array: np.ndarray) -> dict[str, Any]:
    """An integer, bool or string array: its kind, shape and the sha256 of canonical bytes."""
    kind = array.dtype.kind
    if kind == "b":
        name, data = "bool", array.astype(np.uint8).tobytes()
    elif kind == "i":
        name, data = "int", array.astype("<i8").tobytes()
    elif kind == "u":
        name, data = "uint", array.astype("<u8").tobytes()
    elif kind in "US":
        name, data = "str", "\0".join(str(v) for v in array.ravel().tolist()).encode()
    else:
        raise ValueError(f"cannot summarise an array of dtype {array.dtype}")
    return {"kind": name, "shape": list(array.shape), "sha256": hashlib.sha256(data).hexdigest()}


def _float_summary(array: np.ndarray) -> dict[str, Any]:
    """A float array [any shape]: dtype, shape, NaN/inf positions, min, max, RMS, per-chunk mean and RMS.

    Non-finite entries count as 0 in the moments; their positions are hashed exactly.
    """
    values = np.asarray(array, dtype=np.float64).ravel()
    finite = np.isfinite(values)
    clean = np.where(finite, values, 0.0)
    chunks = np.array_split(clean, min(N_CHUNKS, clean.size)) if clean.size else []
    return {
        "kind": f"float{array.dtype.itemsize * 8}",
        "shape": list(array.shape),
        "nonfinite": None if finite.all() else hashlib.sha256(np.packbits(~finite).tobytes()).hexdigest(),
        "min": float(clean[finite].min()) if finite.any() else 0.0,
        "max": float(clean[finite].max()) if finite.any() else 0.0,
        "rms": float(np.sqrt(np.mean(clean**2))) if clean.size else 0.0,
        "chunk_mean": [float(chunk.mean()) for chunk in chunks],
        "chunk_rms": [float(np.sqrt(np.mean(chunk**2))) for chunk in chunks],
    }


def summarise(array: np.ndarray) -> dict[str, Any]:
    """The reference statistics of one array (see the module docstring)."""
    array = np.asarray(array)
    return _float_summary(array) if array.dtype.kind == "f" else _exact_summary(array)


def statistics(arrays: TaskArrays) -> dict[str, Any]:
    """Reference statistics of a task's arrays: {"layout": ..., "arrays": name -> summary}.

    Names and layout are ``storage.flatten``'s with each structure in its kind's reference form
    (``Kind.reference_form``): e.g. a subspace basis ``.../basis/g`` [r, d] is replaced by its
    projector ``.../projector/g`` [d, d].
    """
    from structure_bench.storage import flatten

    flat, layout = flatten(arrays, reference=True)
    # JSON round trip: tuples become lists, as they will be when read back from a pin or manifest.
    return json.loads(json.dumps({"layout": layout, "arrays": {k: summarise(flat[k]) for k in sorted(flat)}}))


def compare(actual: dict[str, Any], pinned: dict[str, Any]) -> str | None:
    """None when ``actual`` statistics agree with ``pinned`` (see the module docstring), else
    a sentence naming the first differing array and by how much."""
    if actual["layout"] != pinned["layout"]:
        keys = [k for k in sorted(set(actual["layout"]) | set(pinned["layout"]))
                if actual["layout"].get(k) != pinned["layout"].get(k)]
        return f"the layout ({', '.join(keys)}) differs"
    ours, theirs = actual["arrays"], pinned["arrays"]
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            return f"{name} is {'missing' if name in theirs else 'new'}"
        a, p = ours[name], theirs[name]
        if (a["kind"], a["shape"]) != (p["kind"], p["shape"]):
            return f"{name} is {a['kind']} {a['shape']} against the pinned {p['kind']} {p['shape']}"
        if not a["kind"].startswith("float"):
            if a["sha256"] != p["sha256"]:
                return f"{name} has other values ({a['kind']}, compared exactly)"
            continue
        if a["nonfinite"] != p["nonfinite"]:
            return f"{name} has NaN or inf in other places"
        for stat in FLOAT_STATISTICS:
            ours_v, theirs_v = np.atleast_1d(a[stat]), np.atleast_1d(p[stat])
            gaps = np.abs(ours_v - theirs_v)
            worst = int(np.argmax(gaps))
            if gaps[worst] > RTOL * p["rms"]:
                where = f"{stat}[{worst}]" if isinstance(p[stat], list) else stat
                scale = f"{gaps[worst] / p['rms']:.2g} of its RMS" if p["rms"] else "the pinned array is all zeros"
                return (f"{name} {where} is {ours_v[worst]:.17g} against the pinned {theirs_v[worst]:.17g} "
                        f"({scale}; tolerance {RTOL:g})")
    return None


def _rounded_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary with each float statistic as an integer count of quanta (module docstring)."""
    if not summary["kind"].startswith("float"):
        return summary
    rms = summary["rms"]
    scale = math.ldexp(1.0, math.floor(math.log2(rms) + _OFFSET)) if rms > 0 else 1.0
    quantum = scale / 10**DIGITS

    def count(value: float) -> int:
        return math.floor(value / quantum + _OFFSET)

    rounded = {k: v for k, v in summary.items() if k not in FLOAT_STATISTICS}
    for stat in FLOAT_STATISTICS:
        value = summary[stat]
        rounded[stat] = [count(v) for v in value] if isinstance(value, list) else count(value)
    return rounded


def _canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def identity_of(task_definition: dict[str, Any], task_statistics: dict[str, Any]) -> str:
    """64-hex sha256 of the definition and the statistics rounded to ``DIGITS`` (module docstring)."""
    rounded = {
        "layout": task_statistics["layout"],
        "arrays": {name: _rounded_summary(s) for name, s in task_statistics["arrays"].items()},
    }
    return hashlib.sha256(_canonical({"definition": task_definition, "statistics": rounded})).hexdigest()


# -- pins -----------------------------------------------------------------------------------

def pin_path(task: Task) -> Path:
    """The pin file of the folder that holds the task's class: ``<folder>/identity.json``."""
    return Path(inspect.getfile(type(task))).parent / PIN_FILE


def read_pins(path: Path) -> dict[str, dict[str, Any]]:
    """Task id -> {"identity", "definition", "statistics"} from a pin file ({} when it is absent)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def _format_pins(pins: dict[str, dict[str, Any]]) -> str:
    """Pin file text: one line per array summary, so a diff shows which arrays changed."""
    def line(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)

    tasks = []
    for task_id in sorted(pins):
        entry = pins[task_id]
        arrays = ",\n".join(f"    {line(name)}: {line(s)}" for name, s in sorted(entry["statistics"]["arrays"].items()))
        tasks.append(
            f" {line(task_id)}: {{\n"
            f"  \"definition\": {line(entry['definition'])},\n"
            f"  \"identity\": {line(entry['identity'])},\n"
            f"  \"statistics\": {{\n   \"arrays\": {{\n{arrays}\n   }},\n"
            f"   \"layout\": {line(entry['statistics']['layout'])}\n  }}\n }}"
        )
    return "{\n" + ",\n".join(tasks) + "\n}\n"


def pin(task: Task) -> Path:
    """(Re)write the task's entry in its pin file from this machine's statistics; returns the file."""
    from structure_bench.results import write_text

    path = pin_path(task)
    pins = read_pins(path)
    task_definition = definition(task)
    pins[task.id] = {
        "identity": identity_of(task_definition, task.statistics),
        "definition": task_definition,
        "statistics": task.statistics,
    }
    return write_text(path, _format_pins(pins))


# -- checking a task against its pin --------------------------------------------------------

@dataclass(frozen=True)
class IdentityCheck:
    """A task's identity and how it was reached.

    status : "pinned" (statistics agree with the pin: identity from the pinned statistics),
        "differs" (they do not: identity from this machine's; ``detail`` says where),
        "other definition" (the pin is for other kwargs or data files; ``detail`` says which) or
        "unpinned" (no pin for this task id).
    """

    identity: str
    status: Status
    detail: str | None
    pin_file: Path


def check_identity(task: Task) -> IdentityCheck:
    """The task's identity, from its pin where its statistics agree with it (warns where they do not)."""
    path = pin_path(task)
    entry = read_pins(path).get(task.id)
    task_definition = definition(task)
    own = task.statistics
    if entry is None:
        return IdentityCheck(identity_of(task_definition, own), "unpinned", None, path)
    if entry["definition"] != task_definition:
        keys = [k for k in sorted(task_definition) if entry["definition"].get(k) != task_definition[k]]
        detail = f"the pin in {path} is for other {' and '.join(keys)}"
        return IdentityCheck(identity_of(task_definition, own), "other definition", detail, path)
    difference = compare(own, entry["statistics"])
    if difference is None:
        return IdentityCheck(identity_of(task_definition, entry["statistics"]), "pinned", None, path)
    warnings.warn(
        f"{task.id} differs from its pinned reference statistics ({path}): {difference}; "
        "its identity comes from this machine's statistics",
        IdentityWarning,
        stacklevel=3,
    )
    return IdentityCheck(identity_of(task_definition, own), "differs", difference, path)
