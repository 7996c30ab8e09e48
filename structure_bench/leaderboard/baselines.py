"""Put the built-in baselines on the board from real runs: run each on the default suite with
three seeds, submit it, verify it on hidden instances, regenerate the pages (``make leaderboard``).

    python -m structure_bench.leaderboard.baselines --out results/leaderboard --board leaderboard
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from structure_bench.errors import StructureBenchError
from structure_bench.leaderboard.board import write_board
from structure_bench.leaderboard.submission import MIN_SEEDS, submit


def submit_baselines(
    out: Path, board: Path, tasks: list[str], methods: list[str], seeds: list[int], jobs: int = 1
) -> list[str]:
    """Run (resumably, under ``out/<method>``), submit and verify each method; returns one line per
    method that could not be submitted or did not verify (the others are ranked on the board)."""
    from structure_bench.leaderboard.verify import verify
    from structure_bench.planning import plan
    from structure_bench.runner import run

    refused = []
    for method in methods:
        results = out / method.replace(":", "--")
        units = plan(tasks, [method], seeds)
        run(units, results, jobs=jobs)
        # A method is judged on the tasks it applies to (NMF only on non-negative sites).
        applicable = [task for task in tasks if any(u.task == task for u in units)]
        try:
            path = submit(results, method, applicable, board, replace=True)
            print(f"submitted {path}; verifying it on hidden instances")
            verify(path.stem, board, out=out / "verify" / path.stem, jobs=jobs)
        except StructureBenchError as exc:
            refused.append(f"{method}: {exc}")
    return refused


def main(argv: Sequence[str] | None = None) -> int:
    from structure_bench.methods import builtin_methods
    from structure_bench.registry import default_suite

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/leaderboard"), help="results root (resumable)")
    parser.add_argument("--board", type=Path, default=Path("leaderboard"))
    parser.add_argument("--tasks", nargs="+", help="default: the default suite (registry.default_suite)")
    parser.add_argument("--methods", nargs="+", help="default: the built-in baselines")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(MIN_SEEDS)))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    refused = submit_baselines(
        args.out, args.board, args.tasks or default_suite(), args.methods or builtin_methods(), args.seeds, args.jobs
    )
    for line in refused:
        print(f"not submitted: {line}", file=sys.stderr)
    board = write_board(args.board)
    print(f"{len(board.entries)} submissions, {len(board.ranking)} ranked, on {len(board.tasks)} tasks -> {args.board}")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
