"""Shared by the convergence and SAELens benchmarks: fit many (method, task, cell, params) units in
worker processes and give back their records, or read the ones a run already wrote."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structure_bench as sb
from structure_bench.executors import spawn_pool
from structure_bench.methods import not_applicable

# Worker processes: each fit uses one thread (SAE training and BLAS), so two keep 2 cores busy.
JOBS = int(os.environ.get("STRUCTURE_BENCH_JOBS", "2"))


@dataclass(frozen=True)
class Fit:
    """One fit to run: ``sb.evaluate(method, task, cell, seed, params=params)``."""

    method: str
    task: str
    cell: sb.Cell
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    seed: int = 0

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.task, self.method, self.cell.n_latents, self.cell.l0_target)


def _evaluate(fit: Fit) -> dict[str, Any]:
    return sb.evaluate(fit.method, fit.task, fit.cell, seed=fit.seed, params=fit.params or None)


def label(task: str, method: str, cell: sb.Cell) -> str:
    """A cell's label in the benchmarks' rows and STRUCTURE_BENCH_CELLS: "pizza-v2 topk-sae w512-k20"."""
    return f"{task} {method} {cell.name}"


def run_fits(fits: list[Fit]) -> list[dict[str, Any]]:
    """Their records, in order (failed fits give failed records). Spawned workers, one fit at a time
    each. Not forked ones (ProcessPoolExecutor's default): one spun forever on MKL's allocator lock
    (in a pizza task's float64 einsum) partway through a sweep of long SAE runs."""
    with spawn_pool(JOBS) as pool:
        return list(pool.imap(_evaluate, fits))


def suite_cells(tasks: list[str] | None = None) -> list[tuple[str, sb.Cell]]:
    """(task, cell) for every cell of the tasks' grids (default: the default suite).

    Two environment variables narrow a long benchmark: STRUCTURE_BENCH_TASKS (comma-separated task
    ids, intersected with ``tasks``) and STRUCTURE_BENCH_MAX_LATENTS (cells up to that width).
    """
    tasks = list(tasks or sb.default_suite())
    if os.environ.get("STRUCTURE_BENCH_TASKS"):
        wanted = os.environ["STRUCTURE_BENCH_TASKS"].split(",")
        tasks = [task for task in tasks if task in wanted]
    widest = int(os.environ.get("STRUCTURE_BENCH_MAX_LATENTS", "0")) or None
    return [
        (task, cell) for task in tasks for cell in sb.make(task).metadata.grid if widest is None or cell.n_latents <= widest
    ]


def records_from(directory: str | None) -> dict[tuple[str, str, int, int], dict[str, Any]]:
    """Seed-0 default-parameter records of finished runs, by (task, method, n_latents, l0_target):
    those of ``directory/records`` (``make bench``'s results/default), of ``directory/*/records``
    (``make leaderboard``'s results/leaderboard, one run per method) and of the submissions in
    ``directory/submissions`` (the committed board, ``leaderboard``); empty when None or missing."""
    if not directory:
        return {}
    root = Path(directory)
    paths = [*root.glob("records/*__default__*__s0.json"), *root.glob("*/records/*__default__*__s0.json")]
    records = [json.loads(path.read_text()) for path in paths]
    for path in root.glob("submissions/*.json"):
        records += [r for r in json.loads(path.read_text())["records"] if r["seed"] == 0]
    return {
        (r["task"], r["method"], r["cell"]["n_latents"], r["cell"]["l0_target"]): r for r in records if r["status"] == "ok"
    }


@functools.lru_cache(maxsize=None)
def applies(method: str, task: str) -> bool:
    """Whether a sweep runs the method on the task (``methods.not_applicable``: NMF needs
    non-negative activations, a reference its structures)."""
    loaded = sb.make(task)
    site = loaded.metadata.default_site
    return not_applicable(sb.get_method(method), loaded.activations(site, "train"), loaded.structures(site, "train")) is None
