"""The committed leaderboard is what its submission and verification files give on this machine:
a hand-edited page or verification, or a task whose identity changed since, fails here (and in CI)."""

from __future__ import annotations

from pathlib import Path

from structure_bench.leaderboard import build_board, check_board

BOARD = Path(__file__).resolve().parents[1] / "leaderboard"


def test_the_committed_board_is_current() -> None:
    assert check_board(BOARD) == []


def test_every_committed_submission_is_verified_and_none_is_refused() -> None:
    statuses = {name: entry.status for name, entry in build_board(BOARD).entries.items()}
    assert set(statuses.values()) <= {"verified", "reference"}, statuses
    assert statuses.get("oracle") == "reference"
