"""The leaderboard's content, computed from the submission files and the verifiers' re-runs, and its
README rendering; ``check_board`` says whether the committed pages are what those files give."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.leaderboard.scores import (
    BOOTSTRAP_RESAMPLES,
    FLIP_THRESHOLD,
    FVU_MULTIPLE,
    FVU_SLACK,
    L0_BUDGET,
    LEVEL,
    budget_ranking,
    fvu_bounds,
    inseparable_pairs,
    l0_ratios,
    overall_ranking,
    task_table,
)
from structure_bench.leaderboard.submission import SUBMISSIONS_DIR, SubmissionRejected, read_submissions
from structure_bench.leaderboard.verify import acceptance, read_verification
from structure_bench.results import write_text

README = "README.md"
INDEX = "index.html"


STATUS_RANKED = "verified"
STATUS_REFERENCE = "reference"
BROKEN_VERIFICATION = "broken verification"


@dataclass
class Entry:
    """One submission file as the board sees it.

    status : "verified" (re-run on hidden instances and reproduced: ranked), "reference" (the same,
        but the method uses the ground truth: shown, never ranked), "FAILED" (the re-run did not
        reproduce, or the verification is broken), "not verified", "stale" (made on another
        version of a task) or "refused" (the file itself is invalid).
    reason : why an entry is not ranked (None when it is verified or a reference).
    frame : the verifier's re-run records it is ranked by (``Verification.ranked``, public task ids);
        empty unless verified or a reference.
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
    """Judge one readable submission: stale, not verified, failed, or verified (a reference or not)."""
    empty = pd.DataFrame()
    name = document["name"]
    stale = [t for t, e in document["tasks"].items() if t in identities and e["identity"] != identities[t]]
    if stale:
        return Entry(name, document, "stale", f"made on another version of {', '.join(stale)}; re-run and resubmit", empty)
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
    from structure_bench.runner import load_task

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


def markdown_text(text: str) -> str:
    """``text`` safe inside a Markdown table cell: one line, Markdown's punctuation escaped."""
    text = " ".join(str(text).split())
    return "".join(f"\\{c}" if c in MARKDOWN_SPECIAL else c for c in text)


MARKDOWN_SPECIAL = set("\\`*_[]<>|~&")


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


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(markdown_text(cell) for cell in row) + " |" for row in rows])


def cells_text(entry: dict[str, Any]) -> str:
    return ", ".join(f"w{c['n_latents']}-k{c['l0_target']}" for c in entry["cells"])


RANKING_HEADER = ["Rank", "Submission", "Method", "Mean task rank", "Tasks", "L0 / target", "Mean FVU"]
REFERENCE_HEADER = ["Submission", "Method", "Tasks", "L0 / target", "Mean FVU"]
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


def unranked_rows(board: Board) -> list[list[str]]:
    """Text cells of the not-ranked table (``UNRANKED_HEADER``)."""
    shown = (STATUS_RANKED, STATUS_REFERENCE)
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


def render_readme(board: Board) -> str:
    """leaderboard/README.md: the rankings, references, what is not ranked, and per task score with
    interval, L0 and FVU."""
    parts = [
        "# structure_bench leaderboard",
        f"Generated by `structure-bench leaderboard` from the {len(board.entries)} submission file(s) in "
        f"`{SUBMISSIONS_DIR}/` and their verifications; do not edit by hand (`structure-bench leaderboard --check` "
        "fails on any difference). A task's score is, per seed, the mean over the task's cells; shown is its mean "
        f"over seeds with a {LEVEL:.0%} t-interval over seeds. `index.html` has the same tables (sortable) and "
        "metric-versus-L0 plots.",
        "## Overall",
        RANK_NOTE,
    ]
    if len(board.ranking):
        parts += [_markdown_table(RANKING_HEADER, ranking_rows(board, board.ranking)), separability_note(board.ranking)]
    else:
        parts.append(NO_RANKED_ENTRY)
    parts += ["## Within the budget", BUDGET_NOTE]
    if len(board.budget_ranking):
        parts += [_markdown_table(RANKING_HEADER, ranking_rows(board, board.budget_ranking)), separability_note(board.budget_ranking)]
    else:
        parts.append(NO_BUDGET_ENTRY)
    if board.with_status(STATUS_REFERENCE):
        parts += ["## References (unranked)", REFERENCE_NOTE, _markdown_table(REFERENCE_HEADER, reference_rows(board))]
    if unranked_rows(board):
        parts += ["## Not ranked", UNRANKED_NOTE, _markdown_table(UNRANKED_HEADER, unranked_rows(board))]
    for task_id, entry in board.tasks.items():
        direction = "higher" if entry["higher_is_better"] else "lower"
        bound = board.fvu_bound.get(task_id)
        parts += [
            f"## {markdown_text(task_id)}",
            f"Main score {markdown_text(entry['main_score'])} ({direction} is better) at site {markdown_text(entry['site'])}; "
            f"cells {cells_text(entry)}; task identity {entry['identity'][:12]}"
            + (f"; FVU bound within the budget {bound:.4f}." if bound is not None else "."),
            _markdown_table(TASK_HEADER, [cells for cells, _ in task_rows(board, task_id)]),
        ]
    return "\n\n".join(parts) + "\n"


def pages(board: Board) -> dict[str, str]:
    """File name -> content of the board's generated pages (``README`` and ``INDEX``)."""
    from structure_bench.leaderboard.html import render_html

    return {README: render_readme(board), INDEX: render_html(board)}


def write_board(board_dir: str | Path = "leaderboard") -> Board:
    """Regenerate ``board_dir/README.md`` and ``board_dir/index.html`` from its submissions and
    verifications; returns the board."""
    board = build_board(board_dir)
    for name, content in pages(board).items():
        write_text(Path(board_dir) / name, content)
    return board


def malformed_files(board: Board, board_dir: str | Path) -> list[str]:
    """One line per submission or verification file that the board skipped as invalid (its entry
    is listed as refused, or as FAILED with a broken verification)."""
    lines = []
    for entry in board.entries.values():
        if entry.status == "refused":
            lines.append(f"{Path(board_dir) / SUBMISSIONS_DIR / (entry.name + '.json')}: refused: {entry.reason}")
        elif entry.status == "FAILED" and (entry.reason or "").startswith(BROKEN_VERIFICATION):
            lines.append(f"verification of {entry.name}: {entry.reason}")
    return lines


def check_board(board_dir: str | Path = "leaderboard") -> list[str]:
    """The strict check: one line per generated page that differs from what the submissions and
    verifications give now (hand-edited, stale, or a forged verification) and per malformed
    submission or verification file; empty when the board is current and every file is valid."""
    board = build_board(board_dir)
    problems = malformed_files(board, board_dir)
    for name, content in pages(board).items():
        path = Path(board_dir) / name
        committed = path.read_text() if path.exists() else None
        if committed != content:
            first = next((i for i, (a, b) in enumerate(zip((committed or "").splitlines(), content.splitlines())) if a != b), None)
            where = "missing" if committed is None else f"differs from line {first + 1}" if first is not None else "differs in length"
            problems.append(f"{path}: {where}; regenerate with `structure-bench leaderboard`")
    return problems
