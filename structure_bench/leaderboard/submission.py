"""Leaderboard submissions: a finished run checked against the suite and frozen into one JSON file.

A submission file holds the method's import spec and parameters, the suite it was run on (each
task's portable identity, main score and grid), the package version, the run's result records,
and one sha256 over all of it. Submitting reads the records as data: nothing they name is imported
or executed (the method spec is only stored; ``verify`` is what checks, imports and re-runs it).
Every string in the file is validated against a pattern here and escaped wherever it is rendered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import jsonschema

from structure_bench.errors import StructureBenchError
from structure_bench.external import TRAINED_ELSEWHERE
from structure_bench.metrics import metric_range
from structure_bench.results import RESULT_SCHEMA, read_record, record_paths, write_json
from structure_bench.task import Cell

SUBMISSION_VERSION = 2
SUBMISSIONS_DIR = "submissions"
MIN_SEEDS = 3
# Constructor parameters that the cell and the seed set, not the submitter.
UNIT_PARAMS = ("n_latents", "l0_target", "seed")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
# A registered method name, or module:Class.
SPEC_PATTERN = r"^(?:[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}|[A-Za-z_][\w.]*:[A-Za-z_][\w.]*)$"
IMPORT_SPEC_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
TASK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*-v\d+$"
# Site and metric names: e.g. "hidden", "frequencies/coverage[k=4]", "features/recovered@0.9".
LABEL_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-/\[\]=@]*$"

RANGE_SLACK = 1e-9  # round-off at a bound (an FVU of -1e-17)

RECORD_ITEM_SCHEMA: dict[str, Any] = {k: v for k, v in RESULT_SCHEMA.items() if k not in ("$schema", "$id")}
_cell_schema = RESULT_SCHEMA["properties"]["cell"]
SUBMISSION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://structure-bench.dev/schema/submission-v1.json",
    "title": "structure_bench leaderboard submission",
    "type": "object",
    "required": [
        "submission_version", "name", "method", "package_version", "submitted_at", "tasks", "seeds",
        "sha256", "records",
    ],
    "additionalProperties": False,
    "properties": {
        "submission_version": {"const": SUBMISSION_VERSION},
        "name": {"type": "string", "pattern": NAME_PATTERN},
        "method": {
            "type": "object",
            "required": ["spec", "import_spec", "params"],
            "additionalProperties": False,
            "properties": {
                "spec": {"type": "string", "pattern": SPEC_PATTERN, "description": "registered name or module:Class, as run"},
                "import_spec": {"type": "string", "pattern": IMPORT_SPEC_PATTERN},
                "params": {"type": "object", "description": "constructor parameters beyond the cell and seed"},
            },
        },
        "package_version": {"type": "string", "pattern": r"^[\w.+\-]+$"},
        "submitted_at": {"type": "string", "pattern": r"^[\dT:+\-.Z]+$"},
        "tasks": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": TASK_ID_PATTERN},
            "additionalProperties": {
                "type": "object",
                "required": ["identity", "site", "main_score", "higher_is_better", "cells"],
                "additionalProperties": False,
                "properties": {
                    "identity": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "site": {"type": "string", "pattern": LABEL_PATTERN},
                    "main_score": {"type": "string", "pattern": LABEL_PATTERN},
                    "higher_is_better": {"type": "boolean"},
                    "cells": {"type": "array", "minItems": 1, "items": _cell_schema},
                },
            },
        },
        "unverified": {
            "type": "boolean",
            "description": "a dictionary trained elsewhere (scored with `structure-bench score`): its trainer cannot be "
            "re-run, so the entry is shown apart, never ranked; it may hold any cells and seeds",
        },
        "seeds": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "integer", "minimum": 0}},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "document_digest of the rest"},
        "records": {"type": "array", "minItems": 1, "items": RECORD_ITEM_SCHEMA},
    },
}


class SubmissionRejected(StructureBenchError):
    """A run or submission file that cannot go on the board; one line per problem."""

    def __init__(self, subject: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{subject}: {len(problems)} problem(s)\n{lines}")


def document_digest(document: dict[str, Any], field: str = "sha256") -> str:
    """sha256 of the document's canonical JSON (sorted keys, no whitespace) less ``field``: it
    covers the name, the method and its parameters, the suite, the seeds and every record."""
    blob = json.dumps({k: v for k, v in document.items() if k != field}, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def unit_key(record: dict[str, Any]) -> tuple[str, Cell, int]:
    return record["task"], Cell(**record["cell"]), record["seed"]


def submitted_params(record: dict[str, Any]) -> dict[str, Any]:
    """A record's constructor parameters less those its cell and seed set."""
    return {k: v for k, v in record["params"].items() if k not in UNIT_PARAMS}


