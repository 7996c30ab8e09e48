"""Dense linear baselines from scikit-learn: PCA, NMF and FastICA (they ignore l0_target)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.decomposition import NMF, PCA, FastICA

from structure_bench.errors import MethodError

from structure_bench.methods import Method
from structure_bench.metrics.reconstruction import principal_dimensions

FILLER_STREAM = 0x46494C4C  # independent of the default_rng(seed) streams tasks draw their truth from
# ICA keeps the principal directions that carry all but this share of the variance.
RANK_RTOL = 1e-6


def padded_rows(rows: np.ndarray, n_latents: int, seed: int) -> np.ndarray:
    """[n_latents, d]: ``rows`` [r, d] followed by random unit rows (latents that never fire).

    PCA and ICA find at most d components; wider cells get finite, silent extra latents.
    """
    extra = n_latents - len(rows)
    if extra <= 0:
        return rows
    filler = np.random.default_rng([seed, FILLER_STREAM]).normal(size=(extra, rows.shape[1]))
    return np.vstack([rows, filler / np.linalg.norm(filler, axis=1, keepdims=True)])


def _padded_codes(codes: np.ndarray, n_latents: int) -> np.ndarray:
    """Codes [n, r] with zero columns appended up to n_latents."""
    return np.pad(codes, ((0, 0), (0, n_latents - codes.shape[1])))


class PCAMethod(Method):
    """PCA: the top principal directions (at most d of them), codes = centred projections."""

    def fit(self, X: np.ndarray) -> PCAMethod:
        """X : [n_samples, d]."""
        X = np.asarray(X, dtype=np.float64)
        self.model_ = PCA(n_components=min(self.n_latents, *X.shape), random_state=self.seed).fit(X)
        self.decoder_ = padded_rows(self.model_.components_, self.n_latents, self.seed)
        self.decoder_bias_ = self.model_.mean_
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents] (any sign) for X [n_samples, d]."""
        return _padded_codes(self.model_.transform(np.asarray(X, dtype=np.float64)), self.n_latents)


class _IterativeMethod(Method):
    """A method whose scikit-learn solver stops at its own tolerance ``tol`` or after ``max_iter``
    iterations; ``training_`` says which (converged: the tolerance held first)."""

    def __init__(
        self, n_latents: int, l0_target: int | None = None, seed: int = 0, max_iter: int = 200, tol: float = 1e-4
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed)
        self.max_iter = max_iter
        self.tol = tol

    def _report(self, final_loss: float | None) -> None:
        steps = int(self.model_.n_iter_)
        self.training_ = {"steps": steps, "converged": steps < self.max_iter, "final_loss": final_loss}


@contextmanager
def flushed_subnormals() -> Iterator[None]:
    """Flush subnormal floats to zero (the CPU's FTZ/DAZ modes, this thread) inside the block.

    Multiplicative updates shrink the codes of unused latents geometrically, into float32's
    subnormal range within the 200 iterations; on CPUs that take a microcode trap per subnormal
    (Intel's: one 1000x2048x2048 sgemm 24 s instead of 0.15 s here) the pizza's 2048-latent NMF fit
    then took 31 minutes instead of about one. Flushed, those codes are exact zeros on every machine.
    BLAS threads other than the caller's keep their own modes: the runner gives each fit one thread.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class NMFMethod(_IterativeMethod):
    """Non-negative matrix factorisation (multiplicative updates), for non-negative sites (e.g. post-ReLU activations)."""

    requires_nonnegative = True
    nonnegative_codes = True

    def _check_non_negative(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.size and X.min() < 0:
            raise MethodError(
                f"nmf needs non-negative activations, but this site has values down to {X.min():.3g}"
            )
        return X

    def fit(self, X: np.ndarray) -> NMFMethod:
        """X : [n_samples, d], non-negative."""
        X = self._check_non_negative(X)
        # NNDSVD starts from an SVD, so it cannot give more components than min(n, d).
        init = "nndsvda" if self.n_latents <= min(X.shape) else "random"
        # Multiplicative updates cost a few matmuls per iteration at any width; coordinate descent
        # took over 10 minutes at 4x width (pizza-v1, 1008 latents) where this takes 27 s. In
        # float32 (scikit-learn keeps the input's dtype) they take half as long as in float64.
        self.model_ = NMF(
            self.n_latents, init=init, solver="mu", max_iter=self.max_iter, tol=self.tol, random_state=self.seed
        )
        with flushed_subnormals():
            self.model_.fit(X.astype(np.float32))
        self.decoder_ = self.model_.components_.astype(np.float64)
        self.decoder_bias_ = np.zeros(X.shape[1])
        total = float(((X - X.mean(axis=0)) ** 2).sum())
        self._report(float(self.model_.reconstruction_err_) ** 2 / total if total > 0 else None)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Non-negative codes [n_samples, n_latents] for X [n_samples, d] (non-negative)."""
        with flushed_subnormals():
            return self.model_.transform(self._check_non_negative(X).astype(np.float32)).astype(np.float64)


def numerical_rank(X: np.ndarray, rtol: float = RANK_RTOL) -> int:
    """How many principal directions of X [n_samples, d] carry all but a share ``rtol`` of its variance."""
    return principal_dimensions(X, 1.0 - rtol)


class ICAMethod(_IterativeMethod):
    """FastICA: maximally non-Gaussian directions, at most the data's numerical rank of them
    (``numerical_rank``: whitening directions without variance only amplifies round-off, and FastICA
    then does not converge); decoder = mixing matrix. ``training_`` has no loss (FastICA's rule is on
    the change of the unmixing matrix)."""

    def fit(self, X: np.ndarray) -> ICAMethod:
        """X : [n_samples, d]."""
        X = np.asarray(X, dtype=np.float64)
        n_components = min(self.n_latents, len(X), numerical_rank(X))
        self.model_ = FastICA(
            n_components, whiten="unit-variance", max_iter=self.max_iter, tol=self.tol, random_state=self.seed
        ).fit(X)
        self.decoder_ = padded_rows(self.model_.mixing_.T, self.n_latents, self.seed)
        self.decoder_bias_ = self.model_.mean_
        self._report(None)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents] (any sign) for X [n_samples, d]."""
        return _padded_codes(self.model_.transform(np.asarray(X, dtype=np.float64)), self.n_latents)
