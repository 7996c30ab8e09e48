"""A run survives methods that end their process, and stops promptly and cleanly on SIGTERM."""

from __future__ import annotations

from pathlib import Path

import pytest
import toy_task  # noqa: F401  (registers toy-v1)

from structure_bench import Cell
from structure_bench.results import record_paths
from structure_bench.runner import plan, run

CELL = Cell(6, 1)  # one small cell of toy-v1 keeps the runs short


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
