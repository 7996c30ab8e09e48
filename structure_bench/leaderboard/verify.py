"""Verify a submission: check its method, re-run it on hidden instances, compare with its claim.

What ``verify`` does, in order:

1. Resolves the submission's name inside ``submissions/`` only, and reads the file (schema, sha256).
2. Checks, before importing anything, that the method's import spec names a class defined in a
   module of an installed distribution (or in a file the verifier names with ``method_files``),
   then imports it and requires a ``structure_bench.Method`` subclass (``trusted_method_class``).
3. Re-runs the method on *hidden instances* (``structure_bench.hidden``), each with a secret seed
   of the method, all secrets drawn here from the operating system's randomness: for each task and
   each seed of the claim, the task with its units secretly permuted (the instance the claim was
   made on, so the two are comparable) and, for a task with an ``instance_seed`` (the synthetic
   tasks, TMS), also a *fresh* instance drawn from a secret seed and permuted, which nobody has
   seen. The re-run's records, with the secrets that made them, are written to
   ``verified/<name>.json``; the board ranks by them (by the fresh instances where there are
   some), never by the claim.
4. Accepts per task and per shown metric (main score, L0, FVU) when the claimed mean c and the
   mean r of the re-run on the permuted instances agree within the re-run's own seed noise (a
   task that fails is re-run on as many permuted instances again and judged on all of them: with
   three seeds the re-run's spread is often underestimated by chance):

       |c - r| <= tol + min(sqrt(n + 1) * h, SEED_BAND_CAP * tol),    tol = atol + rtol * |c|,

   with h = t s' / sqrt(n) the half-width of the re-run's 95% t-interval over its n seeds (s' their
   standard deviation): sqrt(n + 1) h = t s' sqrt(1 + 1 / n), the 95% bound of c - r when c is
   a mean of n seeds or, conservatively, a single draw. h comes from the re-run, not the claim, so
   a claim cannot widen its own band by reporting a wide seed spread. The claim is compared with
   the permuted instances, not the fresh ones, because instances differ far more than seeds:
   PCA's main score on manifold-v1 is 0.765 on the public instance and 0.886 / 0.953 / 0.753 /
   0.896 / 0.914 on instances 1-5 (deterministic: no seed noise at all), so no band narrow enough
   to catch an edited score would accept an honest claim against fresh instances. The seed term is capped at
   ``SEED_BAND_CAP`` times the tolerance (a main score's band is at most 0.12): with 3 seeds a
   noisy re-run would otherwise accept almost anything (a method that copies a task's truth scores
   erratically on hidden instances, and would widen its own band). The cap is set by the seed
   noise of the built-in baselines: on the previous board their claimed and fresh-seed main
   scores differed by up to 0.07 (the random dictionary on pizza-v1, seed half-width 0.29), while
   a method that copies the published truth loses 0.21-0.69 on a permuted instance of six of the
   nine built-in tasks (tests/test_hidden.py). ``TOLERANCES`` (atol, rtol) absorb what seed noise does not
   model: methods whose score does not depend on the seed (h = 0) and float differences between
   machines.

Methods that declare ``uses_ground_truth`` (the oracle) are handed the hidden instance's truth; they
are references, shown but never ranked.
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import random
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import numpy as np
import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.leaderboard.scores import seed_scores, submissions_frame, t_interval
from structure_bench.leaderboard.submission import (
    RECORD_ITEM_SCHEMA,
    TASK_ID_PATTERN,
    SubmissionRejected,
    checked_name,
    document_digest,
    metric_problems,
    read_submission,
    submission_path,
    submitted_params,
)
from structure_bench.methods import Method
from structure_bench.methods.registry import METHOD_ENTRY_POINT_GROUP, method_import_spec, registered_method
from structure_bench.results import load_records, records_to_frame, write_json

VERIFIED_DIR = "verified"
VERIFICATION_VERSION = 1
# Per shown metric: (absolute, relative to the claim) tolerance added to the re-run's seed band.
TOLERANCES: dict[str, tuple[float, float]] = {"main_score": (0.02, 0.0), "l0": (0.05, 0.05), "fvu": (0.005, 0.10)}
SEED_BAND_CAP = 5.0
SEED_LIMIT = 2**31

VERIFICATION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://structure-bench.dev/schema/verification-v1.json",
    "title": "structure_bench leaderboard verification: the re-run of one submission on hidden instances",
    "type": "object",
    "required": [
        "verification_version", "name", "submission_sha256", "verified_at", "method_class", "reference",
        "error", "instances", "records", "sha256",
    ],
    "additionalProperties": False,
    "properties": {
        "verification_version": {"const": VERIFICATION_VERSION},
        "name": {"type": "string"},
        "submission_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "verified_at": {"type": "string", "pattern": r"^[\dT:+\-.Z]+$"},
        "method_class": {"type": ["string", "null"]},
        "reference": {"type": "boolean", "description": "the method declares uses_ground_truth"},
        "error": {"type": ["string", "null"], "description": "why the method was not re-run"},
        "instances": {
            "type": "object",
            "propertyNames": {"pattern": TASK_ID_PATTERN},
            "additionalProperties": {
                "type": "object",
                "required": ["task", "seed", "secret", "fresh"],
                "additionalProperties": False,
                "properties": {
                    "task": {"type": "string", "pattern": TASK_ID_PATTERN},
                    "seed": {"type": "integer", "minimum": 0},
                    "secret": {"type": "integer", "minimum": 0},
                    "fresh": {"type": "boolean", "description": "drawn from a secret instance seed"},
                },
            },
        },
        "records": {"type": "array", "items": RECORD_ITEM_SCHEMA},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}


def verification_path(board: str | Path, name: str) -> Path:
    return Path(board) / VERIFIED_DIR / f"{checked_name(name)}.json"


# -- which code may run ------------------------------------------------------------------------

def _module_file(module: str) -> Path | None:
    """The source file of ``module`` found without executing any package's code, or None."""
    parts = module.split(".")
    spec = importlib.util.find_spec(parts[0])  # a top-level lookup imports nothing
    for depth in range(1, len(parts)):
        if spec is None or not spec.submodule_search_locations:
            return None
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: depth + 1]), list(spec.submodule_search_locations))
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).resolve()


