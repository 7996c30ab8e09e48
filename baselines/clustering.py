"""k-means as a dictionary (hypothesis H4, joint regions of the whole activation space; SPEC 5):
each sample is coded by its nearest centroid alone."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from structure_bench.methods import Method
from structure_bench_baselines.linear import padded_rows


class KMeansMethod(Method):
    """k-means (Lloyd, k-means++ start): decoder row l = centroid l minus the training mean, decoder
    bias = the training mean, and a sample's code is 1 on its nearest centroid and 0 elsewhere, so
    L0 = 1 whatever l0_target says and the reconstruction is the centroid. A site with fewer
    distinct training samples than latents gets that many centroids; the other latents are random
    unit rows that never fire.

    max_iter, tol : scikit-learn's cap and tolerance (on the centroids' movement); ``training_``
    says which stopped it.
    """

    nonnegative_codes = True
    reads_l0_target = False

    def __init__(
        self, n_latents: int, l0_target: int | None = None, seed: int = 0, max_iter: int = 300, tol: float = 1e-4
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed)
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: np.ndarray) -> KMeansMethod:
        """X : [n_samples, d]."""
        X = np.asarray(X, dtype=np.float32)
        clusters = min(self.n_latents, len(np.unique(X, axis=0)))
        self.model_ = KMeans(clusters, n_init=1, max_iter=self.max_iter, tol=self.tol, random_state=self.seed).fit(X)
        self.decoder_bias_ = X.mean(axis=0, dtype=np.float64)
        self.decoder_ = padded_rows(self.model_.cluster_centers_.astype(np.float64) - self.decoder_bias_, self.n_latents, self.seed)
        total = float(((X - self.decoder_bias_) ** 2).sum())
        steps = int(self.model_.n_iter_)
        self.training_ = {
            "steps": steps, "converged": steps < self.max_iter,
            "final_loss": float(self.model_.inertia_) / total if total > 0 else None,
        }
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """One-hot codes [n_samples, n_latents]: 1 on the nearest centroid."""
        nearest = self.model_.predict(np.asarray(X, dtype=np.float32))
        codes = np.zeros((len(nearest), self.n_latents))
        codes[np.arange(len(nearest)), nearest] = 1.0
        return codes
