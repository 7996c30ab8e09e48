"""Toy methods for the leaderboard tests (importable as ``toy_leaderboard_methods``)."""

from __future__ import annotations

import numpy as np

from toy_task import LeastSquares


class NoisyTruth(LeastSquares):
    """The planted directions plus seed-dependent noise: a good method whose score varies little
    across seeds, so that an edited score stands out from its seed interval."""

    uses_ground_truth = True

    def fit(self, X: np.ndarray, truth) -> NoisyTruth:
        rng = np.random.default_rng([self.seed, 1])  # not the stream that drew the planted directions
        self.decoder_ = truth.vectors + 0.05 * rng.normal(size=truth.vectors.shape)
        return self
