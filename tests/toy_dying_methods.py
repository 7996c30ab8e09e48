"""Toy methods that end their own process, or fit for long, for the tests of what a run does when a
worker dies or the run is stopped (importable as ``toy_dying_methods``, so spawned workers can too).

Those that kill their process must only run in a worker process, never in a test's own.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from structure_bench import TaskArrays, register_task
from toy_task import LeastSquares, ToyTask

MARKER_ENV = "TOY_DYING_MARKER_DIR"
SLOW_TASK = "slow-toy-v1"


def mark(what: str, seed: int) -> None:
    """Leave the file <what>-<seed>-<pid> in $TOY_DYING_MARKER_DIR (when set): what a test waits for."""
    folder = os.environ.get(MARKER_ENV)
    if folder:
        Path(folder, f"{what}-{seed}-{os.getpid()}").touch()


class ExitsOnSeed1(LeastSquares):
    """Calls ``sys.exit(3)`` in fit on seed 1, as a script-like method might."""

    def fit(self, X: np.ndarray) -> ExitsOnSeed1:
        if self.seed == 1:
            sys.exit(3)
        return super().fit(X)


class Interrupted(LeastSquares):
    """Raises KeyboardInterrupt in fit, as Ctrl-C (or SIGTERM under the CLI) does in the middle of one."""

    def fit(self, X: np.ndarray) -> Interrupted:
        raise KeyboardInterrupt


class DiesOnSeeds1And2(LeastSquares):
    """Ends its own process in fit: SIGKILL on seed 1 (what the OOM killer sends), ``os._exit(3)`` on seed 2."""

    def fit(self, X: np.ndarray) -> DiesOnSeeds1And2:
        if self.seed == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.seed == 2:
            os._exit(3)
        return super().fit(X)


class DiesOnSeed1SharingItsFit(DiesOnSeeds1And2):
    """``DiesOnSeeds1And2`` that does not read l0_target: the cells of one width share one fit."""

    reads_l0_target = False


class Sleeps(LeastSquares):
    """Marks that its fit started, then sleeps a minute in short naps: a run to stop half-way."""

    def fit(self, X: np.ndarray) -> Sleeps:
        mark("fit", self.seed)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return super().fit(X)


class DiesOnSeed0(Sleeps):
    """SIGKILLs its own process in fit on seed 0 (after marking it), sleeps like ``Sleeps`` on the others."""

    def fit(self, X: np.ndarray) -> DiesOnSeed0:
        if self.seed == 0:
            mark("dies", self.seed)
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X)


class SlowToyTask(ToyTask):
    """The toy task, whose arrays take a minute to generate (marked when it starts): a run to stop while it loads."""

    def generate(self) -> TaskArrays:
        mark("load", self.seed)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return super().generate()


def register_slow_task() -> None:
    """Register ``SLOW_TASK``; called only by the process that should load it (a registered task is seen
    by whatever lists every task, so importing this module does not register it)."""
    register_task(SLOW_TASK, entry_point=SlowToyTask)
