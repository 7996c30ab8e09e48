"""The benchmark run: fit each method on each task cell and seed, score it, write its record.

Each unit of work (task, site, method, params, cell, seed) writes one record atomically as soon
as it finishes, so an interrupted run loses nothing finished and a re-run skips what is done.
A method that raises, calls ``sys.exit``, or returns NaN or wrong shapes, becomes a recorded
failure; the run goes on.

Executors: serial, ``jobs`` local worker processes, or Ray tasks (``executor="ray"``). Every
executor computes a unit the same way (``compute_unit``, with a fixed number of threads per unit)
and the driver writes what it returns, so a unit's record does not depend on where it ran and
Ray workers need no filesystem shared with the driver.

A worker process that dies while it computes a unit (a method calling ``os._exit``, a crash, the
OOM killer's SIGKILL) fails that unit alone: its record says "worker process died" with the exit
code or signal (Ray: the error Ray reports), a fresh worker takes its place and the run goes on.
Ctrl-C, and SIGTERM under the CLI, stop a run in any state within seconds: the workers are
terminated (killed if they do not exit within WORKER_STOP_S), and finished records are kept.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import functools
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.pool
import os
import pickle
import platform
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from structure_bench.errors import StructureBenchError
from structure_bench.methods import (
    check_params,
    checked_outputs,
    get_method,
    method_import_spec,
    method_source,
    register_method,
)
from structure_bench.registry import TaskSpec, make, register_task, registry
from structure_bench.results import SCHEMA_VERSION, read_record, record_name, write_record
from structure_bench.task import Cell, Task

DECODERS_DIR = "decoders"
CODES_DIR = "codes"  # opt-in: float16 codes of every sample, for the report's figures


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
    types against each constructor (``check_params``), the seeds (integers >= 0), the cells
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
        if (task.activations(task_site, "train") < 0).any():
            for method in methods:
                if getattr(classes[method], "requires_nonnegative", False):
                    applicable.remove(method)
                    warnings.warn(f"{method} left out on {task.id}/{task_site}: it needs non-negative activations", stacklevel=2)
        for cell in cells or task.metadata.grid:
            for method in applicable:
                for seed in seeds:
                    units.append(WorkUnit(task_id, task_site, method, cell, seed, params.get(method, {})))
    return units


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


@functools.lru_cache(maxsize=None)
def load_task(task_id: str) -> Task:
    """Tasks are built once per process and shared by all the units that use them."""
    return make(task_id)


@functools.lru_cache(maxsize=None)
def _clean_and_ablated_logits(task_id: str, site: str) -> tuple[np.ndarray, np.ndarray]:
    task = load_task(task_id)
    X_test = task.activations(site, "test")
    mean = task.activations(site, "train").mean(axis=0, dtype=np.float64)
    ablated = np.broadcast_to(mean.astype(np.float32), X_test.shape)
    return task.forward(X_test, site, "test"), task.forward(np.array(ablated), site, "test")


# -- provenance -----------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the structure_bench source tree, or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("-dirty" if dirty else "")


@functools.lru_cache(maxsize=1)
def hardware() -> dict[str, Any]:
    import torch

    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
    }


class PeakMemory:
    """Peak resident memory (MB) of this process while the block runs, sampled every 5 ms."""

    _page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 0.0

    def __init__(self) -> None:
        self.peak_mb: float | None = None
        self._stop = threading.Event()

    def _rss_mb(self) -> float | None:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * self._page_mb
        except OSError:
            return None

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            rss = self._rss_mb()
            if rss is not None:
                self.peak_mb = max(self.peak_mb or 0.0, rss)

    def __enter__(self) -> PeakMemory:
        self.peak_mb = self._rss_mb()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        rss = self._rss_mb()
        if rss is not None:
            self.peak_mb = max(self.peak_mb or 0.0, rss)


# -- one unit -------------------------------------------------------------------------------

def _fit_and_score(
    unit: WorkUnit, save_codes: bool = False
) -> tuple[dict[str, float], dict[str, Any], str, float, dict[str, np.ndarray]]:
    """Fit, check, score. Returns (metrics, params, method spec, fit seconds, arrays).

    arrays : relative path under the results directory -> array to save there: the decoder
    [n_latents, d] as float32 and, with save_codes, the codes of every sample of the site
    [n_all, n_latents] as float16 under codes/ (the report's per-latent figures read them).
    """
    from structure_bench.metrics import evaluate, task_effect

    task = load_task(unit.task)
    cls = get_method(unit.method)
    X_train = task.activations(unit.site, "train")
    X_test = task.activations(unit.site, "test")
    fit_kwargs: dict[str, Any] = {}
    n_latents = unit.cell.n_latents
    if getattr(cls, "uses_ground_truth", False):
        truth = task.primary_structure(unit.site, "train")
        fit_kwargs["truth"] = truth
        n_latents = truth.size
    method = cls(n_latents=n_latents, l0_target=unit.cell.l0_target, seed=unit.seed, **unit.params)
    started = time.perf_counter()
    method.fit(X_train, **fit_kwargs)
    fit_seconds = time.perf_counter() - started
    Z, X_hat, decoder, bias = checked_outputs(method, unit.method, X_test)
    metrics = evaluate(X_test, Z, X_hat, decoder, bias, task.structures(unit.site, "test"))
    if task.has_model(unit.site):
        clean, ablated = _clean_and_ablated_logits(unit.task, unit.site)
        spliced = task.forward(X_hat.astype(np.float32), unit.site, "test")
        metrics.update(task_effect(clean, spliced, ablated, task.targets("test")))
    arrays = {f"{DECODERS_DIR}/{unit.decoder_name}": decoder.astype(np.float32)}
    if save_codes:
        codes = method.encode(task.activations(unit.site, "all"))
        arrays[f"{CODES_DIR}/{unit.decoder_name}"] = np.asarray(codes, dtype=np.float16)
    params = method.get_params() if hasattr(method, "get_params") else dict(unit.params)
    return metrics, params, method_import_spec(cls), fit_seconds, arrays


def _one_line(exc: BaseException) -> str:
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


def compute_unit(unit: WorkUnit, save_codes: bool = False, threads: int = 1) -> UnitResult:
    """Fit and score one unit, writing nothing; failures are recorded, not raised.

    A method that raises, or calls ``sys.exit``, fails its unit; KeyboardInterrupt (Ctrl-C, and
    SIGTERM under the CLI) still stops the run.
    save_codes : also return the codes of every sample of the site (see ``_fit_and_score``).
    threads : torch and BLAS threads for this unit (see ``unit_threads``).
    """
    task = load_task(unit.task)
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    params: dict[str, Any] = dict(unit.params)
    arrays: dict[str, np.ndarray] = {}
    spec, fit_seconds, failure = unit.method, None, None
    with PeakMemory() as memory, unit_threads(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from sklearn et al. is not a result
        try:
            metrics, params, spec, fit_seconds, arrays = _fit_and_score(unit, save_codes)
        except (Exception, SystemExit) as exc:  # a broken method must not stop the run
            failure = _one_line(exc)
    record = _unit_record(
        unit, task, failure, metrics=metrics, params=params, spec=spec, started=started, fit_seconds=fit_seconds,
        memory=memory, threads=threads,
    )
    return UnitResult(unit, record, arrays)


def _failed_unit(unit: WorkUnit, failure: str, started: float, threads: int) -> UnitResult:
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
) -> dict[str, Any]:
    """A unit's record: ok, or failed with ``failure`` (one line) as the reason.

    memory : the sampler that watched the unit; an unentered one (no peak) when none did.
    """
    error = f"method {unit.method} on {unit.describe()}: {failure}" if failure else None
    return {
        "schema_version": SCHEMA_VERSION,
        "task": unit.task_id,
        "task_identity": task.identity,
        "task_fingerprint": task.fingerprint,
        "site": unit.site,
        "method": unit.method,
        "method_spec": spec,
        "params": json.loads(json.dumps(params, default=str)),
        "cell": {"n_latents": unit.cell.n_latents, "l0_target": unit.cell.l0_target},
        "seed": unit.seed,
        "status": "failed" if error else "ok",
        "error": error,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "main_score": task.metadata.main_score,
        "provenance": {
            "package_version": _package_version(),
            "git_commit": git_commit(),
            "wall_time_s": time.perf_counter() - started,
            "fit_time_s": fit_seconds,
            "peak_memory_mb": memory.peak_mb,
            "hardware": {**hardware(), "torch_threads": threads},
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "decoder_file": None if error else f"{DECODERS_DIR}/{unit.decoder_name}",
            "method_source": _method_source(unit.method),
        },
    }


def _method_source(spec: str) -> str | None:
    """The method's source digest (``method_source``), or None when it cannot be imported."""
    try:
        return method_source(get_method(spec))
    except StructureBenchError:
        return None


def write_unit(out: Path, result: UnitResult) -> dict[str, Any]:
    """Save a computed unit's arrays, then its record (last, so a record implies its arrays)."""
    for relative, array in result.arrays.items():
        path = Path(out) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, array)
    write_record(Path(out), result.record, result.unit.record_name)
    return result.record


