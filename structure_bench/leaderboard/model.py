"""The leaderboard's model: every submission file judged (verified, reference, FAILED, not verified,
stale, refused) and the tables computed from the verifiers' re-run records only. The pages
(``readme``, ``html``) render it; ``board`` writes and checks them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.leaderboard.scores import (
    budget_ranking,
    fvu_bounds,
    l0_ratios,
    overall_ranking,
    task_table,
)
from structure_bench.leaderboard.submission import SUBMISSIONS_DIR, SubmissionRejected, read_submissions
from structure_bench.leaderboard.verify import acceptance, read_verification

STATUS_RANKED = "verified"
STATUS_REFERENCE = "reference"
STATUS_UNVERIFIED = "unverified"
BROKEN_VERIFICATION = "broken verification"


@dataclass
class Entry:
    """One submission file as the board sees it.

    status : "verified" (re-run on hidden instances and reproduced: ranked), "reference" (the same,
        but the method uses the ground truth: shown, never ranked), "unverified" (a dictionary
        trained elsewhere, scored on the public test split: shown apart, marked not re-run), "FAILED" (the re-run did not
        reproduce, or the verification is broken), "not verified", "stale" (made on another
        version of a task) or "refused" (the file itself is invalid).
    reason : why an entry is not ranked (None when it is verified, a reference or unverified: its
        status says why).
    frame : the verifier's re-run records it is ranked by (``Verification.ranked``, public task ids);
        empty unless verified or a reference (the unverified table reads an entry's own records).
    """

    name: str
    document: dict[str, Any] | None
    status: str
    reason: str | None
    frame: pd.DataFrame

    @property
    def spec(self) -> str:
        return self.document["method"]["spec"] if self.document else ""


@dataclass
class Board:
    """Everything the pages show, computed from the verifiers' re-run records only.

    entries : name -> Entry, every file under submissions/.
    tasks : task id -> the suite entry shared by the shown submissions (identity, site, main_score, ...).
    ranking : ``overall_ranking`` of the verified submissions (best first).
    budget_ranking : the same within the L0 and reconstruction budget (``budget_ranking``).
    l0_ratio : name -> mean achieved L0 / target L0 over its re-run records.
    fvu_bound : task id -> the largest mean FVU within the budget (``fvu_bounds``).
    per_task : ``task_table`` of the verified and reference submissions (one row per submission and task).
    per_cell : per (submission, task, n_latents, l0_target): mean main_score, l0, fvu over seeds.
    """

    entries: dict[str, Entry]
    tasks: dict[str, dict[str, Any]]
    ranking: pd.DataFrame
    budget_ranking: pd.DataFrame
    l0_ratio: dict[str, float]
    fvu_bound: dict[str, float]
    per_task: pd.DataFrame
    per_cell: pd.DataFrame

    def with_status(self, *statuses: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.status in statuses]


def _first(problems: list[str]) -> str:
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"


def _entry(board: Path, document: dict[str, Any], identities: dict[str, str]) -> Entry:
    """Judge one readable submission: stale, unverified (trained elsewhere), not verified, failed,
    or verified (a reference or not)."""
    empty = pd.DataFrame()
    name = document["name"]
    stale = [t for t, e in document["tasks"].items() if t in identities and e["identity"] != identities[t]]
    if stale:
        return Entry(name, document, "stale", f"made on another version of {', '.join(stale)}; re-run and resubmit", empty)
    if document.get("unverified"):
        return Entry(name, document, STATUS_UNVERIFIED, None, empty)
    try:
        verification = read_verification(board, document)
    except SubmissionRejected as exc:
        return Entry(name, document, "FAILED", f"{BROKEN_VERIFICATION}: {_first(exc.problems)}", empty)
    if verification is None:
        return Entry(name, document, "not verified", "run `structure-bench verify` on it", empty)
    problems = acceptance(document, verification)[1]
    if problems:
        return Entry(name, document, "FAILED", _first(problems), empty)
    status = STATUS_REFERENCE if verification.reference else STATUS_RANKED
    return Entry(name, document, status, None, verification.ranked[verification.ranked.status == "ok"])


def current_identities(task_ids: Iterable[str]) -> dict[str, str]:
    """Task id -> its identity on this machine now, for the registered ones among ``task_ids``."""
    from structure_bench.registry import registry
    from structure_bench.registry import load_task

    known = registry()
    return {t: load_task(t).identity for t in task_ids if t in known}


def build_board(board: str | Path = "leaderboard", identities: dict[str, str] | None = None) -> Board:
    """Read and judge every submission under ``board`` and compute the tables.

    identities : task id -> identity now (default ``current_identities`` of the submissions' tasks);
        a submission made on another identity is stale.
    """
    board = Path(board)
    documents, refused = read_submissions(board)
    if not documents and not refused:
        raise StructureBenchError(f"no submissions in {board / SUBMISSIONS_DIR}; add one with `structure-bench submit`")
    if identities is None:
        identities = current_identities({t for d in documents for t in d["tasks"]})
    entries = {d["name"]: _entry(board, d, identities) for d in documents}
    entries.update({name: Entry(name, None, "refused", _first(problems), pd.DataFrame()) for name, problems in refused.items()})
    entries = dict(sorted(entries.items()))
    shown = [e for e in entries.values() if e.status in (STATUS_RANKED, STATUS_REFERENCE)]
    tasks = dict(sorted({t: v for e in shown for t, v in e.document["tasks"].items()}.items()))
    frame = pd.concat([e.frame.assign(submission=e.name) for e in shown], ignore_index=True) if shown else pd.DataFrame(
        columns=["submission", "task", "seed", "n_latents", "l0_target", "main_score", "l0", "fvu"]
    )
    ranked = frame[frame.submission.isin([e.name for e in shown if e.status == STATUS_RANKED])]
    higher_is_better = {t: e["higher_is_better"] for t, e in tasks.items()}
    per_cell = frame.groupby(["submission", "task", "n_latents", "l0_target"])[["main_score", "l0", "fvu"]].mean().reset_index()
    return Board(
        entries=entries,
        tasks=tasks,
        ranking=overall_ranking(ranked, higher_is_better),
        budget_ranking=budget_ranking(ranked, higher_is_better),
        l0_ratio=l0_ratios(frame).to_dict() if len(frame) else {},
        fvu_bound=fvu_bounds(ranked).to_dict() if len(ranked) else {},
        per_task=task_table(frame) if len(frame) else pd.DataFrame(columns=["submission", "task", "main_score"]),
        per_cell=per_cell,
    )


def ordered_task_rows(board: Board, task_id: str) -> pd.DataFrame:
    """The verified and reference submissions on one task, best main score first."""
    rows = board.per_task[board.per_task.task == task_id]
    return rows.sort_values("main_score", ascending=not board.tasks[task_id]["higher_is_better"])
