"""Result records: one JSON file per (task, site, method, params, cell, seed), with a JSON Schema.

A record is data only: loading one never imports or executes anything it names.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.metrics.latents import CLASSES as LATENT_CLASSES
from structure_bench.metrics.latents import COLUMNS as LATENT_COLUMNS

SCHEMA_VERSION = 2  # 2: task_identity, the portable identity of the task the record was made on
# The results folder: records/<record name>.json, decoders/<record stem>.npy (float32
# [n_latents, d]) and, with --plots, codes/<record stem>.npy (float16 [n_all, n_latents]).
RECORDS_DIR = "records"
DECODERS_DIR = "decoders"
CODES_DIR = "codes"

_number_or_null = {"type": ["number", "null"]}
RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://structure-bench.dev/schema/result-v2.json",
    "title": "structure_bench result record",
    "description": "One fitted method on one task cell and seed, scored on the task's test split.",
    "type": "object",
    "required": [
        "schema_version", "task", "task_identity", "task_fingerprint", "site", "method", "method_spec", "params",
        "cell", "seed", "status", "error", "metrics", "main_score", "provenance",
    ],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "task": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]+-v\d+$"},
        "task_identity": {
            "type": "string", "pattern": "^[0-9a-f]{64}$",
            "description": "the task's portable identity (Task.identity): a record is current while it is unchanged",
        },
        "task_fingerprint": {
            "type": "string", "pattern": "^[0-9a-f]{64}$",
            "description": "exact bytes of the task's arrays on the machine that made the record (Task.fingerprint)",
        },
        "site": {"type": "string"},
        "method": {"type": "string", "description": "registered name or module:Class spec"},
        "method_spec": {"type": "string", "description": "module:Class that re-imports the method"},
        "params": {"type": "object", "description": "constructor parameters (get_params)"},
        "cell": {
            "type": "object",
            "required": ["n_latents", "l0_target"],
            "additionalProperties": False,
            "properties": {"n_latents": {"type": "integer", "minimum": 1}, "l0_target": {"type": "integer", "minimum": 1}},
        },
        "seed": {"type": "integer", "minimum": 0},
        "status": {"enum": ["ok", "failed"]},
        "error": {"type": ["string", "null"]},
        "metrics": {"type": "object", "additionalProperties": _number_or_null},
        "main_score": {"type": "string"},
        "training": {
            "type": ["object", "null"],
            "description": "how an iteratively trained method's fit ended (Method.training_); null for direct solvers",
            "required": ["steps", "converged", "final_loss"],
            "properties": {
                "steps": {"type": "integer", "minimum": 0, "description": "steps (or iterations, or epochs) taken"},
                "converged": {"type": "boolean", "description": "false when the method's cap stopped it before its stopping rule held"},
                "final_loss": {**_number_or_null, "description": "training loss at the end (a share of variance for the built-in methods)"},
            },
            "additionalProperties": _number_or_null,
        },
        "latents": {
            "type": ["object", "null"],
            "description": "what each latent is on the test split (metrics/latents.py), one list entry per latent; "
            "null for failed fits and records made before it existed",
            "required": list(LATENT_COLUMNS),
            "additionalProperties": False,
            "properties": {
                **{column: {"type": "array", "items": _number_or_null} for column in LATENT_COLUMNS},
                "home": {"type": "array", "items": {"type": "integer", "minimum": -1},
                         "description": "index of the part of the home structure with the largest share (-1: no home structure)"},
                "class": {"type": "array", "items": {"enum": list(LATENT_CLASSES)}},
            },
        },
        "provenance": {
            "type": "object",
            "required": ["package_version", "git_commit", "wall_time_s", "peak_memory_mb", "hardware", "finished_at"],
            "properties": {
                "package_version": {"type": "string"},
                "git_commit": {"type": ["string", "null"]},
                "wall_time_s": {"type": "number", "minimum": 0},
                "fit_time_s": _number_or_null,
                "peak_memory_mb": _number_or_null,
                "hardware": {"type": "object"},
                "finished_at": {"type": "string"},
                "decoder_file": {"type": ["string", "null"], "pattern": r"^decoders/[^/]+\.npy$"},
                "method_source": {
                    "type": ["string", "null"],
                    "description": "digest of the method's code (methods.method_source): resume recomputes a record when it changes",
                },
                "fit_shared_with": {
                    "type": "string",
                    "description": "record name of the unit whose fit this record scores at its own cell (a method that does not read l0_target)",
                },
                "source": {
                    "type": "object",
                    "description": "a dictionary trained elsewhere (structure-bench score): format, path, sha256, declared task identity",
                    "required": ["format", "path", "sha256"],
                },
            },
        },
    },
}


def record_name(task: str, site: str, method: str, params_key: str, cell_name: str, seed: int) -> str:
    """File name of a record; a method spec's ':' and '.' are kept readable but path-safe."""
    safe_method = method.replace(":", "--").replace("/", "_")
    return f"{task}__{site}__{safe_method}__{params_key}__{cell_name}__s{seed}.json"


