"""The leaderboard: submit a finished run, verify it by re-running, publish the pages.

Data flows one way: result records -> ``submit`` (checks, freezes them into
``leaderboard/submissions/<name>.json``) -> ``verify`` (re-runs on fresh seeds) ->
``write_board`` (README.md and index.html, generated from the submission files only).
"""

from structure_bench.leaderboard.board import build_board, write_board
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
    "build_submission",
    "read_submission",
    "submit",
    "verify",
    "write_board",
]
