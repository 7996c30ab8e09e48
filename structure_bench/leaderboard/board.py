"""The board's files: ``write_board`` regenerates README.md and index.html from the submissions
and verifications; ``check_board`` (the strict mode) says whether the committed pages are what
those files give and whether every file is valid."""

from __future__ import annotations

from pathlib import Path

from structure_bench.leaderboard.html import render_html
from structure_bench.leaderboard.model import BROKEN_VERIFICATION, Board, build_board
from structure_bench.leaderboard.readme import render_readme
from structure_bench.leaderboard.submission import SUBMISSIONS_DIR
from structure_bench.results import write_text

README = "README.md"
INDEX = "index.html"


def pages(board: Board) -> dict[str, str]:
    """File name -> content of the board's generated pages (``README`` and ``INDEX``)."""
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
