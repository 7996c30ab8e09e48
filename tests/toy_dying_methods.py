"""Toy methods that end their own process, or fit for long, for the tests of what a run does when a
worker dies or the run is stopped (importable as ``toy_dying_methods``, so spawned workers can too).
"""

from __future__ import annotations

import sys

import numpy as np

from toy_task import LeastSquares


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
