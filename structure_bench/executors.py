"""Executors: where a sweep's units are computed. Serially in this process, in ``jobs`` spawned
worker processes the driver owns, or as Ray tasks; each yields the units' results (``UnitResult``)
for the driver to write, computed the same way (``compute_units``) whichever ran them. The work is
given out as groups of units that share one fit (``planning.shared_fits``; most are one unit).

A worker process that dies while it computes a group (a method calling ``os._exit``, a crash, the
OOM killer's SIGKILL) fails the units of that group it had not finished: their records say "worker
process died" with the exit code or signal (Ray: the error Ray reports), a fresh worker takes its
place and the run goes on.
Ctrl-C, and SIGTERM under the CLI, stop a run in any state within seconds: the workers are
terminated (killed if they do not exit within WORKER_STOP_S).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import multiprocessing
import multiprocessing.connection
import multiprocessing.pool
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from structure_bench.errors import StructureBenchError
from structure_bench.methods import get_method, register_method
from structure_bench.planning import WorkUnit
from structure_bench.registry import TaskSpec, register_task, registry
from structure_bench.unit import UnitResult, compute_units, failed_unit, forget_tasks, one_line


EXECUTORS = ("local", "ray")


def serial(groups: list[list[WorkUnit]], with_codes: set[WorkUnit], threads: int) -> Iterator[UnitResult]:
    for group in groups:
        yield from compute_units(*_job(group, with_codes, threads))


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


def _registrations(groups: list[list[WorkUnit]]) -> Registrations:
    units = [unit for group in groups for unit in group]
    return Registrations.of([u.task for u in units], [u.method for u in units])


_READY = "ready"  # what a unit worker sends once it has started (see ``_work``)
WORKER_STOP_S = 2.0  # how long a worker has to exit when asked or terminated, before it is killed


@dataclass
class _Raised:
    """An exception a worker raised outside any method (the harness's or a task's): the driver raises it."""

    error: Exception
    traceback: str


def _work(connection: multiprocessing.connection.Connection, parent: int, registrations: Registrations) -> None:
    """A unit worker: compute the groups of units the driver sends, one at a time, sending each
    unit's result on ``connection`` as it is ready.

    It ignores SIGINT: Ctrl-C reaches the whole process group, and the driver stops its workers.
    None, or the driver closing its end, ends it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _start_worker(parent, registrations)
    task = None
    with contextlib.suppress(EOFError, BrokenPipeError):  # the driver is gone
        connection.send(_READY)
        while (job := connection.recv()) is not None:
            if job[0][0].task != task:  # the plan lists a task's units together: one task held at a time
                forget_tasks()
                task = job[0][0].task
            try:
                for result in compute_units(*job):
                    connection.send(result)
            except Exception as exc:
                error = exc if _round_trips(exc) else RuntimeError(one_line(exc))
                connection.send(_Raised(error, traceback.format_exc()))
            _return_freed_memory()