def _package_version() -> str:
    from structure_bench import __version__

    return __version__


# -- a sweep --------------------------------------------------------------------------------

def _stale_reason(unit: WorkUnit, record: dict[str, Any]) -> str | None:
    """Why a finished record is not current for ``unit`` (None when it is)."""
    if record["task_identity"] != load_task(unit.task).identity:
        return "made on another version of the task (its identity differs)"
    if record["provenance"]["package_version"] != _package_version():
        return f"made by structure_bench {record['provenance']['package_version']}, not {_package_version()}"
    if record["provenance"].get("method_source") != method_source(get_method(unit.method)):
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
    for unit in units:
        path = Path(out) / "records" / unit.record_name
        if not path.exists():
            todo.append(unit)
            continue
        try:
            record = read_record(path)
        except StructureBenchError as exc:
            warnings.warn(f"recomputing {unit.describe()}: {exc}", stacklevel=2)
            todo.append(unit)
            continue
        reason = _stale_reason(unit, record)
        if reason is not None:
            todo.append(unit)
            stale.setdefault(reason, []).append(unit)
        elif retry_failed and record["status"] == "failed":
            todo.append(unit)
    for reason, units_of in stale.items():
        warnings.warn(f"recomputing {len(units_of)} records (e.g. {units_of[0].describe()}) {reason}", stacklevel=2)
    return todo


