"""Verify a submission: import its method, re-run it on fresh seeds, compare with what it claims.

Acceptance, per task: the re-run's mean main score m' must lie within the submission's own seed
interval widened for the re-run's own seed noise,

    |m' - m| <= sqrt(2) * h + ABSOLUTE_TOLERANCE,

with m the submitted mean and h the half-width of its 95% t-interval over its n seeds. Why sqrt(2):
h covers the uncertainty of one n-seed mean; m' is a second, independent n-seed mean, so m' - m
has twice the variance, and under normal seed noise |m' - m| <= sqrt(2) * h holds with
probability 95% exactly (m' - m over its estimated standard error is t-distributed with n - 1
degrees of freedom). ABSOLUTE_TOLERANCE (0.02 on scores in [0, 1]) absorbs what seed noise does
not model: float differences between machines and thread counts, and methods whose score does
not depend on the seed (h = 0). Scores raised by more than the band, or seeds cherry-picked
from a wider spread (a narrow interval away from the fresh mean), fail.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.leaderboard.scores import submissions_frame, task_table
from structure_bench.leaderboard.submission import SubmissionRejected, read_submission, submission_path
from structure_bench.results import load_records, records_to_frame, write_json

SEED_OFFSET = 1000
ABSOLUTE_TOLERANCE = 0.02
VERIFIED_DIR = "verified"


def verification_path(board: str | Path, name: str) -> Path:
    return Path(board) / VERIFIED_DIR / f"{name}.json"


def compare(submitted: pd.DataFrame, rerun: pd.DataFrame) -> pd.DataFrame:
    """Per task: submitted mean and interval, the acceptance band, the re-run mean, pass/fail.

    submitted, rerun : ``task_table`` frames (one row per task).
    """
    table = submitted.set_index("task")[["main_score", "low", "high", "half_width", "seeds"]]
    table = table.join(rerun.set_index("task")[["main_score"]].rename(columns={"main_score": "rerun"}), how="left")
    table["band"] = np.sqrt(2.0) * table.half_width.fillna(0.0) + ABSOLUTE_TOLERANCE
    table["passed"] = (table.rerun - table.main_score).abs() <= table.band
    return table.reset_index()


def verify(
    name: str,
    board: str | Path = "leaderboard",
    tasks: list[str] | None = None,
    out: str | Path | None = None,
    seed_offset: int = SEED_OFFSET,
    jobs: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Re-run submission ``name`` on seeds shifted by ``seed_offset`` and compare (``compare``).

    tasks : ids to load the submission's tasks by (e.g. ``"my_pkg:my-task-v1"`` so that an
        outside task registers); default: the submission's own task ids.
    out : results directory of the re-run (resumable); default ``results/verify/<name>``.
    Writes ``board/verified/<name>.json`` with the comparison; raises SubmissionRejected naming
    every task whose score does not reproduce.
    """
    from structure_bench.runner import plan, run

    document = read_submission(submission_path(board, name))
    task_ids = tasks or list(document["tasks"])
    if sorted(t.rpartition(":")[2] for t in task_ids) != sorted(document["tasks"]):
        raise StructureBenchError(f"--tasks must name the submission's tasks: {', '.join(document['tasks'])}")
    out = Path(out or Path("results") / "verify" / name)
    spec = document["method"]["spec"]
    seeds = [s + seed_offset for s in document["seeds"]]
    units = plan(task_ids, [spec], seeds, params={spec: document["method"]["params"]})
    run(units, out, jobs=jobs, progress=progress)
    records = [
        r for r in load_records(out)
        if r["method"] == spec and r["seed"] in seeds and r["task"] in document["tasks"]
    ]
    rerun_frame = records_to_frame(records)
    problems = [f"re-run failed: {e}" for e in rerun_frame.error.dropna()]
    for task_id, entry in document["tasks"].items():
        fingerprints = set(rerun_frame.loc[rerun_frame.task == task_id, "task_fingerprint"])
        if fingerprints - {entry["fingerprint"]}:
            problems.append(f"{task_id}: the task changed since submission (fingerprint differs); resubmit")
    table = compare(
        task_table(submissions_frame([document])),
        task_table(rerun_frame[rerun_frame.status == "ok"].assign(submission=name)),
    )
    for row in table[~table.passed].itertuples():
        problems.append(
            f"{row.task}: submitted main score {row.main_score:.4f} (95% interval {row.low:.4f} to {row.high:.4f}) "
            f"but the re-run on fresh seeds gives {row.rerun:.4f}, outside the accepted +-{row.band:.4f}"
        )
    write_json(
        verification_path(board, name),
        {
            "name": name,
            "records_sha256": document["records_sha256"],
            "passed": not problems,
            "verified_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "seeds": seeds,
            "problems": problems,
            "tasks": _json_rows(table),
        },
    )
    if problems:
        raise SubmissionRejected(f"submission {name} does not reproduce", problems)
    return table


def _json_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            for row in table.astype(object).to_dict("records")]


def read_verification(board: str | Path, document: dict[str, Any]) -> bool | None:
    """True/False when the submission (as it is now) was verified and passed/failed; None if never."""
    path = verification_path(board, document["name"])
    if not path.exists():
        return None
    verification = json.loads(path.read_text())
    if verification.get("records_sha256") != document["records_sha256"]:
        return None
    return bool(verification.get("passed"))
