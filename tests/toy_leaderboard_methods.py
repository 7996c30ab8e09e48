"""Toy methods for the leaderboard tests (importable as ``toy_leaderboard_methods``): an honest one,
and the cheats that verify must catch."""

from __future__ import annotations

import os

import numpy as np

import structure_bench as sb
from toy_task import LeastSquares

ANSWER_ENV = "TOY_LEADERBOARD_ANSWER"
COPY_ENV = "COPY_PUBLIC_TASK"


def _pad(rows: np.ndarray, n_latents: int, seed: int) -> np.ndarray:
    """rows [k, d] plus random unit rows up to [n_latents, d], all normalised."""
    extra = np.random.default_rng([seed, 7]).normal(size=(n_latents - len(rows), rows.shape[1]))
    rows = np.vstack([rows, extra])[:n_latents]
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class RepeatedDirections(LeastSquares):
    """An honest method that reads only X: the most frequent unit directions among the samples
    (a sample with one feature on points exactly along it), then least-squares codes. On toy-v1
    it finds the planted features exactly, on every seed and every hidden instance."""

    def fit(self, X: np.ndarray) -> RepeatedDirections:
        X = np.asarray(X, dtype=np.float64)
        norms = np.linalg.norm(X, axis=1)
        units = np.round(X[norms > 1e-9] / norms[norms > 1e-9, None], 6)
        directions, counts = np.unique(units, axis=0, return_counts=True)
        singular = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
        rank = int((singular > 1e-6 * singular[0]).sum())
        top = directions[np.argsort(-counts, kind="stable")[: min(rank, self.n_latents)]]
        self.decoder_ = _pad(top, self.n_latents, self.seed)
        return self


class NoisyDirections(RepeatedDirections):
    """``RepeatedDirections`` with seed-dependent noise on its rows: honest, its scores vary a little
    from seed to seed."""

    def fit(self, X: np.ndarray) -> NoisyDirections:
        super().fit(X)
        noise = np.random.default_rng([self.seed, 3]).normal(size=self.decoder_.shape)
        self.decoder_ = _pad(self.decoder_ + 0.1 * noise, self.n_latents, self.seed)
        return self


class NoisyTruth(LeastSquares):
    """Declares that it uses the ground truth, as the oracle does: the planted directions plus
    seed-dependent noise. A reference, never ranked."""

    uses_ground_truth = True

    def fit(self, X: np.ndarray, truth) -> NoisyTruth:
        rng = np.random.default_rng([self.seed, 1])  # not the stream that drew the planted directions
        self.decoder_ = truth.vectors + 0.05 * rng.normal(size=truth.vectors.shape)
        return self


class ReadsTruth(LeastSquares):
    """Cheat: builds the public task inside fit and copies its truth, without declaring it."""

    def fit(self, X: np.ndarray) -> ReadsTruth:
        truth = sb.make("toy-v1").primary_structure()
        self.decoder_ = _pad(truth.vectors, self.n_latents, self.seed)
        return self


class ShipsAnswer(LeastSquares):
    """Cheat: loads the public task's answer from a file it ships (path in $TOY_LEADERBOARD_ANSWER)."""

    def fit(self, X: np.ndarray) -> ShipsAnswer:
        self.decoder_ = _pad(np.load(os.environ[ANSWER_ENV]), self.n_latents, self.seed)
        return self


class CopiesPublicTruth(LeastSquares):
    """Cheat: the public task's primary truth (task named in $COPY_PUBLIC_TASK) as its dictionary,
    with the oracle's codes."""

    def fit(self, X: np.ndarray) -> CopiesPublicTruth:
        from structure_bench_baselines.calibration import Oracle

        truth = sb.make(os.environ[COPY_ENV]).primary_structure(split="train")
        self.oracle_ = Oracle(n_latents=truth.size, l0_target=self.l0_target).fit(X, truth=truth)
        self.n_latents, self.decoder_, self.decoder_bias_ = truth.size, self.oracle_.decoder_, self.oracle_.decoder_bias_
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        return self.oracle_.encode(X)