def first_seed_units(units: list[WorkUnit]) -> list[WorkUnit]:
    """The unit with the lowest seed of each config (task, site, method, params, cell)."""
    first: dict[tuple, WorkUnit] = {}
    for unit in units:
        if unit.config not in first or unit.seed < first[unit.config].seed:
            first[unit.config] = unit
    return list(first.values())


EXECUTORS = ("local", "ray")


def _serial(units: list[WorkUnit], with_codes: set[WorkUnit], threads: int) -> Iterator[UnitResult]:
    for unit in units:
        yield compute_unit(unit, unit in with_codes, threads)


@dataclass(frozen=True)
class Registrations:
    """The tasks and named methods a sweep uses, as registered in this process.

    A spawned worker or a Ray worker imports modules and entry points afresh; it does not see what
    a test, a notebook or a script registered at run time. Workers install these first.
    """

    tasks: tuple[TaskSpec, ...] = ()
    methods: tuple[tuple[str, type], ...] = ()

    @classmethod
    def of(cls, task_ids: Iterable[str], methods: Iterable[str] = ()) -> Registrations:
        """Those of ``task_ids`` and ``methods`` known here (``module:`` ones import themselves)."""
        known = registry()
        tasks = tuple(known[t] for t in sorted({t for t in task_ids if ":" not in t}) if t in known)
        named = []
        for name in sorted({m for m in methods if ":" not in m}):
            with contextlib.suppress(StructureBenchError):
                named.append((name, get_method(name)))
        return cls(tasks, tuple(named))

    def check_importable(self) -> None:
        """A one-line error for a registration that a spawned process could not import."""
        for what, name, obj in [("task", s.id, s.entry_point) for s in self.tasks] + [
            ("method", name, cls) for name, cls in self.methods
        ]:
            if not _importable(obj):
                raise StructureBenchError(
                    f"{what} {name!r} is registered here with {obj!r}, which a worker process cannot import "
                    "(defined in a notebook or a function?): run with jobs=1 or --executor ray, or define it in a module"
                )

    def install(self) -> None:
        """Register what this process lacks."""
        known = registry()
        for task in self.tasks:
            if task.id not in known:
                register_task(task.id, task.entry_point, **task.kwargs)
        for name, cls in self.methods:
            try:
                get_method(name)
            except StructureBenchError:
                register_method(name)(cls)