def _json_safe(value: Any) -> Any:
    """NaN and inf are not JSON: store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _all_items_plain(items: dict[str, Any], instance: list) -> bool:
    """Whether every entry of ``instance`` obviously meets a per-latent array's ``items`` schema
    (numbers or null, integers with a minimum, an enum of strings); False means "not sure"."""
    keys = items.keys() - {"description"}
    if keys == {"type"} and items["type"] == ["number", "null"]:
        return all(v is None or type(v) in (int, float) for v in instance)
    if keys == {"type", "minimum"} and items["type"] == "integer":
        return all(type(v) is int and v >= items["minimum"] for v in instance)
    if keys == {"enum"}:
        allowed = {v for v in items["enum"] if type(v) is str}
        return all(type(v) is str and v in allowed for v in instance)
    return False


@functools.lru_cache(maxsize=1)
def _record_validator() -> jsonschema.protocols.Validator:
    """RESULT_SCHEMA's validator, its schema checked once (``jsonschema.validate`` re-checks the
    schema on every call: half of the time of loading a results directory). Arrays whose entries
    plainly meet their ``items`` schema are accepted in one pass; anything else goes through
    jsonschema's own ``items``, so errors read the same (measured: walking the per-latent arrays
    entry by entry took 4.7 s, unprofiled, for the default suite's 471 records, against 0.26 s; a
    results directory is loaded twice by ``make bench``, for the tables and for the report)."""
    cls = jsonschema.validators.validator_for(RESULT_SCHEMA)
    cls.check_schema(RESULT_SCHEMA)
    items = cls.VALIDATORS["items"]

    def plain_items(validator, schema_items, instance, schema):  # noqa: ANN001, ANN202
        if not (isinstance(instance, list) and isinstance(schema_items, dict) and _all_items_plain(schema_items, instance)):
            yield from items(validator, schema_items, instance, schema)

    return jsonschema.validators.extend(cls, {"items": plain_items})(RESULT_SCHEMA)


def validate_record(record: dict[str, Any], source: str = "record") -> None:
    """Raise StructureBenchError naming the first schema violation."""
    error = jsonschema.exceptions.best_match(_record_validator().iter_errors(record))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise StructureBenchError(f"{source}: invalid result record at {where}: {error.message}")


@dataclass(frozen=True)
class Record:
    """One result record: the one home of its shape (``RESULT_SCHEMA``), its JSON (``to_json``,
    ``from_json``) and its row of the tidy table (``row``).

    cell : {"n_latents": int, "l0_target": int}. metrics : column -> value (None where not finite).
    provenance : package_version, git_commit, wall/fit time, peak memory, hardware, finished_at,
        decoder_file, method_source (see RESULT_SCHEMA).
    """

    task: str
    task_identity: str
    task_fingerprint: str
    site: str
    method: str
    method_spec: str
    params: dict[str, Any]
    cell: dict[str, int]
    seed: int
    status: str
    error: str | None
    metrics: dict[str, float | None]
    main_score: str
    provenance: dict[str, Any]
    training: dict[str, Any] | None = None
    latents: dict[str, list] | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as stored: JSON-safe (NaN/inf as null), with its schema version."""
        document = {"schema_version": SCHEMA_VERSION, **dataclasses.asdict(self)}
        document["params"] = json.loads(json.dumps(self.params, default=str))
        return _json_safe(document)

    @classmethod
    def from_json(cls, document: dict[str, Any], source: str | None = "record") -> Record:
        """A stored record, validated against RESULT_SCHEMA (a one-line StructureBenchError names
        ``source`` and the first violation); ``source=None`` skips validation (already done)."""
        if source is not None:
            validate_record(document, source)
        return cls(**{f.name: document[f.name] for f in dataclasses.fields(cls) if f.name in document})

    def row(self) -> dict[str, Any]:
        """Its row of the tidy table (``records_to_frame``): the ID_COLUMNS, then every metric."""
        return {
            "task": self.task,
            "site": self.site,
            "method": self.method,
            "n_latents": self.cell["n_latents"],
            "l0_target": self.cell["l0_target"],
            "seed": self.seed,
            "status": self.status,
            "error": self.error,
            "main_score_name": self.main_score,
            "main_score": self.metrics.get(self.main_score),
            "wall_time_s": self.provenance["wall_time_s"],
            "peak_memory_mb": self.provenance["peak_memory_mb"],
            "task_identity": self.task_identity,
            "task_fingerprint": self.task_fingerprint,
            "decoder_file": self.provenance.get("decoder_file"),
            "train_steps": (self.training or {}).get("steps"),
            "converged": (self.training or {}).get("converged"),
            **self.metrics,
        }


