"""Planning a sweep: the units of work (task, site, method, params, cell, seed) and the checks
that can be made before any fit."""

from __future__ import annotations

import difflib
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from structure_bench.errors import StructureBenchError
from structure_bench.methods import check_params, get_method, not_applicable
from structure_bench.registry import load_task
from structure_bench.results import record_name
from structure_bench.task import Cell


@dataclass(frozen=True)
class WorkUnit:
    """One fit-and-score: a method with fixed params on one task cell and seed."""

    task: str
    site: str
    method: str
    cell: Cell
    seed: int
    params: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def params_key(self) -> str:
        if not self.params:
            return "default"
        blob = json.dumps(self.params, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def task_id(self) -> str:
        """The bare task id (``task`` may carry a ``module:`` prefix that registers it)."""
        return self.task.rpartition(":")[2]

    @property
    def record_name(self) -> str:
        return record_name(self.task_id, self.site, self.method, self.params_key, self.cell.name, self.seed)

    @property
    def decoder_name(self) -> str:
        """<record stem>.npy: the file name of this unit's decoder (and of its codes, when saved)."""
        return self.record_name.removesuffix(".json") + ".npy"

    @property
    def config(self) -> tuple[str, str, str, str, Cell]:
        """Everything but the seed."""
        return (self.task_id, self.site, self.method, self.params_key, self.cell)

    def describe(self) -> str:
        return f"{self.task_id}/{self.site} {self.method} {self.cell.name} seed {self.seed}"


def plan(
    tasks: Iterable[str],
    methods: Iterable[str],
    seeds: Iterable[int],
    site: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    cells: Iterable[Cell] | None = None,
) -> list[WorkUnit]:
    """Every unit of a sweep: tasks x sites x methods x (each task's grid, or ``cells``) x seeds.

    params : method -> extra constructor parameters.
    Everything that can be checked before fitting is checked here, each with a one-line
    StructureBenchError: the method names (also those ``params`` names), the parameters' names and
    types against each constructor (``check_params``), their values at each cell (the method's
    ``validate_params``, where it has one), the seeds (integers >= 0), the cells
    (1 <= l0_target <= n_latents) and the site.
    """
    params = params or {}
    methods = list(methods)
    seeds = _checked_seeds(seeds)
    classes = {method: get_method(method) for method in methods}  # an unknown method fails here
    for method, method_params in params.items():
        if method not in classes:
            close = difflib.get_close_matches(method, methods, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise StructureBenchError(
                f"parameters are given for method {method!r}, which is not run (methods: {', '.join(methods)}){hint}"
            )
        check_params(classes[method], method_params, method)
    cells = None if cells is None else _checked_cells(cells)
    units = []
    for task_id in tasks:
        task = load_task(task_id)
        task_site = site or task.metadata.default_site
        if task_site not in task.sites:
            raise StructureBenchError(f"task {task.id} has no site {task_site!r} (its sites: {', '.join(task.sites)})")
        applicable = list(methods)
        X_train, structures = task.activations(task_site, "train"), task.structures(task_site, "train")
        for method in methods:
            reason = not_applicable(classes[method], X_train, structures)
            if reason is not None:
                applicable.remove(method)
                warnings.warn(f"{method} left out on {task.id}/{task_site}: {reason}", stacklevel=2)
        for cell in cells or task.metadata.grid:
            for method in applicable:
                method_params = params.get(method, {})
                _check_values(classes[method], method_params, cell)
                units.extend(WorkUnit(task_id, task_site, method, cell, seed, method_params) for seed in seeds)
    return units


def _check_values(cls: Any, params: dict[str, Any], cell: Cell) -> None:
    """Build the method at the cell and run its ``validate_params``, where it has one: a value out
    of range (``--param topk-sae.lr=-1``) is then one error before any fit, not a failure per unit."""
    if hasattr(cls, "validate_params"):
        cls(n_latents=cell.n_latents, l0_target=cell.l0_target, seed=0, **params).validate_params()


def _checked_seeds(seeds: Iterable[int]) -> list[int]:
    checked = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise StructureBenchError(f"seed {seed!r} is not an integer >= 0")
        checked.append(int(seed))
    if not checked:
        raise StructureBenchError("no seeds given")
    return checked


def _checked_cells(cells: Iterable[Cell]) -> list[Cell]:
    checked = list(cells)
    for cell in checked:
        if not 1 <= cell.l0_target <= cell.n_latents:
            raise StructureBenchError(
                f"cell {cell.name}: needs 1 <= l0_target <= n_latents (got n_latents={cell.n_latents}, l0_target={cell.l0_target})"
            )
    if not checked:
        raise StructureBenchError("no cells given")
    return checked


def shared_fits(units: Iterable[WorkUnit]) -> list[list[WorkUnit]]:
    """The units grouped by the fit they can share, in order of first appearance: the cells of one
    width (same task, site, params and seed) of a method that does not read l0_target
    (``Method.reads_l0_target`` False) share one fit; every other unit is a group of its own."""
    groups: dict[Any, list[WorkUnit]] = {}
    for unit in units:
        shares = not getattr(get_method(unit.method), "reads_l0_target", True)
        key = (unit.task_id, unit.site, unit.method, unit.params_key, unit.cell.n_latents, unit.seed) if shares else unit
        groups.setdefault(key, []).append(unit)
    return list(groups.values())


def first_seed_units(units: list[WorkUnit]) -> list[WorkUnit]:
    """The unit with the lowest seed of each config (task, site, method, params, cell)."""
    first: dict[tuple, WorkUnit] = {}
    for unit in units:
        if unit.config not in first or unit.seed < first[unit.config].seed:
            first[unit.config] = unit
    return list(first.values())