def _importable(obj: Any) -> bool:
    """Whether pickle can send ``obj`` (a class or function: by reference) to a spawned process."""
    if isinstance(obj, str):
        return True
    try:
        pickle.dumps(obj)
    except Exception:
        return False
    # A spawned process re-imports a script's __main__ from its file; a notebook's has none.
    return getattr(obj, "__module__", None) != "__main__" or hasattr(sys.modules["__main__"], "__file__")


def _start_worker(parent: int, registrations: Registrations) -> None:
    """Worker initializer: exit as soon as the driver is gone (even SIGKILLed); adopt its registrations."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    registrations.install()


def spawn_pool(jobs: int, registrations: Registrations = Registrations()) -> multiprocessing.pool.Pool:
    """A pool of ``jobs`` spawned worker processes that exit when this process dies.

    spawn, not fork: forking a process that has started torch's thread pools can deadlock.
    Spawned workers get the parent's sys.path, so test and user modules import there too, and
    install ``registrations`` (see ``Registrations``).
    """
    registrations.check_importable()
    return multiprocessing.get_context("spawn").Pool(
        jobs, initializer=_start_worker, initargs=(os.getpid(), registrations)
    )


def _registrations(units: list[WorkUnit]) -> Registrations:
    return Registrations.of([u.task for u in units], [u.method for u in units])


_READY = "ready"  # what a unit worker sends once it has started (see ``_work``)
WORKER_STOP_S = 2.0  # how long a worker has to exit when asked or terminated, before it is killed


@dataclass
class _Raised:
    """An exception a worker raised outside any method (the harness's or a task's): the driver raises it."""

    error: Exception
    traceback: str


def _work(connection: multiprocessing.connection.Connection, parent: int, registrations: Registrations) -> None:
    """A unit worker: compute the units the driver sends, one at a time, answering each on ``connection``.

    It ignores SIGINT: Ctrl-C reaches the whole process group, and the driver stops its workers.
    None, or the driver closing its end, ends it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _start_worker(parent, registrations)
    with contextlib.suppress(EOFError, BrokenPipeError):  # the driver is gone
        connection.send(_READY)
        while (job := connection.recv()) is not None:
            try:
                answer: UnitResult | _Raised = compute_unit(*job)
            except Exception as exc:
                error = exc if _round_trips(exc) else RuntimeError(_one_line(exc))
                answer = _Raised(error, traceback.format_exc())
            connection.send(answer)


def _round_trips(obj: object) -> bool:
    """Whether pickle can send ``obj`` to another process and rebuild it there (many exceptions cannot)."""
    try:
        pickle.loads(pickle.dumps(obj))
    except Exception:
        return False
    return True