def default_name(spec: str) -> str:
    """``topk-sae`` -> ``topk-sae``; ``my_pkg.saes:GatedSAE`` -> ``GatedSAE``."""
    return spec.rpartition(":")[2].replace("/", "_")


# -- reading the run ------------------------------------------------------------------------

def _read_run(results_dir: Path, problems: list[str]) -> list[dict[str, Any]]:
    """Every readable, schema-valid record of the run; each broken file is one problem."""
    if not results_dir.is_dir():
        raise StructureBenchError(f"results directory {results_dir} does not exist")
    records = []
    for path in record_paths(results_dir):
        try:
            records.append(read_record(path))
        except StructureBenchError as exc:
            problems.append(str(exc))
    return records


def _suite_entry(task_id: str) -> dict[str, Any]:
    """What the submission records about a task as it is now: identity, site, score, grid."""
    from structure_bench.registry import load_task

    task = load_task(task_id)
    meta = task.metadata
    return {
        "identity": task.identity,
        "site": meta.default_site,
        "main_score": meta.main_score,
        "higher_is_better": meta.higher_is_better,
        "cells": [{"n_latents": c.n_latents, "l0_target": c.l0_target} for c in meta.grid],
    }


def _check_record(record: dict[str, Any], spec: str, suite: dict[str, dict[str, Any]]) -> list[str]:
    """Problems with one record against the method spec and the current suite."""
    where = f"{record['task']} {Cell(**record['cell']).name} seed {record['seed']}"
    task = suite[record["task"]]
    problems = []
    if spec not in (record["method"], record["method_spec"]):
        problems.append(f"{where}: record is of method {record['method']!r}, not {spec!r}")
    if record["status"] != "ok":
        problems.append(f"{where}: failed fit ({record['error']})")
        return problems
    if record["task_identity"] != task["identity"]:
        problems.append(
            f"{where}: task identity {record['task_identity'][:12]}… differs from the "
            f"{record['task']}'s {task['identity'][:12]}… (re-run on this version of the task)"
        )
    if record["main_score"] != task["main_score"]:
        problems.append(f"{where}: main score is {record['main_score']!r} but the task's is {task['main_score']!r}")
    if task["main_score"] not in record["metrics"]:
        problems.append(f"{where}: main score {task['main_score']!r} missing from metrics")
    problems += metric_problems(record, where)
    if not record["provenance"]["package_version"]:
        problems.append(f"{where}: package version not recorded")
    return problems


def metric_problems(record: dict[str, Any], where: str) -> list[str]:
    """Non-finite metrics, and metrics outside the range they can take (``metric_range``)."""
    bad = sorted(k for k, v in record["metrics"].items() if v is None or not math.isfinite(v))
    problems = [f"{where}: non-finite metrics (NaN/inf): {', '.join(bad)}"] if bad else []
    n_latents = record["params"].get("n_latents", record["cell"]["n_latents"])
    for name, value in sorted(record["metrics"].items()):
        low, high = metric_range(name, n_latents)
        if name not in bad and not low - RANGE_SLACK <= value <= high + RANGE_SLACK:
            problems.append(f"{where}: {name} = {value:g} is outside the range it can take, [{low:g}, {high:g}]")
    return problems


def _missing_units(records: list[dict[str, Any]], suite: dict[str, dict[str, Any]], seeds: list[int]) -> list[str]:
    """One problem per task cell lacking some seed, and one per duplicated unit."""
    counts: dict[tuple[str, Cell, int], int] = defaultdict(int)
    for record in records:
        counts[unit_key(record)] += 1
    problems = [f"{t} {c.name} seed {s}: {n} records for one cell and seed" for (t, c, s), n in counts.items() if n > 1]
    for task_id, entry in suite.items():
        for cell in (Cell(**c) for c in entry["cells"]):
            missing = [s for s in seeds if (task_id, cell, s) not in counts]
            if missing and len(missing) == len(seeds):
                problems.append(f"missing cell: {task_id} {cell.name} (no records)")
            elif missing:
                problems.append(f"missing cell: {task_id} {cell.name} seed(s) {', '.join(map(str, missing))}")
    return problems


def dictionary_digest(record: dict[str, Any]) -> str | None:
    """The sha256 of the file a record's dictionary (or codes) came from, or None for a built-in fit."""
    return ((record.get("provenance") or {}).get("source") or {}).get("sha256")


