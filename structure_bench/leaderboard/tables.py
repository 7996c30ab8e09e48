"""What both pages of the board say: the notes, the table headers and the text cells of every
table, from the model (``model.Board``). ``readme`` and ``html`` lay them out."""

from __future__ import annotations

from typing import Any

import pandas as pd

from structure_bench.leaderboard.model import STATUS_RANKED, STATUS_REFERENCE, STATUS_UNVERIFIED, Board, ordered_task_rows
from structure_bench.leaderboard.submission import dictionary_digest
from structure_bench.leaderboard.scores import (
    BOOTSTRAP_RESAMPLES,
    FLIP_THRESHOLD,
    FVU_MULTIPLE,
    FVU_SLACK,
    L0_BUDGET,
    LEVEL,
    inseparable_pairs,
)

RANK_NOTE = (
    "Ranked: only submissions whose verification reproduced, by the verifier's own re-run on hidden "
    "instances (each task's units secretly permuted; for the synthetic tasks and TMS, fresh instances "
    "drawn from a secret seed), never by the submitted numbers. "
    "Rank by the mean over tasks of each submission's rank on that task (1 = best). A task a submission "
    "has no score on (a method that needs non-negative activations skips signed sites) counts as a tie "
    "for last place there: leaving tasks out never raises a rank."
)
BUDGET_NOTE = (
    f"Only submissions whose achieved L0 averages at most {L0_BUDGET:g}x the cells' target L0 (dense methods "
    "such as PCA, ICA and NMF spend far more, and on structure metrics that can rank them above sparse "
    f"dictionaries), and on each task only those whose mean FVU is at most {FVU_MULTIPLE:g}x the lowest such "
    f"FVU there plus {FVU_SLACK:g} (a dictionary that matches structure but cannot rebuild the activations "
    "does not score there; Tasks counts the tasks that met the bound, the others tie for last)."
)
REFERENCE_NOTE = (
    "Methods that are handed the ground truth (the oracle): verified like the others, shown on every task, "
    "never ranked."
)
UNVERIFIED_NOTE = (
    "Dictionaries trained elsewhere and scored with `structure-bench score` on the public test split: NOT RE-RUN "
    "(we cannot re-run their trainer on hidden instances), so never ranked and not comparable with the rows above. "
    "Each names the sha256 of the file it scored; anyone holding the file can score it again."
)
UNRANKED_NOTE = "Submissions that are not ranked, and why: not verified, failed verification, stale or invalid."

NO_BUDGET_ENTRY = "No submission is within the budget yet."
NO_RANKED_ENTRY = "No verified submission yet."


def separability_note(ranking: pd.DataFrame) -> str:
    pairs = inseparable_pairs(ranking)
    how = (
        f"paired bootstrap, {BOOTSTRAP_RESAMPLES} resamples of tasks and of seeds within each task; "
        f"a pair is not separable when its order flips in more than {FLIP_THRESHOLD:.0%} of resamples"
    )
    if not pairs:
        return f"Every adjacent pair of ranks is separable ({how})."
    listed = ", ".join(f"{a} and {b}" for a, b in pairs)
    return f"Not separable: ranks {listed} ({how})."


def cells_text(entry: dict[str, Any]) -> str:
    return ", ".join(f"w{c['n_latents']}-k{c['l0_target']}" for c in entry["cells"])


RANKING_HEADER = ["Rank", "Submission", "Method", "Mean task rank", "Tasks", "L0 / target", "Mean FVU"]
REFERENCE_HEADER = ["Submission", "Method", "Tasks", "L0 / target", "Mean FVU"]
UNVERIFIED_HEADER = ["Submission", "Task", "Cell", "Main score", "L0", "FVU", "Format", "File sha256"]
UNRANKED_HEADER = ["Submission", "Method", "Status", "Why"]
TASK_HEADER = ["#", "Submission", "Main score", f"{LEVEL:.0%} interval", "L0", "FVU", "Seeds"]


def _mean_fvu(board: Board, name: str) -> str:
    rows = board.per_task[board.per_task.submission == name]
    return f"{rows.fvu.mean():.4f}"


def ranking_rows(board: Board, ranking: pd.DataFrame) -> list[list[str]]:
    """Text cells of a ranking table (``RANKING_HEADER``), best first."""
    return [
        [
            str(row.rank), row.submission, board.entries[row.submission].spec, f"{row.mean_task_rank:.2f}",
            str(row.tasks), f"{board.l0_ratio[row.submission]:.2f}", _mean_fvu(board, row.submission),
        ]
        for row in ranking.itertuples()
    ]


def reference_rows(board: Board) -> list[list[str]]:
    """Text cells of the references table (``REFERENCE_HEADER``)."""
    return [
        [e.name, e.spec, str(e.frame.task.nunique()), f"{board.l0_ratio[e.name]:.2f}", _mean_fvu(board, e.name)]
        for e in board.with_status(STATUS_REFERENCE)
    ]


def unverified_rows(board: Board) -> list[list[str]]:
    """Text cells of the unverified table (``UNVERIFIED_HEADER``): one row per scored file."""
    rows = []
    for entry in board.with_status(STATUS_UNVERIFIED):
        for r in entry.document["records"]:
            metrics, source = r["metrics"], r["provenance"]["source"]
            rows.append([
                entry.name, r["task"], f"w{r['cell']['n_latents']}-k{r['cell']['l0_target']}",
                f"{metrics[r['main_score']]:.4f} ({r['main_score']})", f"{metrics['l0']:.2f}", f"{metrics['fvu']:.4f}",
                str(source.get("format", "")), (dictionary_digest(r) or "")[:16],
            ])
    return rows


def unranked_rows(board: Board) -> list[list[str]]:
    """Text cells of the not-ranked table (``UNRANKED_HEADER``)."""
    shown = (STATUS_RANKED, STATUS_REFERENCE, STATUS_UNVERIFIED)
    return [[e.name, e.spec, e.status, e.reason or ""] for e in board.entries.values() if e.status not in shown]


def task_rows(board: Board, task_id: str) -> list[tuple[list[str], pd.Series]]:
    """Per shown submission on ``task_id``, best first: its text cells (``TASK_HEADER``; references
    marked "ref" instead of a place) and its ``task_table`` row."""
    rows, place = [], 0
    for _, r in ordered_task_rows(board, task_id).iterrows():
        reference = board.entries[r.submission].status == STATUS_REFERENCE
        place += not reference
        mark = "ref" if reference else str(place)
        rows.append(([mark, r.submission, f"{r.main_score:.4f}", f"{r.low:.4f} to {r.high:.4f}", f"{r.l0:.2f}", f"{r.fvu:.4f}", str(r.seeds)], r))
    return rows
