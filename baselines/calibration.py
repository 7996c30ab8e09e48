"""The calibration methods: ``oracle`` (the true structure as dictionary) and ``random``.

Both have a fixed dictionary; only the codes are computed: least squares when the dictionary is
not overcomplete, sparse codes at l0_target when it is. The decoder bias is the part of the
training mean that the dictionary cannot express, so it is 0 when the dictionary spans R^d.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import sparse_encode

from structure_bench.errors import MethodError
from structure_bench.kinds import kind_of
from structure_bench.methods import Method
from structure_bench.structures import Structure

# Tasks draw their truth from default_rng(seed) too: a separate stream keeps a "random" dictionary
# from being the truth itself when the seeds coincide.
RANDOM_STREAM = 0x52414E44


class FixedDictionary(Method):
    """A method whose dictionary is set, not learned; subclasses give the overcomplete codes."""

    def _use_dictionary(self, dictionary: np.ndarray, X: np.ndarray) -> None:
        """dictionary : [n_latents, d] unit rows; X : [n_samples, d] training data."""
        self.decoder_ = dictionary
        self._pinv = np.linalg.pinv(dictionary)  # [d, n_latents]
        mean = np.asarray(X, dtype=np.float64).mean(axis=0)
        self.decoder_bias_ = mean - (mean @ self._pinv) @ dictionary

    @property
    def overcomplete(self) -> bool:
        return self.decoder_.shape[0] > self.decoder_.shape[1]

    def _sparse_codes(self, residual: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents] for X [n_samples, d]."""
        residual = np.asarray(X, dtype=np.float64) - self.decoder_bias_
        return self._sparse_codes(residual) if self.overcomplete else residual @ self._pinv

    def _k(self) -> int:
        return max(1, int(self.l0_target or 1))


class Oracle(FixedDictionary):
    """Calibration: the task's primary true structure is the dictionary (fit(X, truth=...)).

    Construct with n_latents = truth.size. Overcomplete truths get OMP codes at l0_target.
    """

    uses_ground_truth = True
    calibration_role = "oracle"

    def fit(self, X: np.ndarray, truth: Structure | None = None) -> Oracle:
        """X : [n_samples, d]; truth : a structure at the same site whose kind has a dictionary
        (``Kind.oracle_dictionary``: directions' vectors, subspaces' stacked bases)."""
        dictionary = None if truth is None else kind_of(truth).oracle_dictionary(truth)
        if dictionary is None:
            raise MethodError(
                f"oracle needs a truth whose kind has a dictionary (Directions, Subspaces), got {type(truth).__name__}"
            )
        if len(dictionary) != self.n_latents:
            raise MethodError(f"oracle: n_latents={self.n_latents} but the truth has {len(dictionary)} directions")
        self._use_dictionary(dictionary, X)
        return self

    def _sparse_codes(self, residual: np.ndarray) -> np.ndarray:
        return sparse_encode(residual, self.decoder_, algorithm="omp", n_nonzero_coefs=self._k())


class RandomDictionary(FixedDictionary):
    """Calibration: random Gaussian unit decoder rows; least-squares or top-k codes."""

    calibration_role = "random"

    def fit(self, X: np.ndarray) -> RandomDictionary:
        """X : [n_samples, d]."""
        rows = np.random.default_rng([self.seed, RANDOM_STREAM]).normal(size=(self.n_latents, np.shape(X)[1]))
        self._use_dictionary(rows / np.linalg.norm(rows, axis=1, keepdims=True), X)
        return self

    def _sparse_codes(self, residual: np.ndarray) -> np.ndarray:
        # Keep each sample's k largest-magnitude correlations with the rows.
        correlations = residual @ self.decoder_.T
        k = min(self._k(), correlations.shape[1])
        drop = np.argpartition(-np.abs(correlations), k - 1, axis=1)[:, k:]
        np.put_along_axis(correlations, drop, 0.0, axis=1)
        return correlations