def _unverified_problems(records: list[dict[str, Any]], suite: dict[str, dict[str, Any]]) -> list[str]:
    """An unverified entry may hold any cells and seeds, but every task needs a record, every
    record the digest of the file it scored, and no file may be scored twice at one cell."""
    problems = [f"{t}: no scored dictionary for this task" for t in suite if not any(r["task"] == t for r in records)]
    seen: dict[tuple[str, Cell, str | None], int] = defaultdict(int)
    for record in records:
        task, cell, _ = unit_key(record)
        digest = dictionary_digest(record)
        if digest is None:
            problems.append(f"{task} {cell.name}: the record does not say which file it scored (no sha256 in its provenance)")
        seen[task, cell, digest] += 1
    problems += [f"{t} {c.name}: the file {d[:12]} is scored {n} times" for (t, c, d), n in seen.items() if n > 1 and d]
    return problems


def _coverage_problems(
    records: list[dict[str, Any]], suite: dict[str, dict[str, Any]], seeds: list[int], unverified: bool
) -> list[str]:
    """What the records lack for an entry: for a verified one every cell at MIN_SEEDS seeds or
    more (``_missing_units``), for an unverified one ``_unverified_problems``."""
    if unverified:
        return _unverified_problems(records, suite)
    problems = [] if len(seeds) >= MIN_SEEDS or not records else [
        f"only {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); a leaderboard entry needs at least {MIN_SEEDS}"
    ]
    return problems + _missing_units(records, suite, seeds)


def _trust_problem(import_spec: str, unverified: bool) -> list[str]:
    """A dictionary trained elsewhere can only be unverified; a method we can import is verified."""
    if import_spec in TRAINED_ELSEWHERE and not unverified:
        return [f"records of {import_spec} score a dictionary trained elsewhere: it can only be an unverified entry"]
    if unverified and import_spec not in TRAINED_ELSEWHERE:
        return [f"{import_spec} can be re-run: only dictionaries trained elsewhere are unverified entries; verify it instead"]
    return []


def build_submission(
    results_dir: str | Path, spec: str, tasks: Iterable[str] | None = None, name: str | None = None
) -> dict[str, Any]:
    """Check a finished run against the suite ``tasks`` and return its submission document.

    tasks : task ids; default the default suite, or for a dictionary trained elsewhere (records of
        ``structure-bench score``) the tasks it was scored on.
    A run of a method we can import must cover every cell of every task with MIN_SEEDS seeds or
    more; records of dictionaries trained elsewhere (``TRAINED_ELSEWHERE``) make an unverified
    entry instead, which may hold any cells and seeds but must name each file's sha256.
    Raises SubmissionRejected listing every problem: unreadable or schema-invalid records, a
    missing task cell or seed, too few seeds, failed fits, non-finite metrics, fingerprints that
    differ from the current tasks', mixed methods or parameters.
    """
    from structure_bench.registry import default_suite

    results_dir = Path(results_dir)
    problems: list[str] = []
    run_records = _read_run(results_dir, problems)
    mine = [r for r in run_records if spec in (r["method"], r["method_spec"])]
    unverified = bool(mine) and {r["method_spec"] for r in mine} <= TRAINED_ELSEWHERE
    if tasks is None:
        tasks = sorted({r["task"] for r in mine}) if unverified else default_suite()
    suite = {task_id.rpartition(":")[2]: _suite_entry(task_id) for task_id in tasks}
    # A run folder may hold several methods (the calibration references beside a method, say):
    # the submission takes the records of ``spec`` only (on the suite's grid, unless unverified).
    records = [
        r for r in mine
        if r["task"] in suite and r["site"] == suite[r["task"]]["site"]
        and (unverified or r["cell"] in suite[r["task"]]["cells"])
    ]
    if not records and not problems:
        others = sorted({r["method"] for r in run_records})
        held = f" (it holds {', '.join(others)})" if others else ""
        problems.append(f"no records of {spec} for the suite ({', '.join(suite)}) in {results_dir}{held}")
    seeds = sorted({r["seed"] for r in records})
    for record in records:
        problems += _check_record(record, spec, suite)
    problems += _coverage_problems(records, suite, seeds, unverified)
    param_sets = {json.dumps(submitted_params(r), sort_keys=True) for r in records}
    if len(param_sets) > 1 and not unverified:
        problems.append(f"records mix {len(param_sets)} parameter settings; submit one setting per run directory")
    versions = {r["provenance"]["package_version"] for r in records}
    if len(versions) > 1:
        problems.append(f"records come from several package versions: {', '.join(sorted(versions))}")
    import_specs = {r["method_spec"] for r in records}
    if len(import_specs) > 1:
        problems.append(f"records come from several method classes: {', '.join(sorted(import_specs))}")
    name = name or default_name(spec)
    if not re.match(NAME_PATTERN, name):
        problems.append(f"submission name {name!r} must match {NAME_PATTERN}")
    if problems:
        raise SubmissionRejected(f"cannot submit {results_dir}", problems)
    records.sort(key=lambda r: (r["task"], r["cell"]["n_latents"], r["cell"]["l0_target"], r["seed"], dictionary_digest(r) or ""))
    document = {
        "submission_version": SUBMISSION_VERSION,
        "name": name,
        # An unverified entry's records each name their own files: its parameters live in them.
        "method": {"spec": spec, "import_spec": import_specs.pop(), "params": {} if unverified else submitted_params(records[0])},
        "package_version": versions.pop(),
        "submitted_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tasks": suite,
        "seeds": seeds,
        "records": records,
    } | ({"unverified": True} if unverified else {})
    return {**document, "sha256": document_digest(document)}


