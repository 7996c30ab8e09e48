"""The leaderboard: submit a finished run, verify it by re-running, publish the pages.

Data flows one way: result records -> ``submit`` (checks, freezes them into
``leaderboard/submissions/<name>.json``) -> ``verify`` (re-runs on hidden instances into
``leaderboard/verified/<name>.json``) -> ``write_board`` (README.md and index.html, ranked by the
re-runs) and ``check_board`` (the committed pages are what those files give).
"""

from structure_bench.leaderboard.board import check_board, write_board
from structure_bench.leaderboard.model import build_board
from structure_bench.leaderboard.submission import (
    SUBMISSION_SCHEMA,
    SubmissionRejected,
    build_submission,
    read_submission,
    submit,
)
from structure_bench.leaderboard.verify import verify

__all__ = [
    "SUBMISSION_SCHEMA",
    "SubmissionRejected",
    "build_board",
    "check_board",
    "build_submission",
    "read_submission",
    "submit",
    "verify",
    "write_board",
]
