"""A run survives methods that end their process, and stops promptly and cleanly on SIGTERM.

A run that could hang is run in a subprocess with a time limit, so a regression fails instead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import toy_task  # noqa: F401  (registers toy-v1)
from proc_tree import alive, children
from toy_dying_methods import MARKER_ENV, SLOW_TASK

from structure_bench import Cell
from structure_bench.results import read_record, record_paths
from structure_bench.planning import plan
from structure_bench.runner import run

TESTS = Path(__file__).parent
CELL = Cell(6, 1)  # one small cell of toy-v1 keeps the runs short

reads_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def _env(markers: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    if markers is not None:
        env[MARKER_ENV] = str(markers)
    return env


def _records(out: Path) -> dict[tuple[str, int], dict]:
    return {(r["method"], r["seed"]): r for r in map(read_record, record_paths(out))}


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _is_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in command


def _terminate(process: subprocess.Popen) -> tuple[float, set[int], set[int]]:
    """SIGTERM ``process`` and wait (30 s at most) while noting its children.

    Returns the seconds it took to exit, every child pid seen, and those that were worker processes.
    """
    seen = children(process.pid)
    workers = set(filter(_is_worker, seen))
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    while process.poll() is None and time.monotonic() - sent < 30:
        new = children(process.pid) - seen
        seen |= new
        workers |= set(filter(_is_worker, new))
        time.sleep(0.02)
    elapsed = time.monotonic() - sent
    if process.poll() is None:
        process.kill()
        process.wait()
    return elapsed, seen, workers


def _assert_stopped_cleanly(process: subprocess.Popen, elapsed: float, seen: set[int], workers: set[int]) -> None:
    assert elapsed < 10, f"the run took {elapsed:.1f} s to stop after SIGTERM"
    assert process.returncode == 130
    assert "interrupted; finished results are kept" in process.stderr.read().decode()
    # The driver stops and reaps its workers before it exits; helpers such as multiprocessing's
    # resource tracker exit once the driver is gone.
    assert not any(map(alive, workers)), "worker processes outlived the stopped run"
    _wait_for(lambda: not any(map(alive, seen)), "the run's other child processes to exit", timeout=5)


def _start_run(out: Path, markers: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "structure_bench.cli", "run", "--quiet", "--out", str(out), *args]
    return subprocess.Popen(command, env=_env(markers), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_system_exit_in_fit_is_a_recorded_failure(tmp_path: Path) -> None:
    method = "toy_dying_methods:ExitsOnSeed1"
    records = run(plan(["toy-v1"], [method], seeds=[0, 1, 2], cells=[CELL]), tmp_path, progress=False)
    by_seed = {r["seed"]: r for r in records}
    assert sorted(by_seed) == [0, 1, 2]
    assert by_seed[1]["status"] == "failed"
    assert by_seed[1]["error"] == f"method {method} on toy-v1/hidden {method} {CELL.name} seed 1: SystemExit: 3"
    assert by_seed[0]["status"] == by_seed[2]["status"] == "ok"


def test_keyboard_interrupt_in_fit_still_stops_the_run(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(plan(["toy-v1"], ["toy_dying_methods:Interrupted"], seeds=[0], cells=[CELL]), tmp_path, progress=False)
    assert record_paths(tmp_path) == []


def test_dead_workers_are_recorded_failures_and_the_run_goes_on(tmp_path: Path) -> None:
    dying, fine = "toy_dying_methods:DiesOnSeeds1And2", "toy_task:LeastSquares"
    script = (
        "import sys; from structure_bench import Cell; from structure_bench.planning import plan; from structure_bench.runner import run; "
        "run(plan(['toy-v1'], sys.argv[2:], seeds=[0, 1, 2, 3], cells=[Cell(6, 1)]), sys.argv[1], jobs=2, progress=False)"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), dying, fine], env=_env(), check=True, timeout=120,
        stdout=subprocess.DEVNULL,
    )
    records = _records(tmp_path)
    assert len(records) == 8
    assert all(records[fine, seed]["status"] == "ok" for seed in range(4))
    assert records[dying, 0]["status"] == records[dying, 3]["status"] == "ok"
    where = f"method {dying} on toy-v1/hidden {dying} {CELL.name} seed"
    killed, exited = records[dying, 1], records[dying, 2]
    assert killed["status"] == exited["status"] == "failed"
    assert killed["error"] == f"{where} 1: worker process died (killed by signal 9 SIGKILL, out of memory?)"
    assert exited["error"] == f"{where} 2: worker process died (exit code 3)"
    assert killed["task_identity"] == records[fine, 1]["task_identity"] and killed["provenance"]["decoder_file"] is None


def test_a_dead_worker_fails_every_unfinished_cell_of_its_shared_fit(tmp_path: Path) -> None:
    dying = "toy_dying_methods:DiesOnSeed1SharingItsFit"
    script = (
        "import sys; from structure_bench import Cell; from structure_bench.planning import plan; from structure_bench.runner import run; "
        "run(plan(['toy-v1'], [sys.argv[2]], seeds=[0, 1], cells=[Cell(6, 1), Cell(6, 2)]), sys.argv[1], jobs=2, progress=False)"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path), dying], env=_env(), check=True, timeout=120, stdout=subprocess.DEVNULL)
    records = {(r["seed"], r["cell"]["l0_target"]): r for r in map(read_record, record_paths(tmp_path))}
    assert len(records) == 4
    assert records[0, 1]["status"] == records[0, 2]["status"] == "ok"
    assert records[0, 2]["provenance"]["fit_shared_with"].endswith("w6-k1__s0.json")
    for k in (1, 2):
        assert records[1, k]["status"] == "failed"
        assert records[1, k]["error"].endswith(f"w6-k{k} seed 1: worker process died (killed by signal 9 SIGKILL, out of memory?)")


@reads_proc
@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_stops_a_run_while_it_fits(tmp_path: Path, jobs: int) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    process = _start_run(
        tmp_path / "run", markers, "--jobs", str(jobs), "--tasks", "toy_task:toy-v1",
        "--methods", "toy_dying_methods:Sleeps", "--seeds", "0", "1", "2",
    )
    _wait_for(lambda: len(list(markers.glob("fit-*"))) >= jobs, f"{jobs} fits to start")
    _assert_stopped_cleanly(process, *_terminate(process))
    assert record_paths(tmp_path / "run") == []


@reads_proc
def test_sigterm_stops_a_run_just_after_a_worker_died(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    out = tmp_path / "run"
    process = _start_run(
        out, markers, "--jobs", "2", "--tasks", "toy_task:toy-v1",
        "--methods", "toy_dying_methods:DiesOnSeed0", "--seeds", "0", "1", "2",
    )
    _wait_for(lambda: len(record_paths(out)) >= 1, "the dead worker's failure record")
    _assert_stopped_cleanly(process, *_terminate(process))
    (record,) = map(read_record, record_paths(out))  # the finished record is kept
    assert record["seed"] == 0 and "worker process died (killed by signal 9 SIGKILL" in record["error"]


@reads_proc
def test_sigterm_stops_a_run_while_it_loads_a_task(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    script = (
        "import sys, toy_dying_methods; from structure_bench.cli import main; "
        "toy_dying_methods.register_slow_task(); sys.exit(main(sys.argv[1:]))"
    )
    command = [
        sys.executable, "-c", script, "run", "--quiet", "--jobs", "2", "--tasks", SLOW_TASK,
        "--methods", "toy_task:LeastSquares", "--out", str(tmp_path / "run"),
    ]
    process = subprocess.Popen(command, env=_env(markers), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(lambda: any(markers.glob("load-*")), "the task to start loading")
    _assert_stopped_cleanly(process, *_terminate(process))


def test_a_crashed_ray_worker_is_a_recorded_failure(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    method = "toy_dying_methods:DiesOnSeeds1And2"
    try:
        records = run(plan(["toy-v1"], [method], seeds=[0, 1], cells=[CELL]), tmp_path, executor="ray", jobs=2, progress=False)
    finally:
        ray.shutdown()
    by_seed = {r["seed"]: r for r in records}
    assert by_seed[0]["status"] == "ok" and by_seed[1]["status"] == "failed"
    assert by_seed[1]["error"].startswith(f"method {method} on toy-v1/hidden {method} {CELL.name} seed 1: worker process died (")
    assert "WorkerCrashedError" in by_seed[1]["error"] and "\n" not in by_seed[1]["error"]