# -- the submission file --------------------------------------------------------------------

def checked_name(name: str) -> str:
    """``name`` if it is a valid submission name (``NAME_PATTERN``: no path separators, no markup)."""
    if not re.match(NAME_PATTERN, name):
        raise StructureBenchError(f"submission name {name!r} must match {NAME_PATTERN} (letters, digits, '_', '.', '-')")
    return name


def submission_path(board: str | Path, name: str) -> Path:
    """``board/submissions/<name>.json``; a name that could leave that folder is an error."""
    folder = (Path(board) / SUBMISSIONS_DIR).resolve()
    path = (folder / f"{checked_name(name)}.json").resolve()
    if path.parent != folder:
        raise StructureBenchError(f"submission {name!r} resolves outside {folder}")
    return path


def submit(
    results_dir: str | Path,
    spec: str,
    tasks: Iterable[str] | None = None,
    board: str | Path = "leaderboard",
    name: str | None = None,
    replace: bool = False,
) -> Path:
    """Check the run (``build_submission``) and write ``board/submissions/<name>.json``; returns its path."""
    document = build_submission(results_dir, spec, tasks, name)
    path = submission_path(board, document["name"])
    if path.exists() and not replace:
        raise StructureBenchError(f"{path} exists; pass --replace (or --name) to overwrite it")
    write_json(path, document)
    return path


def read_submission(path: str | Path) -> dict[str, Any]:
    """Load a submission file, check its schema, its records' digest and its internal consistency."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SubmissionRejected(str(path), [f"unreadable submission file ({exc})"]) from None
    validator = jsonschema.Draft202012Validator(SUBMISSION_SCHEMA)
    problems = [
        f"invalid at {'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message[:200]}"
        for e in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if problems:
        raise SubmissionRejected(str(path), problems)
    if document_digest(document) != document["sha256"]:
        problems.append("sha256 does not match the document: its records, method or parameters were edited after submission")
    if path.stem != document["name"]:
        problems.append(f"file name {path.name} does not match the submission name {document['name']!r}")
    suite, unverified = document["tasks"], document.get("unverified", False)
    problems += _trust_problem(document["method"]["import_spec"], unverified)
    for record in document["records"]:
        unknown_task = record["task"] not in suite
        if unknown_task or record["seed"] not in document["seeds"]:
            problems.append(f"record {record['task']} seed {record['seed']} is outside the submission's tasks and seeds")
            continue
        problems += _check_record(record, document["method"]["spec"], suite)
        other_params = not unverified and submitted_params(record) != document["method"]["params"]
        if other_params or record["method_spec"] != document["method"]["import_spec"]:
            problems.append(f"record {record['task']} seed {record['seed']} was run with other parameters or another class than the submission's method")
    problems += _coverage_problems(document["records"], suite, document["seeds"], unverified)
    if problems:
        raise SubmissionRejected(str(path), problems)
    return document


def read_submissions(board: str | Path) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Every submission under ``board/submissions``, each checked, sorted by name; and, for each
    file that is refused, its stem -> the problems (one file never hides the others)."""
    documents, refused = [], {}
    for path in sorted((Path(board) / SUBMISSIONS_DIR).glob("*.json")):
        try:
            documents.append(read_submission(path))
        except SubmissionRejected as exc:
            refused[path.stem] = exc.problems
    return documents, refused
