"""The run harness: records, resume, failures, interruption, the results table and schema."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import toy_task  # noqa: F401  (registers toy-v1)
from proc_tree import alive, children

import structure_bench as sb
from structure_bench.cli import main
from structure_bench.results import RESULT_SCHEMA, SCHEMA_VERSION, load_records, read_record, record_paths
from structure_bench.planning import plan, shared_fits
from structure_bench.runner import run
from structure_bench.summary import summarise

TESTS = Path(__file__).parent


def test_run_writes_one_valid_record_per_cell_and_seed(tmp_path: Path) -> None:
    units = plan(["toy-v1"], ["toy_task:LeastSquares"], seeds=[0, 1])
    assert len(units) == 2 * 2  # two cells x two seeds
    records = run(units, tmp_path, progress=False)
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    assert len(record_paths(tmp_path)) == 4
    record = read_record(record_paths(tmp_path)[0])
    assert record["task_identity"] == sb.make("toy-v1").identity
    assert record["task_fingerprint"] == sb.make("toy-v1").fingerprint
    assert record["provenance"]["wall_time_s"] > 0
    assert record["provenance"]["peak_memory_mb"] > 10
    assert 0 <= record["metrics"]["features/mcc"] <= 1
    # The toy task has a model, so the task-effect metrics are there.
    assert "spliced_accuracy" in record["metrics"] and "loss_recovered" in record["metrics"]


def test_rerun_skips_finished_cells(tmp_path: Path) -> None:
    units = plan(["toy-v1"], ["toy_task:LeastSquares"], seeds=[0])
    run(units[:1], tmp_path, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in record_paths(tmp_path)}
    second = run(units, tmp_path, progress=False)
    assert len(second) == len(units) - 1
    assert all(p.stat().st_mtime_ns == before[p.name] for p in record_paths(tmp_path) if p.name in before)
    assert run(units, tmp_path, progress=False) == []


def test_records_of_another_task_version_or_package_version_are_recomputed(tmp_path: Path) -> None:
    units = plan(["toy-v1"], ["toy_task:LeastSquares"], seeds=[0, 1])
    run(units, tmp_path, progress=False)
    paths = sorted(record_paths(tmp_path))
    other_task, other_version, other_machine = (json.loads(path.read_text()) for path in paths[:3])
    other_task["task_identity"] = "0" * 64
    other_version["provenance"]["package_version"] = "0.0.0-old"
    # Made on another machine: other bytes (fingerprint), the same task (identity): still current.
    other_machine["task_fingerprint"] = "0" * 64
    for path, record in zip(paths, (other_task, other_version, other_machine)):
        path.write_text(json.dumps(record))
    with pytest.warns(UserWarning) as caught:
        again = run(units, tmp_path, progress=False)
    messages = " | ".join(str(w.message) for w in caught)
    assert len(caught) == 2, messages
    assert re.search(r"recomputing 1 records [^|]* made by structure_bench 0\.0\.0-old, not", messages)
    assert re.search(r"recomputing 1 records [^|]* made on another version of the task \(its identity differs\)", messages)

    def cell_and_seed(record: dict) -> tuple:
        return record["cell"]["n_latents"], record["cell"]["l0_target"], record["seed"]

    assert sorted(map(cell_and_seed, again)) == sorted(cell_and_seed(json.loads(p.read_text())) for p in paths[:2])
    assert run(units, tmp_path, progress=False) == []


def test_failing_methods_are_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    methods = ["toy_task:Raises", "toy_task:ReturnsNaN", "toy_task:LeastSquares"]
    records = run(plan(["toy-v1"], methods, seeds=[0]), tmp_path, progress=False)
    by_method: dict[str, list] = {}
    for r in records:
        by_method.setdefault(r["method"], []).append(r)
    assert all(r["status"] == "failed" for r in by_method["toy_task:Raises"])
    assert "optimiser diverged" in by_method["toy_task:Raises"][0]["error"]
    nan_error = by_method["toy_task:ReturnsNaN"][0]["error"]
    assert by_method["toy_task:ReturnsNaN"][0]["status"] == "failed" and "NaN" in nan_error
    assert "toy_task:ReturnsNaN" in nan_error and "\n" not in nan_error
    assert all(r["status"] == "ok" for r in by_method["toy_task:LeastSquares"])
    # failures count as finished unless retried
    assert run(plan(["toy-v1"], methods, seeds=[0]), tmp_path, progress=False) == []
    retried = run(plan(["toy-v1"], methods, seeds=[0]), tmp_path, retry_failed=True, progress=False)
    assert len(retried) == 4


def test_a_method_that_does_not_read_l0_target_fits_once_per_width(tmp_path: Path) -> None:
    cells = [sb.Cell(6, 1), sb.Cell(6, 3), sb.Cell(12, 2)]
    units = plan(["toy-v1"], ["ica", "toy_task:LeastSquares"], seeds=[0], cells=cells)
    assert sorted(len(group) for group in shared_fits(units)) == [1, 1, 1, 1, 2]  # ica at width 6
    records = {(r["method"], r["cell"]["l0_target"]): r for r in run(units, tmp_path, progress=False)}
    first, shared = records["ica", 1], records["ica", 3]
    assert shared["provenance"]["fit_shared_with"] == units[0].record_name
    assert all("fit_shared_with" not in r["provenance"] for key, r in records.items() if key != ("ica", 3))
    # Scored at its own cell exactly as a fit of its own: the L0-dependent metrics differ, the rest not.
    assert shared["metrics"] == sb.evaluate("ica", "toy-v1", sb.Cell(6, 3))["metrics"]
    assert shared["metrics"]["fvu_omp"] < first["metrics"]["fvu_omp"]
    assert shared["metrics"]["fvu"] == first["metrics"]["fvu"]
    assert np.array_equal(*(np.load(tmp_path / r["provenance"]["decoder_file"]) for r in (first, shared)))
    assert shared["provenance"]["fit_time_s"] == first["provenance"]["fit_time_s"]


def test_a_failed_shared_fit_fails_every_cell_that_shares_it(tmp_path: Path) -> None:
    method = "toy_task:RaisesSharingItsFit"
    toy_task.RaisesSharingItsFit.fits = 0
    records = run(plan(["toy-v1"], [method], seeds=[0], cells=[sb.Cell(6, 1), sb.Cell(6, 2)]), tmp_path, progress=False)
    assert [r["status"] for r in records] == ["failed", "failed"]
    assert all(r["error"].endswith("RuntimeError: optimiser diverged") for r in records)
    assert records[1]["error"].startswith(f"method {method} on toy-v1/hidden {method} w6-k2 seed 0")
    assert toy_task.RaisesSharingItsFit.fits == 1  # the failed fit is not tried again for the second cell


def test_killed_run_resumes_without_recomputing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "structure_bench.cli", "run", "--quiet",
        "--tasks", "toy_task:toy-v1", "--methods", "toy_task:Slow", "--no-calibration", "--seeds", "0", "1", "2", "3",
        "--out", str(out),
    ]
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(record_paths(out)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {p.name: p.read_bytes() for p in record_paths(out)}
    assert 2 <= len(finished) < 8, "the run should have been killed half-way"
    for raw in finished.values():  # no torn files: every record is complete and valid
        json.loads(raw)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = {p.name: p.read_bytes() for p in record_paths(out)}
    assert len(after) == 8
    assert all(after[name] == raw for name, raw in finished.items())


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_parallel_run_leaves_no_workers(tmp_path: Path, how: signal.Signals) -> None:
    """Killing the driver of a --jobs run stops its workers too (they would go on fitting)."""
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "structure_bench.cli", "run", "--quiet", "--jobs", "2", "--tasks", "toy_task:toy-v1",
        "--methods", "toy_task:Slow", "--seeds", *map(str, range(40)), "--out", str(out),
    ]
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(record_paths(out)) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = children(process.pid)
    assert len(workers) >= 2, "the run should have started its worker processes"
    process.send_signal(how)
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, workers)), "worker processes outlived the killed driver"
    assert len(record_paths(out)) < 40


def test_load_results_is_tidy_and_summary_normalises(tmp_path: Path) -> None:
    run(plan(["toy-v1"], ["oracle", "random", "toy_task:LeastSquares"], seeds=[0, 1]), tmp_path, progress=False)
    frame = sb.load_results(tmp_path)
    assert len(frame) == 3 * 2 * 2
    assert frame["features/mcc"].dtype == float
    summary = summarise(frame, tmp_path)
    oracle = summary[summary.method == "oracle"]
    random = summary[summary.method == "random"]
    assert np.allclose(oracle.main_score_norm, 1.0) and np.allclose(random.main_score_norm, 0.0)
    assert (summary.seeds == 2).all() and summary.seed_mcc.notna().all()


def test_cli_reports_bad_input_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = [
        (["show", "pizzza-v1"], "unknown task"),
        (["show", "toy-v7"], "no version v7"),
        (["show", "pizza"], "malformed task id"),
        (["run", "--tasks", "toy-v1", "--methods", "no-such-method", "--out", str(tmp_path)], "unknown method"),
        (["run", "--tasks", "toy-v1", "--methods", "random", "--param", "oops", "--out", str(tmp_path)], "bad --param"),
        (["results", str(tmp_path / "missing")], "does not exist"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err, err


def test_schema_rejects_a_broken_record(tmp_path: Path) -> None:
    run(plan(["toy-v1"], ["random"], seeds=[0]), tmp_path, progress=False)
    path = record_paths(tmp_path)[0]
    record = json.loads(path.read_text())
    record["metrics"]["fvu"] = "lots"
    path.write_text(json.dumps(record))
    with pytest.raises(sb.StructureBenchError, match=r"metrics/fvu"):
        load_records(tmp_path)
    assert main(["schema"]) == 0
    assert RESULT_SCHEMA["properties"]["schema_version"]["const"] == SCHEMA_VERSION == 2


def test_sweeps_leave_out_nonnegative_methods_on_signed_sites() -> None:
    # pizza-ideal-v1's hidden site is post-ReLU, so nmf is planned there ...
    assert {u.method for u in plan(["pizza-ideal-v1"], ["nmf", "random"], seeds=[0])} == {"nmf", "random"}
    # ... while the toy task's activations are signed: nmf is left out, with a warning.
    with pytest.warns(UserWarning, match="nmf left out on toy-v1/hidden"):
        units = plan(["toy-v1"], ["nmf", "random"], seeds=[0])
    assert {u.method for u in units} == {"random"}


def test_evaluate_gives_the_record_a_sweep_writes(tmp_path: Path) -> None:
    cell = sb.Cell(6, 1)
    (swept,) = run(plan(["toy-v1"], ["toy_task:LeastSquares"], seeds=[2], cells=[cell]), tmp_path, progress=False)
    record = sb.evaluate(toy_task.LeastSquares, "toy-v1", cell, seed=2)  # a class, as in a notebook
    assert record["metrics"] == swept["metrics"] and record["method"] == "toy_task:LeastSquares"
    assert sb.evaluate("toy_task:LeastSquares", sb.make("toy-v1"), seed=2)["cell"] == {"n_latents": 6, "l0_target": 1}
    with pytest.raises(sb.StructureBenchError, match="has no parameter 'alpah'"):
        sb.evaluate("toy_task:LeastSquares", "toy-v1", params={"alpah": 1})