def file_mode() -> int:
    """The mode ``open`` would give a new file: 0666 less this process's umask (0644 under the
    usual 022), so results in a shared folder are as readable as any file the user writes."""
    mask = os.umask(0o022)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    return 0o666 & ~mask


def write_text(target: Path, text: str) -> Path:
    """Write a text file atomically (a reader sees the whole file or none), with the mode of a
    plainly written file (``file_mode``), not mkstemp's private 0600."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=target.suffix, dir=target.parent)
    os.fchmod(fd, file_mode())
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_json(target: Path, document: Any) -> Path:
    """Write JSON atomically (a reader sees the whole file or none)."""
    return write_text(target, json.dumps(document, indent=1, sort_keys=True))


def write_record(directory: Path, record: dict[str, Any], name: str) -> Path:
    """Validate and write a record atomically."""
    record = _json_safe(record)
    validate_record(record, name)
    return write_json(Path(directory) / RECORDS_DIR / name, record)


def read_record(path: Path) -> dict[str, Any]:
    """Load and validate one record; a broken file gets a one-line error naming it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StructureBenchError(f"{path}: unreadable result record ({exc})") from None
    Record.from_json(record, str(path))  # validates
    return record


def record_paths(directory: Path) -> list[Path]:
    return sorted((Path(directory) / RECORDS_DIR).glob("*.json"))


class MalformedRecordWarning(UserWarning):
    """A record file that cannot be read or breaks the schema, skipped by a lenient load."""


def load_records(directory: Path, strict: bool = True) -> list[dict[str, Any]]:
    """Every record under ``directory/records``.

    strict : a malformed record file raises StructureBenchError naming it; with False it is
        skipped with a one-line ``MalformedRecordWarning`` naming it, and the others load.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise StructureBenchError(f"results directory {directory} does not exist")
    records = []
    for path in record_paths(directory):
        try:
            records.append(read_record(path))
        except StructureBenchError as exc:
            if strict:
                raise
            warnings.warn(f"skipped {exc}", MalformedRecordWarning, stacklevel=2)
    return records


ID_COLUMNS = [
    "task", "site", "method", "n_latents", "l0_target", "seed", "status", "error",
    "main_score_name", "main_score", "wall_time_s", "peak_memory_mb", "task_identity", "task_fingerprint",
    "decoder_file", "train_steps", "converged",
]


def records_to_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record (``Record.row``): the ID_COLUMNS, then one float column per metric (NaN
    where absent). ``records`` are stored records (dicts), as ``load_records`` returns them."""
    rows = [Record.from_json(r, source=None).row() for r in records]
    frame = pd.DataFrame(rows, columns=ID_COLUMNS if not rows else None)
    metric_columns = [c for c in frame.columns if c not in ID_COLUMNS]
    # One cast of all the metric columns, then one consolidated frame (hundreds of latents/* columns).
    frame = frame.astype({c: float for c in metric_columns + ["main_score"]}).copy()
    keys = ["task", "site", "method", "n_latents", "l0_target", "seed"]
    return frame.sort_values(keys).reset_index(drop=True)


def load_results(directory: str | Path, strict: bool = False) -> pd.DataFrame:
    """Results of a run as a tidy DataFrame: one row per record, one column per metric.

    strict : raise on a malformed record file instead of skipping it with a warning naming it
        (see ``load_records``).
    """
    return records_to_frame(load_records(Path(directory), strict=strict))