def _exit_reason(exitcode: int | None) -> str:
    """How a process ended, from ``multiprocessing.Process.exitcode`` (-N: killed by signal N)."""
    if exitcode is None or exitcode >= 0:
        return f"exit code {exitcode}"
    number = -exitcode
    try:
        name = f" {signal.Signals(number).name}"
    except ValueError:
        name = ""
    hint = ", out of memory?" if number == signal.SIGKILL else ""  # what the OOM killer sends
    return f"killed by signal {number}{name}{hint}"


class _Worker:
    """A spawned worker process (``_work``) and the driver's end of its pipe, with the unit it computes."""

    def __init__(self, context: Any, registrations: Registrations) -> None:
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_work, args=(theirs, os.getpid(), registrations), daemon=True)
        self.process.start()
        theirs.close()  # the worker holds the only other end, so its death ends the pipe here
        self.started = False
        self.unit: WorkUnit | None = None
        self.sent_at = 0.0

    def send(self, unit: WorkUnit, save_codes: bool, threads: int) -> None:
        """Give the worker ``unit``. If it has just died, the unit fails with it (its sentinel tells)."""
        with contextlib.suppress(OSError):
            self.connection.send((unit, save_codes, threads))
        self.unit, self.sent_at = unit, time.perf_counter()

    def receive(self) -> Iterator[UnitResult]:
        """The results the worker has sent, without waiting for more; raises what it raised outside a method."""
        with contextlib.suppress(EOFError, OSError):  # it died, maybe half-way through a message
            while self.connection.poll():
                message = self.connection.recv()
                if isinstance(message, _Raised):
                    raise message.error from RuntimeError(f"in a worker process:\n{message.traceback}")
                if isinstance(message, UnitResult):
                    self.unit = None
                    yield message
                else:  # _READY
                    self.started = True

    def exit_reason(self) -> str:
        """How the (dead) worker ended; one that has not ended within WORKER_STOP_S is killed."""
        self.process.join(WORKER_STOP_S)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join(WORKER_STOP_S)
        return _exit_reason(self.process.exitcode)


def _stop(workers: list[_Worker]) -> None:
    """End the workers: idle ones are asked to exit, busy ones (the run stopped) terminated; any
    still running after WORKER_STOP_S is killed."""
    for worker in workers:
        if worker.unit is None:
            with contextlib.suppress(OSError):
                worker.connection.send(None)
        else:
            worker.process.terminate()
    deadline = time.monotonic() + WORKER_STOP_S
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.process.join(WORKER_STOP_S)
        worker.connection.close()


