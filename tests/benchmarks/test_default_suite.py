"""The whole default suite as `make bench` runs it (every task and baseline, each task's grid,
seed 0, two worker processes, codes saved and the HTML report written) in a fresh directory.

Slow (minutes): it runs only under `make benchmark`. Records the wall time, the peak resident
memory of the whole process tree (driver and workers together, sampled twice a second) and the
slowest fits; the budget is 10 minutes and 2 GB on 2 cores.
"""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from proc_tree import tree_rss_mb

JOBS = 2


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="samples memory from /proc")
def test_default_suite(benchmark, tmp_path) -> None:
    out = tmp_path / "suite"
    command = [sys.executable, "-m", "structure_bench.cli", "run", "--plots", "--jobs", str(JOBS), "--out", str(out), "--quiet"]
    peak = [0.0]

    def run_and_watch() -> None:
        process = subprocess.Popen(command)
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.5):
                peak[0] = max(peak[0], tree_rss_mb(process.pid))

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            assert process.wait() == 0
        finally:
            done.set()
            watcher.join()

    benchmark.pedantic(run_and_watch, rounds=1, iterations=1)
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    fits = sorted(records, key=lambda r: -(r["provenance"]["fit_time_s"] or 0))
    benchmark.extra_info["peak_memory_mb"] = round(peak[0])
    benchmark.extra_info["records"] = len(records)
    benchmark.extra_info["failed"] = sum(r["status"] == "failed" for r in records)
    benchmark.extra_info["report_mb"] = round((out / "report.html").stat().st_size / 2**20, 1)
    benchmark.extra_info["slowest_fits"] = [
        f"{r['task']} {r['method']} {r['cell']['n_latents']}x{r['cell']['l0_target']}: {r['provenance']['fit_time_s']:.1f}s"
        for r in fits[:8]
    ]
    assert records and benchmark.extra_info["failed"] == 0
