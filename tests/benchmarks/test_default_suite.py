"""The whole default suite (every task and baseline, each task's grid, seed 0) in a fresh directory.

Slow (minutes): it runs only under `make benchmark`. Records the wall time, the run's peak resident
memory and the slowest fits; the budget is 10 minutes and 2 GB on 2 cores.
"""

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_default_suite(benchmark, tmp_path) -> None:
    out = tmp_path / "suite"
    command = [sys.executable, "-m", "structure_bench.cli", "run", "--out", str(out), "--quiet"]
    benchmark.pedantic(lambda: subprocess.run(command, check=True), rounds=1, iterations=1)
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    fits = sorted(records, key=lambda r: -(r["provenance"]["fit_time_s"] or 0))
    benchmark.extra_info["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    benchmark.extra_info["records"] = len(records)
    benchmark.extra_info["failed"] = sum(r["status"] == "failed" for r in records)
    benchmark.extra_info["slowest_fits"] = [
        f"{r['task']} {r['method']} {r['cell']['n_latents']}x{r['cell']['l0_target']}: {r['provenance']['fit_time_s']:.1f}s"
        for r in fits[:8]
    ]
    assert records and benchmark.extra_info["failed"] == 0
