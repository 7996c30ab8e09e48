"""The leaderboard's content, computed from submission files only, and its README rendering."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.leaderboard.scores import (
    BOOTSTRAP_RESAMPLES,
    FLIP_THRESHOLD,
    L0_BUDGET,
    LEVEL,
    budget_ranking,
    inseparable_pairs,
    l0_ratios,
    overall_ranking,
    submissions_frame,
    task_table,
)
from structure_bench.leaderboard.submission import SUBMISSIONS_DIR, read_submissions
from structure_bench.leaderboard.verify import read_verification

README = "README.md"
INDEX = "index.html"


@dataclass
class Board:
    """Everything the pages show.

    submissions : name -> submission document.
    tasks : task id -> the suite entry shared by its submissions (fingerprint, site, main_score, ...).
    ranking : ``overall_ranking`` (one row per submission, best first).
    budget_ranking : the same among the submissions within the L0 budget (``budget_ranking``).
    l0_ratio : name -> mean achieved L0 / target L0 over its records.
    per_task : ``task_table`` (one row per submission and task).
    per_cell : per (submission, task, n_latents, l0_target): mean main_score, l0, fvu over seeds.
    verified : name -> True (re-run reproduced), False (did not), None (not verified).
    """

    submissions: dict[str, dict[str, Any]]
    tasks: dict[str, dict[str, Any]]
    ranking: pd.DataFrame
    budget_ranking: pd.DataFrame
    l0_ratio: dict[str, float]
    per_task: pd.DataFrame
    per_cell: pd.DataFrame
    verified: dict[str, bool | None]


def _shared_tasks(submissions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each task's suite entry; submissions made against different task versions are refused."""
    tasks: dict[str, dict[str, Any]] = {}
    first: dict[str, str] = {}
    for document in submissions:
        for task_id, entry in document["tasks"].items():
            if task_id not in tasks:
                tasks[task_id], first[task_id] = entry, document["name"]
            elif entry["fingerprint"] != tasks[task_id]["fingerprint"]:
                raise StructureBenchError(
                    f"submissions {first[task_id]} and {document['name']} were run on different data for {task_id} "
                    "(fingerprints differ); re-run and resubmit the stale one"
                )
    return dict(sorted(tasks.items()))


def build_board(board: str | Path = "leaderboard") -> Board:
    """Read and check every submission under ``board`` and compute the tables."""
    submissions = read_submissions(board)
    if not submissions:
        raise StructureBenchError(f"no submissions in {Path(board) / SUBMISSIONS_DIR}; add one with `structure-bench submit`")
    tasks = _shared_tasks(submissions)
    frame = submissions_frame(submissions)
    higher_is_better = {t: e["higher_is_better"] for t, e in tasks.items()}
    per_cell = (
        frame.groupby(["submission", "task", "n_latents", "l0_target"])[["main_score", "l0", "fvu"]].mean().reset_index()
    )
    return Board(
        submissions={s["name"]: s for s in submissions},
        tasks=tasks,
        ranking=overall_ranking(frame, higher_is_better),
        budget_ranking=budget_ranking(frame, higher_is_better),
        l0_ratio=l0_ratios(frame).to_dict(),
        per_task=task_table(frame),
        per_cell=per_cell,
        verified={s["name"]: read_verification(board, s) for s in submissions},
    )


def ordered_task_rows(board: Board, task_id: str) -> pd.DataFrame:
    """The submissions on one task, best main score first."""
    rows = board.per_task[board.per_task.task == task_id]
    return rows.sort_values("main_score", ascending=not board.tasks[task_id]["higher_is_better"])


VERIFIED_MARK = {True: "yes", False: "FAILED", None: "not yet"}


RANK_NOTE = (
    "Rank by the mean over tasks of each submission's rank on that task (1 = best). A task a submission "
    "has no score on (a method that needs non-negative activations skips signed sites) counts as a tie "
    "for last place there: leaving tasks out never raises a rank."
)
BUDGET_NOTE = (
    f"Only submissions whose achieved L0 averages at most {L0_BUDGET:g}x the cells' target L0: dense methods "
    "(PCA, ICA, NMF) and the calibration references (oracle, random) spend far more, and on structure "
    "metrics that can rank them above sparse dictionaries in the overall table."
)


NO_BUDGET_ENTRY = "No submission is within the L0 budget yet."


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


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def cells_text(entry: dict[str, Any]) -> str:
    return ", ".join(f"w{c['n_latents']}-k{c['l0_target']}" for c in entry["cells"])


RANKING_HEADER = ["Rank", "Submission", "Method", "Mean task rank", "Tasks", "L0 / target", "Verified"]


def ranking_rows(board: Board, ranking: pd.DataFrame) -> list[list[str]]:
    """Text cells of a ranking table (``RANKING_HEADER``), best first."""
    return [
        [
            str(row.rank), row.submission, board.submissions[row.submission]["method"]["spec"],
            f"{row.mean_task_rank:.2f}", str(row.tasks), f"{board.l0_ratio[row.submission]:.2f}",
            VERIFIED_MARK[board.verified[row.submission]],
        ]
        for row in ranking.itertuples()
    ]


def ranking_table(board: Board, ranking: pd.DataFrame) -> str:
    rows = [[f"`{cell}`" if i == 2 else cell for i, cell in enumerate(row)] for row in ranking_rows(board, ranking)]
    return _markdown_table(RANKING_HEADER, rows)


def render_readme(board: Board) -> str:
    """leaderboard/README.md: the overall ranking and, per task, score with interval, L0, FVU."""
    count = len(board.submissions)
    parts = [
        "# structure_bench leaderboard",
        f"Generated by `structure-bench leaderboard` from the {count} submission file(s) in `{SUBMISSIONS_DIR}/`; "
        "do not edit by hand. A task's main score is, per seed, the mean over the task's cells; "
        f"shown is its mean over seeds with a {LEVEL:.0%} t-interval over seeds. "
        "`index.html` has the same tables (sortable) and metric-versus-L0 plots.",
        "## Overall",
        RANK_NOTE,
    ]
    parts += [ranking_table(board, board.ranking), separability_note(board.ranking), "## Within the L0 budget", BUDGET_NOTE]
    if len(board.budget_ranking):
        parts += [ranking_table(board, board.budget_ranking), separability_note(board.budget_ranking)]
    else:
        parts.append(NO_BUDGET_ENTRY)
    for task_id, entry in board.tasks.items():
        direction = "higher" if entry["higher_is_better"] else "lower"
        parts += [
            f"## {task_id}",
            f"Main score `{entry['main_score']}` ({direction} is better) at site `{entry['site']}`; "
            f"cells {cells_text(entry)}; task fingerprint `{entry['fingerprint'][:12]}`.",
        ]
        rows = [
            [str(i), r.submission, f"{r.main_score:.4f}", f"{r.low:.4f} to {r.high:.4f}", f"{r.l0:.2f}", f"{r.fvu:.4f}", str(r.seeds)]
            for i, r in enumerate(ordered_task_rows(board, task_id).itertuples(), start=1)
        ]
        parts.append(_markdown_table(["#", "Submission", "Main score", "95% interval", "L0", "FVU", "Seeds"], rows))
    return "\n\n".join(parts) + "\n"


def write_board(board_dir: str | Path = "leaderboard") -> Board:
    """Regenerate ``board_dir/README.md`` and ``board_dir/index.html`` from its submissions."""
    from structure_bench.leaderboard.html import render_html

    board = build_board(board_dir)
    (Path(board_dir) / README).write_text(render_readme(board))
    (Path(board_dir) / INDEX).write_text(render_html(board))
    return board
