"""The benchmark run: fit each method on each task cell and seed, score it, write its record.

Each unit of work (task, site, method, params, cell, seed) writes one record atomically as soon
as it finishes, so an interrupted run loses nothing finished and a re-run skips what is done.
A method that raises, calls ``sys.exit``, or returns NaN or wrong shapes, becomes a recorded
failure; the run goes on.

Executors: serial, a local process pool (``jobs``), or Ray tasks (``executor="ray"``). Every
executor computes a unit the same way (``compute_unit``, with a fixed number of threads per unit)
and the driver writes what it returns, so a unit's record does not depend on where it ran and
Ray workers need no filesystem shared with the driver.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import multiprocessing
import multiprocessing.pool
import os
import pickle
import platform
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from structure_bench.errors import StructureBenchError
from structure_bench.methods import checked_outputs, get_method, method_import_spec, register_method
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
    """
    params = params or {}
    methods = list(methods)
    for method in methods:
        get_method(method)  # fail fast, before any work, on an unknown method
    units = []
    for task_id in tasks:
        task = load_task(task_id)
        task_site = site or task.metadata.default_site
        applicable = list(methods)
        if (task.activations(task_site, "train") < 0).any():
            for method in methods:
                if getattr(get_method(method), "requires_nonnegative", False):
                    applicable.remove(method)
                    warnings.warn(f"{method} left out on {task.id}/{task_site}: it needs non-negative activations", stacklevel=2)
        for cell in cells or task.metadata.grid:
            for method in applicable:
                for seed in seeds:
                    units.append(WorkUnit(task_id, task_site, method, cell, int(seed), params.get(method, {})))
    return units


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
        },
    }



def write_unit(out: Path, result: UnitResult) -> dict[str, Any]:
    """Save a computed unit's arrays, then its record (last, so a record implies its arrays)."""
    for relative, array in result.arrays.items():
        path = Path(out) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, array)
    write_record(Path(out), result.record, result.unit.record_name)
    return result.record


def run_unit(unit: WorkUnit, out: Path, save_codes: bool = False, threads: int = 1) -> dict[str, Any]:
    """Fit and score one unit and write its record and arrays under ``out``; returns the record."""
    return write_unit(Path(out), compute_unit(unit, save_codes, threads))


def _package_version() -> str:
    from structure_bench import __version__

    return __version__


# -- a sweep --------------------------------------------------------------------------------

def pending(units: list[WorkUnit], out: Path, retry_failed: bool = False) -> list[WorkUnit]:
    """The units without a current finished record (a failed record counts as finished unless retried).

    A record is not current when it cannot be read, or was made on another task than this one now
    (its ``task_identity`` differs; the portable identity, so a results folder moved to another
    machine resumes) or by another structure_bench version: those are recomputed.
    """
    todo, stale = [], []
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
        if (
            record["task_identity"] != load_task(unit.task).identity
            or record["provenance"]["package_version"] != _package_version()
        ):
            todo.append(unit)
            stale.append(unit)
        elif retry_failed and record["status"] == "failed":
            todo.append(unit)
    if stale:
        warnings.warn(
            f"recomputing {len(stale)} records (e.g. {stale[0].describe()}) made on another version of the task "
            f"(its identity differs) or by another structure_bench version than {_package_version()}",
            stacklevel=2,
        )
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


def _compute_args(args: tuple[WorkUnit, bool, int]) -> UnitResult:
    return compute_unit(*args)


def _registrations(units: list[WorkUnit]) -> Registrations:
    return Registrations.of([u.task for u in units], [u.method for u in units])


def _process_pool(units: list[WorkUnit], jobs: int, with_codes: set[WorkUnit], threads: int) -> Iterator[UnitResult]:
    pool = spawn_pool(jobs, _registrations(units))
    try:
        yield from pool.imap_unordered(_compute_args, [(unit, unit in with_codes, threads) for unit in units])
        pool.close()
    except BaseException:
        pool.terminate()  # interrupted (Ctrl-C, SIGTERM, a failed write): stop the workers' fits too
        raise
    finally:
        pool.join()


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
        waiting = [remote.remote(registrations, unit, unit in with_codes, threads) for unit in units]
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            yield ray.get(done[0])
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
    if not todo:
        stream: Iterator[UnitResult] = iter(())
    elif executor == "ray":
        stream = _ray_tasks(todo, jobs, with_codes, threads, address)
    elif jobs == 1:
        stream = _serial(todo, with_codes, threads)
    else:
        stream = _process_pool(todo, jobs, with_codes, threads)
    records = []
    with tqdm(total=len(todo), desc="structure-bench", unit="fit", disable=not progress or not todo) as bar:
        for result in stream:
            records.append(write_unit(out, result))
            bar.set_postfix_str(f"{result.record['task']} {result.record['method']} {result.record['status']}", refresh=False)
            bar.update()
    return records