def _defines_class(path: Path, qualname: str) -> bool:
    """Whether the module file at ``path`` defines a top-level class ``qualname.split('.')[0]``."""
    name = qualname.split(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    return any(isinstance(node, ast.ClassDef) and node.name == name for node in tree.body)


def trusted_method_class(spec: str, import_spec: str, method_files: Iterable[str | Path] = ()) -> type:
    """The class a submission's method names, after checking it may be imported.

    spec : the method as run (a registered name or ``module:Class``); import_spec : ``module:Class``.
    method_files : source files the verifier vouches for (a user's own ``mymodule.py``).
    A registered name must come from an installed package's ``structure_bench.methods`` entry point
    (or be registered in this process) and resolve to ``import_spec``; a ``module:Class`` spec must
    be defined (as a class statement, read without running it) in a module of an installed
    distribution or in one of ``method_files``. Only then is it imported, and it must subclass
    ``Method``. Anything else is a one-line StructureBenchError, and nothing was imported.
    """
    if ":" not in spec:
        cls = registered_method(spec)
        if cls is None:
            raise StructureBenchError(
                f"method {spec!r} is not registered by an installed package's {METHOD_ENTRY_POINT_GROUP!r} entry point"
            )
        if method_import_spec(cls) != import_spec:
            raise StructureBenchError(f"method {spec!r} is {method_import_spec(cls)} here, not {import_spec} as submitted")
    else:
        if spec != import_spec:
            raise StructureBenchError(f"method spec {spec!r} differs from its import spec {import_spec!r}")
        module, _, qualname = import_spec.partition(":")
        path = _module_file(module)
        vouched = {Path(p).resolve() for p in method_files}
        installed = module.split(".")[0] in importlib.metadata.packages_distributions()
        if path is None or not (installed or path in vouched):
            raise StructureBenchError(
                f"method {import_spec!r}: module {module!r} is not part of an installed distribution "
                "(pip install the package that provides it, or name its file with --method-file)"
            )
        if not _defines_class(path, qualname):
            raise StructureBenchError(f"method {import_spec!r}: {path} defines no class {qualname.split('.')[0]!r}")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part, None)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise StructureBenchError(f"method {import_spec!r} is not a structure_bench.Method subclass")
    return cls


# -- the re-run ---------------------------------------------------------------------------------

@dataclass
class Verification:
    """A checked ``verified/<name>.json``.

    checked : the re-run records on the permuted instances (``records_to_frame`` rows, tasks named
        by their public ids): what ``acceptance`` compares with the claim.
    ranked : the records the board ranks by: on the fresh instances for tasks that have them,
        on the permuted ones otherwise.
    reference : whether the method declares it uses the ground truth.
    error : why the method was not re-run, or None.
    """

    document: dict[str, Any]
    checked: pd.DataFrame
    ranked: pd.DataFrame
    reference: bool
    error: str | None


