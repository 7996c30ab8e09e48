"""Executors: a sweep run serially, with --jobs 2, and as Ray tasks gives the same results table."""

from __future__ import annotations

import dataclasses
import os
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import structure_bench as sb
from structure_bench import executors
from structure_bench.cli import main
from structure_bench.results import load_results
from structure_bench.planning import plan
from structure_bench.registry import load_task
from structure_bench.runner import run
from structure_bench.summary import metric_columns
from structure_bench.unit import forget_tasks
from toy_task import LeastSquares, ToyTask

# TASK and the first method are registered by the fixture below, in this process only: spawned
# and Ray workers must receive them. Workers import the module-prefixed method themselves.
# topk-sae exercises torch, whose sums depend on threads.
TASK = "parallel-toy-v1"
METHODS = ["parallel-least-squares", "toy_task:LeastSquares", "random", "topk-sae"]
PARAMS = {"topk-sae": {"max_steps": 300}}
SEEDS = [0, 1]


def _sweep(out: Path, **executor: object) -> pd.DataFrame:
    records = run(plan([TASK], METHODS, SEEDS, params=PARAMS), out, progress=False, **executor)
    assert len(records) == 2 * len(METHODS) * len(SEEDS) and all(r["status"] == "ok" for r in records)
    return load_results(out).sort_values(["method", "n_latents", "seed"], ignore_index=True)


def _assert_identical(expected: pd.DataFrame, got: pd.DataFrame, out_expected: Path, out_got: Path) -> None:
    columns = metric_columns(expected)
    assert columns and columns == metric_columns(got)
    pd.testing.assert_frame_equal(expected[columns], got[columns], check_exact=True)
    for name in expected.decoder_file:
        assert np.array_equal(np.load(out_expected / name), np.load(out_got / name)), name


@pytest.fixture(scope="module", autouse=True)
def _registered_at_run_time() -> None:
    # Not at import: a worker importing this module or toy_task would not register these.
    if TASK not in sb.list_tasks():
        sb.register_task(TASK, entry_point=ToyTask)
    sb.register_method(METHODS[0])(LeastSquares)


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    out = tmp_path_factory.mktemp("serial")
    return _sweep(out), out


def test_jobs_2_matches_serial_exactly(serial: tuple[pd.DataFrame, Path], tmp_path: Path) -> None:
    parallel = _sweep(tmp_path, jobs=2)
    assert load_task.cache_info().currsize == 0  # the driver let go of the tasks planning built
    _assert_identical(serial[0], parallel, serial[1], tmp_path)


def test_ray_matches_serial_exactly(serial: tuple[pd.DataFrame, Path], tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    try:
        frame = _sweep(tmp_path, executor="ray", jobs=2)
    finally:
        ray.shutdown()
    assert not ray.is_initialized()
    _assert_identical(serial[0], frame, serial[1], tmp_path)


def test_a_task_workers_cannot_import_is_a_one_line_error_before_any_work(tmp_path: Path) -> None:
    class LocalTask(ToyTask):
        """Defined in a function: pickle cannot send it to a spawned worker."""

    sb.register_task("local-toy-v1", entry_point=LocalTask)
    units = plan(["local-toy-v1"], ["random"], [0, 1])
    run(units[:1], tmp_path, progress=False)
    with pytest.raises(sb.StructureBenchError, match="task 'local-toy-v1' is registered here with .*LocalTask.*jobs=1") as error:
        run(units, tmp_path, jobs=2, progress=False)
    assert "\n" not in str(error.value)
    assert len(list((tmp_path / "records").glob("*.json"))) == 1


def test_bad_executor_settings_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    units = plan([TASK], ["random"], [0])
    with pytest.raises(sb.StructureBenchError, match="unknown executor 'dask'"):
        run(units, tmp_path, executor="dask", progress=False)
    with pytest.raises(sb.StructureBenchError, match="at least 1"):
        run(units, tmp_path, threads=0, progress=False)
    assert main(["run", "--tasks", TASK, "--methods", "random", "--jobs", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "at least 1" in err and "\n" not in err


def test_forget_tasks_lets_go_of_every_built_task() -> None:
    task = load_task(TASK)
    assert load_task(TASK) is task  # built once per process
    held = weakref.ref(task)
    del task
    forget_tasks()
    assert held() is None  # nothing else in the harness keeps it alive
    assert load_task(TASK) is not None


def test_a_worker_holds_one_task_at_a_time_and_returns_freed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    a = plan([TASK], ["random"], [0])[0]
    b = dataclasses.replace(a, task="another-task-v1")
    jobs = [([unit], [], 1) for unit in (a, a, b, a)]
    events: list[str] = []

    class Pipe:
        def recv(self) -> object:
            return jobs.pop(0) if jobs else None

        def send(self, message: object) -> None:
            pass

    monkeypatch.setattr(executors.signal, "signal", lambda *args: None)  # keep pytest's Ctrl-C
    monkeypatch.setattr(executors, "compute_units", lambda group, *rest: events.append(f"fit {group[0].task}") or [])
    monkeypatch.setattr(executors, "forget_tasks", lambda: events.append("forget"))
    monkeypatch.setattr(executors, "_return_freed_memory", lambda: events.append("trim"))
    executors._work(Pipe(), os.getppid(), executors.Registrations())
    assert events == [
        "forget", f"fit {TASK}", "trim", f"fit {TASK}", "trim",
        "forget", "fit another-task-v1", "trim", "forget", f"fit {TASK}", "trim",
    ]
