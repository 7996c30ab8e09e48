"""The benchmark run: fit each method on each task cell and seed, score it, write its record.

Each unit of work (task, site, method, params, cell, seed) writes one record atomically as soon
as it finishes, so an interrupted run loses nothing finished and a re-run skips what is done.
A method that raises, or returns NaN or wrong shapes, becomes a recorded failure; the run goes on.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import platform
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from structure_bench.errors import StructureBenchError
from structure_bench.methods import checked_outputs, get_method, method_import_spec
from structure_bench.registry import make
from structure_bench.results import read_record, record_name, write_record
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
        for cell in cells or task.metadata.grid:
            for method in methods:
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
        "torch_threads": torch.get_num_threads(),
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
    unit: WorkUnit, out: Path, save_codes: bool = False
) -> tuple[dict[str, float], dict[str, Any], str, float]:
    """Fit, check, score. Returns (metrics, params, method spec, fit seconds).

    save_codes : also encode every sample of the site and save the codes [n_all, n_latents] as
    float16 under out/codes/ (the report's per-latent figures read them).
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
    decoder_path = out / DECODERS_DIR / unit.decoder_name
    decoder_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(decoder_path, decoder.astype(np.float32))
    if save_codes:
        codes_path = out / CODES_DIR / unit.decoder_name
        codes_path.parent.mkdir(parents=True, exist_ok=True)
        np.save(codes_path, np.asarray(method.encode(task.activations(unit.site, "all")), dtype=np.float16))
    params = method.get_params() if hasattr(method, "get_params") else dict(unit.params)
    return metrics, params, method_import_spec(cls), fit_seconds


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_unit(unit: WorkUnit, out: Path, save_codes: bool = False) -> dict[str, Any]:
    """Fit and score one unit and write its record; failures are recorded, not raised.

    save_codes : save the codes of every sample of the site (see ``_fit_and_score``).
    """
    out = Path(out)
    task = load_task(unit.task)
    started = time.perf_counter()
    metrics: dict[str, float] = {}
    params: dict[str, Any] = dict(unit.params)
    spec, fit_seconds, error = unit.method, None, None
    with PeakMemory() as memory, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter from sklearn et al. is not a result
        try:
            metrics, params, spec, fit_seconds = _fit_and_score(unit, out, save_codes)
        except Exception as exc:  # a broken method must not stop the run
            error = f"method {unit.method} on {unit.describe()}: {_one_line(exc)}"
    record = {
        "schema_version": 1,
        "task": unit.task_id,
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
            "hardware": hardware(),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "decoder_file": None if error else f"{DECODERS_DIR}/{unit.decoder_name}",
        },
    }
    write_record(out, record, unit.record_name)
    return record


def _package_version() -> str:
    from structure_bench import __version__

    return __version__


# -- a sweep --------------------------------------------------------------------------------

def pending(units: list[WorkUnit], out: Path, retry_failed: bool = False) -> list[WorkUnit]:
    """The units without a finished record (a failed record counts as finished unless retried)."""
    todo = []
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
        if retry_failed and record["status"] == "failed":
            todo.append(unit)
    return todo


def first_seed_units(units: list[WorkUnit]) -> list[WorkUnit]:
    """The unit with the lowest seed of each config (task, site, method, params, cell)."""
    first: dict[tuple, WorkUnit] = {}
    for unit in units:
        if unit.config not in first or unit.seed < first[unit.config].seed:
            first[unit.config] = unit
    return list(first.values())


def _serial(units: list[WorkUnit], out: Path, with_codes: set[WorkUnit]) -> Iterator[dict[str, Any]]:
    for unit in units:
        yield run_unit(unit, out, unit in with_codes)


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _process_pool(units: list[WorkUnit], out: Path, jobs: int, with_codes: set[WorkUnit]) -> Iterator[dict[str, Any]]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // jobs)
    # spawn, not fork: forking a process that has started torch's thread pools can deadlock.
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init, initargs=(threads,)) as pool:
        futures = [pool.submit(run_unit, unit, out, unit in with_codes) for unit in units]
        for future in as_completed(futures):
            yield future.result()


def run(
    units: list[WorkUnit],
    out: str | Path,
    jobs: int = 1,
    retry_failed: bool = False,
    progress: bool = True,
    save_codes: bool = False,
) -> list[dict[str, Any]]:
    """Run the units not yet finished in ``out``; returns the records written by this call.

    save_codes : for the first seed of each config, also save the codes of every sample of the
    site under out/codes/ (what ``structure-bench report`` draws per-latent figures from).
    """
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = pending(units, out, retry_failed)
    with_codes = set(first_seed_units(units)) if save_codes else set()
    stream = _serial(todo, out, with_codes) if jobs <= 1 else _process_pool(todo, out, jobs, with_codes)
    records = []
    with tqdm(total=len(todo), desc="structure-bench", unit="fit", disable=not progress or not todo) as bar:
        for record in stream:
            records.append(record)
            bar.set_postfix_str(f"{record['task']} {record['method']} {record['status']}", refresh=False)
            bar.update()
    return records