def _return_freed_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    glibc keeps what a fit freed for later allocations, so without it each worker's resident memory
    stays at the largest fit it has computed.
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> Any:
    """The C library where it is glibc (it has ``malloc_trim``), else None; looked up once, in a worker."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


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
    """A spawned worker process (``_work``) and the driver's end of its pipe, with the units of the
    group it computes that have no result yet (``units``; empty: idle)."""

    def __init__(self, context: Any, registrations: Registrations) -> None:
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_work, args=(theirs, os.getpid(), registrations), daemon=True)
        self.process.start()
        theirs.close()  # the worker holds the only other end, so its death ends the pipe here
        self.started = False
        self.units: list[WorkUnit] = []
        self.sent_at = 0.0

    def send(self, group: list[WorkUnit], with_codes: list[WorkUnit], threads: int) -> None:
        """Give the worker a group. If it has just died, the group fails with it (its sentinel tells)."""
        with contextlib.suppress(OSError):
            self.connection.send((group, with_codes, threads))
        self.units, self.sent_at = list(group), time.perf_counter()

    def receive(self) -> Iterator[UnitResult]:
        """The results the worker has sent, without waiting for more; raises what it raised outside a method."""
        with contextlib.suppress(EOFError, OSError):  # it died, maybe half-way through a message
            while self.connection.poll():
                message = self.connection.recv()
                if isinstance(message, _Raised):
                    raise message.error from RuntimeError(f"in a worker process:\n{message.traceback}")
                if isinstance(message, UnitResult):
                    self.units.remove(message.unit)
                    self.sent_at = time.perf_counter()  # the next unit's wall time counts from here
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
        if not worker.units:
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


def worker_processes(
    groups: list[list[WorkUnit]], jobs: int, with_codes: set[WorkUnit], threads: int
) -> Iterator[UnitResult]:
    """Compute the groups in ``jobs`` spawned worker processes, one group each at a time; results stream back.

    The driver waits on the workers' pipes and process sentinels together, so a worker that dies
    without answering (os._exit, a signal: the OOM killer's SIGKILL) fails exactly the units it
    had not finished, and a fresh worker takes its place. One that dies before it has started (it could not import
    or register what the run needs) would die again: that stops the run. Every wait has a timeout,
    so signals are handled promptly; however the run ends, the workers are stopped.
    """
    registrations = _registrations(groups)
    registrations.check_importable()
    context = multiprocessing.get_context("spawn")  # not fork: see spawn_pool
    todo = list(reversed(groups))
    workers: list[_Worker] = []
    try:
        while todo or any(w.units for w in workers):
            for worker in [w for w in workers if not w.units]:
                if not worker.process.is_alive():  # ended while idle (killed from outside): it held no unit
                    worker.exit_reason()
                    worker.connection.close()
                    workers.remove(worker)
                elif todo:
                    worker.send(*_job(todo.pop(), with_codes, threads))
            while todo and len(workers) < jobs:
                workers.append(_Worker(context, registrations))
                workers[-1].send(*_job(todo.pop(), with_codes, threads))
            busy = [w for w in workers if w.units]
            ready = set(multiprocessing.connection.wait(
                [w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=0.5
            ))
            for worker in [w for w in busy if w.connection in ready or w.process.sentinel in ready]:
                yield from worker.receive()
                if worker.process.sentinel not in ready and worker.process.is_alive():
                    continue
                unfinished, reason = worker.units, worker.exit_reason()
                worker.connection.close()
                workers.remove(worker)  # a fresh one takes its place while units remain
                if unfinished and not worker.started:
                    raise StructureBenchError(
                        f"a worker process died while starting ({reason}), before computing {unfinished[0].describe()}; "
                        "see its error above"
                    )
                for unit in unfinished:
                    yield failed_unit(unit, f"worker process died ({reason})", worker.sent_at, threads)
    finally:
        _stop(workers)


def _job(group: list[WorkUnit], with_codes: set[WorkUnit], threads: int) -> tuple[list[WorkUnit], list[WorkUnit], int]:
    """The arguments of ``compute_units`` for ``group``."""
    return group, [unit for unit in group if unit in with_codes], threads


def _compute_registered(
    registrations: Registrations, group: list[WorkUnit], with_codes: list[WorkUnit], threads: int
) -> list[UnitResult]:
    registrations.install()
    return list(compute_units(group, with_codes, threads))


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise StructureBenchError("--executor ray needs Ray: pip install 'structure-bench[ray]'") from None
    return ray


def ray_tasks(
    groups: list[list[WorkUnit]], jobs: int, with_codes: set[WorkUnit], threads: int, address: str | None
) -> Iterator[UnitResult]:
    """Each group is a Ray task asking for ``threads`` CPUs; results stream back as groups finish.

    A task whose worker dies (Ray's WorkerCrashedError, OutOfMemoryError, ...) fails its units
    (their wall time counts from when the groups were submitted) and the run goes on; an exception
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
        registrations = ray.put(_registrations(groups))  # cloudpickle: notebook classes travel too
        sent_at = time.perf_counter()
        group_of = {remote.remote(registrations, *_job(group, with_codes, threads)): group for group in groups}
        waiting = list(group_of)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1, timeout=0.5)  # a timeout, so signals stop it promptly
            for ref in done:
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayTaskError:  # raised outside any method (the harness's, a task's)
                    raise
                except ray.exceptions.RayError as exc:  # its worker died (a signal, out of memory, its node lost)
                    reason = f"worker process died ({one_line(exc)})"
                    results = [failed_unit(unit, reason, sent_at, threads) for unit in group_of[ref]]
                yield from results
    finally:
        if started_here:
            ray.shutdown()
