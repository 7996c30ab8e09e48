"""The benchmark run: compute each unit of a sweep (``planning.plan``) that has no current record
in the results folder, and write each record atomically as soon as it arrives, so an interrupted
run loses nothing finished and a re-run skips what is done.

A method that raises, calls ``sys.exit``, returns NaN or wrong shapes, or whose worker process
dies, becomes a recorded failure and the run goes on (``unit``, ``executors``).
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from structure_bench.errors import StructureBenchError
from structure_bench.executors import EXECUTORS, ray_tasks, serial, worker_processes
from structure_bench.methods import get_method, method_source
from structure_bench.planning import WorkUnit, first_seed_units, shared_fits
from structure_bench.provenance import package_version
from structure_bench.registry import load_task
from structure_bench.results import RECORDS_DIR, read_record, write_record
from structure_bench.unit import UnitResult, forget_tasks


def write_unit(out: Path, result: UnitResult) -> dict[str, Any]:
    """Save a computed unit's arrays, then its record (last, so a record implies its arrays)."""
    for relative, array in result.arrays.items():
        path = Path(out) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, array)
    write_record(Path(out), result.record, result.unit.record_name)
    return result.record


def _stale_reason(unit: WorkUnit, record: dict[str, Any], sources: dict[str, str]) -> str | None:
    """Why a finished record is not current for ``unit`` (None when it is).

    sources : method spec -> its source digest now, filled as methods come up (each method's
        files are hashed once per ``pending``, not once per record).
    """
    if record["task_identity"] != load_task(unit.task).identity:
        return "made on another version of the task (its identity differs)"
    if record["provenance"]["package_version"] != package_version():
        return f"made by structure_bench {record['provenance']['package_version']}, not {package_version()}"
    if unit.method not in sources:
        sources[unit.method] = method_source(get_method(unit.method))
    if record["provenance"].get("method_source") != sources[unit.method]:
        return f"made by other code of {unit.method} (its source digest differs)"
    return None


def pending(units: list[WorkUnit], out: Path, retry_failed: bool = False) -> list[WorkUnit]:
    """The units without a current finished record (a failed record counts as finished unless retried).

    A record is not current when it cannot be read, or was made on another task than this one now
    (its ``task_identity`` differs; the portable identity, so a results folder moved to another
    machine resumes), by another structure_bench version, or by other code of its method (its
    ``method_source`` digest differs, see ``structure_bench.methods.method_source``): those are
    recomputed, with one warning per reason.
    """
    todo: list[WorkUnit] = []
    stale: dict[str, list[WorkUnit]] = {}
    sources: dict[str, str] = {}
    for unit in units:
        path = Path(out) / RECORDS_DIR / unit.record_name
        if not path.exists():
            todo.append(unit)
            continue
        try:
            record = read_record(path)
        except StructureBenchError as exc:
            warnings.warn(f"recomputing {unit.describe()}: {exc}", stacklevel=2)
            todo.append(unit)
            continue
        reason = _stale_reason(unit, record, sources)
        if reason is not None:
            todo.append(unit)
            stale.setdefault(reason, []).append(unit)
        elif retry_failed and record["status"] == "failed":
            todo.append(unit)
    for reason, units_of in stale.items():
        warnings.warn(f"recomputing {len(units_of)} records (e.g. {units_of[0].describe()}) {reason}", stacklevel=2)
    return todo


def run(
    units: list[WorkUnit],
    out: str | Path,
    jobs: int = 1,
    retry_failed: bool = False,
    progress: bool = True,
    save_codes: bool = False,
    executor: str = "local",
    threads: int = 1,
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Run the units not yet finished in ``out``; returns the records written by this call.

    jobs : units computed at once: worker processes for the local executor (1 runs in this
        process), the CPUs of a local Ray instance divided by ``threads``.
    save_codes : for the first seed of each config, also save the codes of every sample of the
        site under out/codes/ (what ``structure-bench report`` draws per-latent figures from).
    executor : "local" (this machine) or "ray" (Ray tasks; needs the ``ray`` extra).
    threads : torch and BLAS threads per unit, the same under every executor, so that a sweep
        gives bit-identical records whichever executor and ``jobs`` ran it.
    address : Ray cluster address (executor "ray"); None starts a local instance.
    """
    from tqdm.auto import tqdm

    if executor not in EXECUTORS:
        raise StructureBenchError(f"unknown executor {executor!r}: expected one of {', '.join(EXECUTORS)}")
    if jobs < 1 or threads < 1:
        raise StructureBenchError(f"jobs and threads must be at least 1 (got jobs={jobs}, threads={threads})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = pending(units, out, retry_failed)
    groups = shared_fits(todo)  # a method that does not read l0_target fits once per width
    with_codes = set(first_seed_units(units)) if save_codes else set()
    in_this_process = not todo or (executor == "local" and jobs == 1)
    if in_this_process:
        stream = serial(groups, with_codes, threads)
    else:
        forget_tasks()  # checking records built the tasks; the workers build their own
        if executor == "ray":
            stream = ray_tasks(groups, jobs, with_codes, threads, address)
        else:
            stream = worker_processes(groups, jobs, with_codes, threads)
    records = []
    # closing: however this loop ends (a signal, a failed write), the executor stops its workers now
    with contextlib.closing(stream), tqdm(total=len(todo), desc="structure-bench", unit="fit", disable=not progress or not todo) as bar:
        for result in stream:
            records.append(write_unit(out, result))
            bar.set_postfix_str(f"{result.record['task']} {result.record['method']} {result.record['status']}", refresh=False)
            bar.update()
    return records
