"""The benchmarks stay out of `make test` (they are timings) but must not rot: they still collect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmarks_are_left_out_of_the_tests_but_still_collect() -> None:
    def collect(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "tests/benchmarks/" not in collect()  # what `make test` runs
    named = collect("tests/benchmarks", "-m", "slow or not slow")  # what `make benchmark` runs
    assert "test_topk_sae_training_throughput" in named and "test_default_suite" in named


def test_convergence_summary_counts_gaps_within_the_boards_seed_range(tmp_path, monkeypatch) -> None:
    """A gap of 0.02 is within seeds spread 0.9-0.95, one of 0.08 is not; a cell off the board is not counted."""
    sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
    import summary

    records = [
        {"status": "ok", "task": "t", "method": "m", "cell": {"n_latents": n, "l0_target": 2},
         "main_score": "s", "metrics": {"s": score}}
        for n, scores in ((8, (0.9, 0.95, 0.93)), (16, (0.5, 0.52, 0.51))) for score in scores
    ]
    (tmp_path / "m.json").write_text(json.dumps({"records": records}))
    monkeypatch.setattr(summary, "BOARD", tmp_path)
    summary.seed_ranges.cache_clear()
    rows = [{"method": "m", "cell": f"t m w{n}-k2", "main_gap": gap, "fvu_gap": 0.0, "outside": True, "fit_s": 1.0,
             "long_fit_s": 4.0} for n, gap in ((8, 0.02), (16, 0.08), (32, 0.0))]
    assert "| m | 3 | 0.0800 | +0.0% to +0.0% | 3 | 1 of 2 | 3 / 12 |" == summary._convergence_row("m", rows)
    summary.seed_ranges.cache_clear()


def test_convergence_target_and_the_lengths_table() -> None:
    """beyond_target() is the target (0.01 main score, 5% relative FVU either way); the lengths table
    counts the cells whose first long run settled and prints each cell's scores at every length."""
    sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
    import summary
    import test_convergence

    def record(main: float, fvu: float) -> dict:
        return {"main_score": "s", "metrics": {"s": main, "fvu": fvu, "dead_fraction": 0.5}}

    assert not test_convergence.beyond_target(record(0.905, 0.104), record(0.9, 0.1))
    assert test_convergence.beyond_target(record(0.92, 0.1), record(0.9, 0.1))
    assert test_convergence.beyond_target(record(0.9, 0.106), record(0.9, 0.1))
    assert test_convergence.beyond_target(record(0.9, 0.094), record(0.9, 0.1))
    assert test_convergence.scores(record(0.123456, 0.0123456)) == [0.1235, 0.01235, 0.5]
    rows = [
        {"cell": "t m w8-k2", "long_settled": True, "scores": {"1x": [0.5, 0.2, 0.1], "4x": [0.9, 0.1, 0.2], "16x": [0.9, 0.1, 0.2]}},
        {"cell": "t m w16-k2", "long_settled": False, "scores": {"1x": [0.5, 0.2, 0.1], "4x": [0.6, 0.1, 0.2], "16x": [0.8, 0.3, 0.4]}},
    ]
    lines = summary._lengths(rows, ["1x", "4x", "16x"])
    assert "1 of 2 cells: the 4x run within 0.01 main score and 5% FVU of the 16x run." in lines
    assert "| t m w16-k2 | 0.500 / 0.600 / 0.800 | 0.2000 / 0.1000 / 0.3000 | 0.10 / 0.20 / 0.40 |" in lines


def test_twins_count_the_gaps_rounding_does_not_explain() -> None:
    """A cell outside the target is beyond its twins when its gap exceeds the target and the sum of
    its two twins' gaps, in main score or in FVU; the table counts twins apart by the target."""
    sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
    import summary

    def row(main: float, fvu: float, twins: tuple[tuple[float, float], tuple[float, float]]) -> dict:
        return {"cell": f"t m w{len(rows)}-k2", "method": "m", "main_gap": main, "fvu_gap": fvu,
                "outside": main > 0.01 or abs(fvu) > 0.05,
                "twin": {n: {"main_gap": m, "fvu_gap": f} for n, (m, f) in zip(("1x", "4x"), twins)}}

    rows: list[dict] = []
    for case in ((0.05, 0.0, ((0.001, 0.0), (0.002, 0.0))),  # beyond: rounding moves it 0.003
                 (0.05, 0.0, ((0.03, 0.0), (0.04, 0.06))),  # within 0.03 + 0.04; the 4x twins apart
                 (0.0, -0.2, ((0.0, 0.01), (0.0, -0.02))),  # beyond in FVU
                 (0.005, 0.01, ((0.0, 0.0), (0.0, 0.0)))):  # inside the target
        rows.append(row(*case))
    assert [summary.beyond_twins(r) for r in rows] == [True, False, True, False]
    lines = summary._twins(rows, ["1x", "4x"])
    assert "| m | 4 | 1 | 1 | 0.0005 / 0.0010 | 0.040 (t m w1-k2) | 3 | 2 |" in lines