def _hidden_instances(
    document: dict[str, Any], task_ids: list[str], draw: random.Random, fresh_too: bool = True
) -> dict[str, dict[str, Any]]:
    """Register the hidden instances, per task and claimed seed a permuted one and (for a task
    with an ``instance_seed``, unless not ``fresh_too``) a fresh one; returns hidden id -> secrets."""
    from structure_bench.hidden import HiddenInstance, hidden_task_id
    from structure_bench.registry import register_task, registry
    from structure_bench.registry import load_task

    instances = {}
    for task_id in task_ids:
        kinds = [False, True] if fresh_too and type(load_task(task_id)).instance_seed else [False]
        for _ in document["seeds"]:
            for fresh in kinds:
                secret = draw.randrange(SEED_LIMIT)
                hidden = hidden_task_id(task_id.rpartition(":")[2], secret, fresh)
                if hidden not in registry():  # the same secret (a seeded rng) gives the same instance
                    register_task(hidden, HiddenInstance, base=task_id, secret=secret, fresh=fresh)
                instances[hidden] = {
                    "task": task_id.rpartition(":")[2], "seed": draw.randrange(SEED_LIMIT), "secret": secret, "fresh": fresh,
                }
    return instances


def verify(
    name: str,
    board: str | Path = "leaderboard",
    tasks: list[str] | None = None,
    out: str | Path | None = None,
    jobs: int = 1,
    progress: bool = True,
    method_files: Iterable[str | Path] = (),
    rng: random.Random | None = None,
) -> pd.DataFrame:
    """Re-run submission ``name`` on hidden instances and compare (see the module docstring).

    tasks : ids to load the submission's tasks by (e.g. ``"my_pkg:my-task-v1"`` so that an
        outside task registers); default: the submission's own task ids.
    out : working directory of the re-run; default ``results/verify/<name>``.
    method_files : files vouched for as the method's source (``trusted_method_class``).
    rng : where the secrets come from; default the operating system's randomness (tests pass a
        seeded ``random.Random`` to be reproducible).
    Writes ``board/verified/<name>.json`` and returns ``acceptance``'s table; raises
    SubmissionRejected naming every task and metric that does not reproduce.
    """
    from structure_bench.planning import plan
    from structure_bench.registry import load_task
    from structure_bench.runner import run

    document = read_submission(submission_path(board, name))
    if document.get("unverified"):
        raise StructureBenchError(
            f"submission {name} is a dictionary trained elsewhere: there is no trainer to re-run on hidden instances, "
            "so it stays on the board as an unverified entry (not re-run)"
        )
    task_ids = tasks or list(document["tasks"])
    if sorted(t.rpartition(":")[2] for t in task_ids) != sorted(document["tasks"]):
        raise StructureBenchError(f"--tasks must name the submission's tasks: {', '.join(document['tasks'])}")
    stale = [t for t in task_ids if load_task(t).identity != document["tasks"][t.rpartition(":")[2]]["identity"]]
    if stale:
        raise SubmissionRejected(f"submission {name}", [f"{t}: the task changed since submission (its identity differs); re-run and resubmit" for t in stale])
    spec, params = document["method"]["spec"], document["method"]["params"]
    verification: dict[str, Any] = {
        "verification_version": VERIFICATION_VERSION,
        "name": document["name"],
        "submission_sha256": document["sha256"],
        "verified_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "method_class": None, "reference": False, "error": None, "instances": {}, "records": [],
    }
    try:
        cls = trusted_method_class(spec, document["method"]["import_spec"], method_files)
    except StructureBenchError as exc:
        verification["error"] = str(exc)
    else:
        verification["method_class"] = method_import_spec(cls)
        verification["reference"] = bool(getattr(cls, "uses_ground_truth", False))
        out = Path(out or Path("results") / "verify" / document["name"])
        draw = rng or secrets.SystemRandom()
        made: list[str] = []  # every hidden instance registered, whose cache entries go afterwards

        def rerun(instances: dict[str, dict[str, Any]]) -> None:
            made.extend(instances)
            units = [
                unit for hidden, instance in instances.items()
                for unit in plan([hidden], [spec], [instance["seed"]], params={spec: params})
            ]
            run(units, out, jobs=jobs, progress=progress)
            verification["instances"] |= instances
            verification["records"] = sorted(
                (r for r in load_records(out) if r["task"] in verification["instances"] and r["method"] == spec
                 and r["seed"] == verification["instances"][r["task"]]["seed"]),
                key=lambda r: (r["task"], r["cell"]["n_latents"], r["cell"]["l0_target"]),
            )
            verification["sha256"] = document_digest(verification)

        try:
            rerun(_hidden_instances(document, task_ids, draw))
            # Second stage: with three seeds a re-run's spread is often underestimated by chance, so a
            # task that fails gets as many seeds again on permuted instances and is judged on all.
            table, _ = acceptance(document, check_verification(verification, document))
            failed = set(table.task[~table.passed]) if len(table) else set()
            if failed:
                rerun(_hidden_instances(document, [t for t in task_ids if t.rpartition(":")[2] in failed], draw, fresh_too=False))
        finally:
            # Each secret is drawn once, so its instance is never built again: keeping it would add
            # 63 entries (442 MB) per verification of the default suite to the user's cache.
            for hidden in made:
                load_task(hidden).discard_cache()
    verification["sha256"] = document_digest(verification)
    write_json(verification_path(board, document["name"]), verification)
    table, problems = acceptance(document, check_verification(verification, document))
    if problems:
        raise SubmissionRejected(f"submission {name} does not reproduce", problems)
    return table


