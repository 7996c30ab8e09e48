"""The benchmarks stay out of `make test` (they are timings) but must not rot: they still collect."""

from __future__ import annotations

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