def _worker_processes(units: list[WorkUnit], jobs: int, with_codes: set[WorkUnit], threads: int) -> Iterator[UnitResult]:
    """Compute the units in ``jobs`` spawned worker processes, one unit each at a time; results stream back.

    The driver waits on the workers' pipes and process sentinels together, so a worker that dies
    without answering (os._exit, a signal: the OOM killer's SIGKILL) fails exactly its own unit,
    and a fresh worker takes its place. One that dies before it has started (it could not import
    or register what the run needs) would die again: that stops the run. Every wait has a timeout,
    so signals are handled promptly; however the run ends, the workers are stopped.
    """
    registrations = _registrations(units)
    registrations.check_importable()
    context = multiprocessing.get_context("spawn")  # not fork: see spawn_pool
    todo = list(reversed(units))
    workers: list[_Worker] = []
    try:
        while todo or any(w.unit is not None for w in workers):
            for worker in [w for w in workers if w.unit is None]:
                if not worker.process.is_alive():  # ended while idle (killed from outside): it held no unit
                    worker.exit_reason()
                    worker.connection.close()
                    workers.remove(worker)
                elif todo:
                    worker.send(*_job(todo.pop(), with_codes, threads))
            while todo and len(workers) < jobs:
                workers.append(_Worker(context, registrations))
                workers[-1].send(*_job(todo.pop(), with_codes, threads))
            busy = [w for w in workers if w.unit is not None]
            ready = set(multiprocessing.connection.wait(
                [w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=0.5
            ))
            for worker in [w for w in busy if w.connection in ready or w.process.sentinel in ready]:
                yield from worker.receive()
                if worker.process.sentinel not in ready and worker.process.is_alive():
                    continue
                unit, reason = worker.unit, worker.exit_reason()
                worker.connection.close()
                workers.remove(worker)  # a fresh one takes its place while units remain
                if unit is None:
                    continue
                if not worker.started:
                    raise StructureBenchError(
                        f"a worker process died while starting ({reason}), before computing {unit.describe()}; "
                        "see its error above"
                    )
                yield _failed_unit(unit, f"worker process died ({reason})", worker.sent_at, threads)
    finally:
        _stop(workers)


def _job(unit: WorkUnit, with_codes: set[WorkUnit], threads: int) -> tuple[WorkUnit, bool, int]:
    """The arguments of ``compute_unit`` for ``unit``."""
    return unit, unit in with_codes, threads


def _compute_registered(registrations: Registrations, unit: WorkUnit, save_codes: bool, threads: int) -> UnitResult:
    registrations.install()
    return compute_unit(unit, save_codes, threads)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise StructureBenchError("--executor ray needs Ray: pip install 'structure-bench[ray]'") from None
    return ray


def _ray_tasks(
    units: list[WorkUnit], jobs: int, with_codes: set[WorkUnit], threads: int, address: str | None
) -> Iterator[UnitResult]:
    """Each unit is a Ray task asking for ``threads`` CPUs; results stream back as they finish.

    A task whose worker dies (Ray's WorkerCrashedError, OutOfMemoryError, ...) fails its unit
    (its wall time counts from when the units were submitted) and the run goes on; an exception
    raised in a worker outside any method stops the run, as under the local executors.

    address : a running cluster (``auto``, ``ray://host:10001``); its workers must be able to
    import structure_bench and every task and method module named. None starts a local
    instance of ``jobs * threads`` CPUs whose workers get this process's sys.path.
    """
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here and address is None:
        ray.init(
            num_cpus=jobs * threads,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}},
        )
    elif started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=threads, max_retries=0)(_compute_registered)
        registrations = ray.put(_registrations(units))  # cloudpickle: notebook classes travel too
        sent_at = time.perf_counter()
        unit_of = {remote.remote(registrations, *_job(unit, with_codes, threads)): unit for unit in units}
        waiting = list(unit_of)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1, timeout=0.5)  # a timeout, so signals stop it promptly
            for ref in done:
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError:  # raised outside any method (the harness's, a task's)
                    raise
                except ray.exceptions.RayError as exc:  # its worker died (a signal, out of memory, its node lost)
                    result = _failed_unit(unit_of[ref], f"worker process died ({_one_line(exc)})", sent_at, threads)
                yield result
    finally:
        if started_here:
            ray.shutdown()


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
    with_codes = set(first_seed_units(units)) if save_codes else set()
    if executor == "ray" and todo:
        stream = _ray_tasks(todo, jobs, with_codes, threads, address)
    elif jobs == 1 or not todo:
        stream = _serial(todo, with_codes, threads)
    else:
        stream = _worker_processes(todo, jobs, with_codes, threads)
    records = []
    # closing: however this loop ends (a signal, a failed write), the executor stops its workers now
    with contextlib.closing(stream), tqdm(total=len(todo), desc="structure-bench", unit="fit", disable=not progress or not todo) as bar:
        for result in stream:
            records.append(write_unit(out, result))
            bar.set_postfix_str(f"{result.record['task']} {result.record['method']} {result.record['status']}", refresh=False)
            bar.update()
    return records