# -- reading and judging a verification ---------------------------------------------------------

def check_verification(verification: dict[str, Any], document: dict[str, Any]) -> Verification:
    """Check a verification document against its submission; SubmissionRejected lists why not."""
    validator = jsonschema.Draft202012Validator(VERIFICATION_SCHEMA)
    problems = [
        f"invalid at {'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message[:200]}"
        for e in validator.iter_errors(verification)
    ]
    if problems:
        raise SubmissionRejected(f"verification of {document['name']}", problems)
    if document_digest(verification) != verification["sha256"]:
        problems.append("sha256 does not match the verification: it was edited after the re-run")
    if verification["submission_sha256"] != document["sha256"]:
        problems.append("it verified another version of the submission")
    instances = verification["instances"]
    for record in verification["records"]:
        instance = instances.get(record["task"])
        where = f"re-run {record['task']} {record['cell']['n_latents']}-{record['cell']['l0_target']}"
        if instance is None or record["seed"] != instance["seed"]:
            problems.append(f"{where}: not one of the verification's hidden instances")
            continue
        if record["method"] != document["method"]["spec"] or submitted_params(record) != document["method"]["params"]:
            problems.append(f"{where}: another method or other parameters than the submission's")
        if record["status"] == "ok":
            problems += metric_problems(record, where)
    if problems:
        raise SubmissionRejected(f"verification of {document['name']}", problems)
    frame = records_to_frame(verification["records"]).assign(submission=document["name"])
    fresh = frame.task.map(lambda hidden: instances[hidden]["fresh"]).astype(bool)
    frame["task"] = frame.task.map(lambda hidden: instances[hidden]["task"])
    has_fresh = frame.task.isin(frame.task[fresh])
    return Verification(
        verification, frame[~fresh], frame[fresh | ~has_fresh], verification["reference"], verification["error"]
    )


def read_verification(board: str | Path, document: dict[str, Any]) -> Verification | None:
    """The checked verification of ``document``, or None when it was never verified; a broken or
    mismatched file raises SubmissionRejected."""
    path = verification_path(board, document["name"])
    if not path.exists():
        return None
    try:
        verification = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SubmissionRejected(str(path), [f"unreadable verification file ({exc})"]) from None
    return check_verification(verification, document)


SHOWN_METRICS = tuple(TOLERANCES)


def acceptance(document: dict[str, Any], verification: Verification) -> tuple[pd.DataFrame, list[str]]:
    """Per task and shown metric: the claim, the re-run, the band and whether they agree.

    Returns (table with columns task, metric, claimed, rerun, half_width, band, passed; problems,
    one line per disagreement, failed re-run fit or missing re-run).
    """
    if verification.error:
        return pd.DataFrame(), [f"not re-run: {verification.error}"]
    problems = [f"re-run failed: {e}" for e in pd.concat([verification.checked, verification.ranked]).error.dropna().unique()]
    claimed = seed_scores(submissions_frame([document]))
    ok = verification.checked[verification.checked.status == "ok"]
    rerun = seed_scores(ok) if len(ok) else claimed.iloc[:0]
    rows = []
    for task_id in document["tasks"]:
        mine, theirs = claimed[claimed.task == task_id], rerun[rerun.task == task_id]
        if len(theirs) < len(mine):
            problems.append(f"{task_id}: the re-run has {len(theirs)} of the {len(mine)} seeds")
            continue
        for metric, (atol, rtol) in TOLERANCES.items():
            claim, again = float(mine[metric].mean()), float(theirs[metric].mean())
            half_width = t_interval(theirs[metric].to_numpy())[0]
            tol = atol + rtol * abs(claim)
            band = tol + min(np.sqrt(len(theirs) + 1.0) * np.nan_to_num(half_width), SEED_BAND_CAP * tol)
            passed = bool(abs(claim - again) <= band)
            rows.append({"task": task_id, "metric": metric, "claimed": claim, "rerun": again, "half_width": half_width, "band": band, "passed": passed})
            if not passed:
                label = "main score" if metric == "main_score" else metric
                problems.append(
                    f"{task_id}: submitted {label} {claim:.4f} but the re-run on hidden instances gives {again:.4f} "
                    f"(accepted +-{band:.4f})"
                )
    return pd.DataFrame(rows), problems
