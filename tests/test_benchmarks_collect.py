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
