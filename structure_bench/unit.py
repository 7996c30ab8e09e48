"""One unit of work: fit a method on one task cell and seed, check its outputs, score it, and
build its record (``compute_units``, which scores a shared fit at each cell of its group;
``evaluate`` is the same for a notebook). Writes nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import inspect
import time
import warnings
from dataclasses import dataclass
from typing import Any, Collection, Iterator, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from structure_bench.errors import StructureBenchError
from structure_bench.methods import checked_outputs, get_method, method_import_spec, training_report
from structure_bench.metrics import evaluate as score_structures
from structure_bench.metrics import amortisation_metrics, evaluate_latents, task_effect
from structure_bench.metrics.latents import table_to_json
from structure_bench.planning import WorkUnit, plan
from structure_bench.provenance import PeakMemory, git_commit, hardware, method_source_of, package_version
from structure_bench.registry import load_task
from structure_bench.results import CODES_DIR, DECODERS_DIR, Record
from structure_bench.task import Cell, Task


@functools.lru_cache(maxsize=None)
def _clean_and_ablated_logits(task: Task, site: str) -> tuple[np.ndarray, np.ndarray]:
    X_test = task.activations(site, "test")
    mean = task.activations(site, "train").mean(axis=0, dtype=np.float64)
    ablated = np.broadcast_to(mean.astype(np.float32), X_test.shape)
    return task.forward(X_test, site, "test"), task.forward(np.array(ablated), site, "test")


def forget_tasks() -> None:
    """Drop the tasks this process has built (``load_task``'s cache) and what it derived from them.

    A worker process calls it when its next units are of another task, so that it holds one task's
    arrays at a time, not those of every task it has computed units of.
    """
    load_task.cache_clear()
    _clean_and_ablated_logits.cache_clear()
    gc.collect()


@dataclass
class Fitted:
    """A method fitted on a task's train split and scored on its test split.

    metrics : column -> value (``metrics.evaluate`` plus, for tasks with a model, the task effect).
    decoder : [n_latents, d] as the method returned it. fit_seconds : wall time of ``fit``.
    training : the method's checked ``training_`` (steps, converged, final_loss, ...) or None.
    latents : what each latent is on the test split, one row per latent (``metrics.evaluate_latents``).
    decoder_bias : [d]. reconstruction : [n_test, d] the test split's reconstructions (``rescored``
        scores the fit at another cell from them).
    """

    method: Any
    metrics: dict[str, float]
    decoder: np.ndarray
    fit_seconds: float
    training: dict[str, Any] | None = None
    latents: pd.DataFrame | None = None
    decoder_bias: np.ndarray | None = None
    reconstruction: np.ndarray | None = None


def fit_and_score(task: Task, site: str, spec: str, cell: Cell, seed: int = 0, params: dict[str, Any] | None = None) -> Fitted:
    """Fit the method ``spec`` at ``cell`` and ``seed`` on ``task``'s train split, check its outputs
    at the boundary and score it on the test split: the core of every unit (and of
    ``checks.check_task``'s oracle check, on a task that need not be registered).

    A method that ``uses_ground_truth`` is handed the primary structure (and every structure of the
    site, when its ``fit`` takes ``structures``) and built at its ``reference_size``.
    Raises what the method raises, or MethodError for outputs that break the protocol.
    """
    cls = get_method(spec)
    X_train, X_test = task.activations(site, "train"), task.activations(site, "test")
    fit_kwargs: dict[str, Any] = {}
    n_latents = cell.n_latents
    if getattr(cls, "uses_ground_truth", False):
        truth, structures = task.primary_structure(site, "train"), task.structures(site, "train")
        fit_kwargs["truth"] = truth
        if "structures" in inspect.signature(cls.fit).parameters:
            fit_kwargs["structures"] = structures
        size = getattr(cls, "reference_size", None)
        n_latents = size(X_train, truth, structures) if size else truth.size
    method = cls(n_latents=n_latents, l0_target=cell.l0_target, seed=seed, **(params or {}))
    started = time.perf_counter()
    method.fit(X_train, **fit_kwargs)
    fit_seconds = time.perf_counter() - started
    Z, X_hat, decoder, bias = checked_outputs(method, spec, X_test)
    structures = task.structures(site, "test")
    metrics = score_structures(X_test, Z, X_hat, decoder, bias, structures)
    latents, profile = evaluate_latents(Z, decoder, structures)
    metrics.update(profile)
    metrics.update(amortisation_metrics(X_test, X_hat, decoder, bias, cell.l0_target))
    if task.has_model(site):
        clean, ablated = _clean_and_ablated_logits(task, site)
        spliced = task.forward(X_hat.astype(np.float32), site, "test")
        metrics.update(task_effect(clean, spliced, ablated, task.targets("test")))
    return Fitted(method, metrics, decoder, fit_seconds, training_report(method, spec), latents, bias, X_hat)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class UnitResult:
    """What computing a unit produces: its record and the arrays to save beside it.

    arrays : relative path under the results directory -> array (see ``_fit_and_score``).
    """

    unit: WorkUnit
    record: dict[str, Any]
    arrays: dict[str, np.ndarray]


@contextlib.contextmanager
def unit_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch and BLAS/OpenMP threads, then restore the old counts.

    Every executor runs a unit under the same count, because the count can change the order of
    floating-point sums and so the last bits of a result.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def rescored(fitted: Fitted, task: Task, site: str, cell: Cell) -> Fitted:
    """The same fit scored at another cell of its width (a method that does not read l0_target,
    see ``planning.shared_fits``): only the metrics that read the cell's l0_target change
    (``amortisation_metrics``), so the test split is not encoded again."""
    X_test = task.activations(site, "test")
    at_cell = amortisation_metrics(X_test, fitted.reconstruction, fitted.decoder, fitted.decoder_bias, cell.l0_target)
    return dataclasses.replace(fitted, metrics={**fitted.metrics, **at_cell})


def compute_units(units: Sequence[WorkUnit], with_codes: Collection[WorkUnit] = (), threads: int = 1) -> Iterator[UnitResult]:
    """Compute units that share one fit (``planning.shared_fits``; usually one unit), writing
    nothing: fit and score the first, score that fit at each other unit's cell (``rescored``), and
    yield each unit's result as soon as it is ready. Failures are recorded, not raised: a failed
    fit fails the units that share it, with its reason.

    A method that raises, or calls ``sys.exit``, fails its units; KeyboardInterrupt (Ctrl-C, and
    SIGTERM under the CLI) still stops the run.
    with_codes : units that also save the codes of every sample of their site under codes/
        ([n_all, n_latents] float16, encoded once per fit; the report's per-latent figures read them).
    threads : torch and BLAS threads for these units (see ``unit_threads``).
    """
    task = load_task(units[0].task)
    shared: Fitted | None = None  # the fit, scored at the first unit's cell
    codes: np.ndarray | None = None
    first_failure: str | None = None
    for position, unit in enumerate(units):
        started = time.perf_counter()
        params: dict[str, Any] = dict(unit.params)
        arrays: dict[str, np.ndarray] = {}
        spec, fitted, failure = unit.method, None, None
        with PeakMemory() as memory, unit_threads(threads), warnings.catch_warnings():
            # Convergence chatter from sklearn et al. is not a result: the record's training says it.
            warnings.simplefilter("ignore")
            try:
                if position == 0:
                    fitted = shared = fit_and_score(task, unit.site, unit.method, unit.cell, unit.seed, unit.params)
                elif shared is not None:
                    fitted = rescored(shared, task, unit.site, unit.cell)
                if fitted is not None:
                    arrays[f"{DECODERS_DIR}/{unit.decoder_name}"] = fitted.decoder.astype(np.float32)
                    if unit in with_codes:
                        if codes is None:
                            codes = np.asarray(fitted.method.encode(task.activations(unit.site, "all")), dtype=np.float16)
                        arrays[f"{CODES_DIR}/{unit.decoder_name}"] = codes
                    if hasattr(fitted.method, "get_params"):
                        params = fitted.method.get_params()
                    spec = method_import_spec(get_method(unit.method))
            except (Exception, SystemExit) as exc:  # a broken method must not stop the run
                failure = one_line(exc)
        if fitted is None and failure is None:  # the shared fit failed
            failure = first_failure
        if position == 0:
            first_failure = failure
        ok = fitted if failure is None else None
        record = _unit_record(
            unit, task, failure, metrics=ok.metrics if ok else {}, params=params, spec=spec, started=started,
            fit_seconds=ok.fit_seconds if ok else None, memory=memory, threads=threads,
            training=ok.training if ok else None, latents=ok.latents if ok else None,
            source=getattr(ok.method, "source_", None) if ok else None,
            fit_shared_with=units[0].record_name if position and ok else None,
        )
        yield UnitResult(unit, record, arrays)


def compute_unit(unit: WorkUnit, save_codes: bool = False, threads: int = 1) -> UnitResult:
    """``compute_units`` for one unit (save_codes: with its codes)."""
    return next(compute_units([unit], [unit] if save_codes else (), threads))


def failed_unit(unit: WorkUnit, failure: str, started: float, threads: int) -> UnitResult:
    """The failure record of a unit whose computation ended without a result (its worker died).

    Built by the driver, from the same code as a unit's own record, so it reads like any failure.
    started : ``time.perf_counter()`` when the unit was sent to the worker.
    """
    record = _unit_record(
        unit, load_task(unit.task), failure, metrics={}, params=dict(unit.params), spec=unit.method,
        started=started, fit_seconds=None, memory=PeakMemory(), threads=threads,
    )
    return UnitResult(unit, record, {})


def _unit_record(
    unit: WorkUnit,
    task: Task,
    failure: str | None,
    *,
    metrics: dict[str, float],
    params: dict[str, Any],
    spec: str,
    started: float,
    fit_seconds: float | None,
    memory: PeakMemory,
    threads: int,
    training: dict[str, Any] | None = None,
    latents: pd.DataFrame | None = None,
    source: dict[str, Any] | None = None,
    fit_shared_with: str | None = None,
) -> dict[str, Any]:
    """A unit's record: ok, or failed with ``failure`` (one line) as the reason.

    memory : the sampler that watched the unit; an unentered one (no peak) when none did.
    training : the method's checked training report (``methods.training_report``), if any.
    latents : the fit's per-latent table (``metrics.evaluate_latents``), if any.
    source : where a dictionary trained elsewhere came from (the method's ``source_``: format,
        path, sha256), kept in the provenance.
    fit_shared_with : the record name of the unit whose fit this one scored at its own cell
        (``compute_units``); its fit_time_s is that fit's, its wall_time_s its own scoring.
    """
    error = f"method {unit.method} on {unit.describe()}: {failure}" if failure else None
    return Record(
        task=unit.task_id,
        task_identity=task.identity,
        task_fingerprint=task.fingerprint,
        site=unit.site,
        method=unit.method,
        method_spec=spec,
        params=params,
        cell={"n_latents": unit.cell.n_latents, "l0_target": unit.cell.l0_target},
        seed=unit.seed,
        status="failed" if error else "ok",
        error=error,
        metrics={k: float(v) for k, v in metrics.items()},
        main_score=task.metadata.main_score,
        training=None if error else training,
        latents=None if error or latents is None else table_to_json(latents),
        provenance={
            "package_version": package_version(),
            "git_commit": git_commit(),
            "wall_time_s": time.perf_counter() - started,
            "fit_time_s": fit_seconds,
            "peak_memory_mb": memory.peak_mb,
            "hardware": {**hardware(), "torch_threads": threads},
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "decoder_file": None if error else f"{DECODERS_DIR}/{unit.decoder_name}",
            "method_source": method_source_of(unit.method),
            **({"source": source} if source else {}),
            **({"fit_shared_with": fit_shared_with} if fit_shared_with else {}),
        },
    ).to_json()


def evaluate(
    method: str | type,
    task: str | Task,
    cell: Cell | None = None,
    seed: int = 0,
    site: str | None = None,
    params: dict[str, Any] | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Fit and score one method on one task cell and seed, as a sweep would; returns its record.

    For a notebook: ``sb.evaluate("topk-sae", "pizza-v1", sb.Cell(256, 8), seed=0)``. Nothing is
    written; a failure is returned as a failed record, like a sweep's.

    method : a registered name, a ``module:Class`` spec, or a method class (a class defined in a
        notebook works: it is named ``__main__:Class``).
    task : a registered task id, or a task built by ``sb.make`` (named by its id).
    cell : default the first cell of the task's grid.
    site : default the task's default site.
    params : extra constructor parameters, checked against the method's signature first.
    """
    spec = method if isinstance(method, str) else method_import_spec(method)
    task_id = task if isinstance(task, str) else task.id
    grid_cell = cell if cell is not None else load_task(task_id).metadata.grid[0]
    units = plan([task_id], [spec], [seed], site=site, params={spec: params} if params else None, cells=[grid_cell])
    if not units:
        raise StructureBenchError(f"{spec} does not apply to {task_id}: it needs non-negative activations")
    return compute_unit(units[0], threads=threads).record
