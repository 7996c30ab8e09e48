"""Metrics against true subspaces B_g [r_g, d] (SPEC 2, Subspaces): purity, coverage, subspace_f."""

from __future__ import annotations

import numpy as np

from structure_bench.metrics.directions import unit_rows
from structure_bench.structures import Subspaces


def subspace_shares(decoder: np.ndarray, truth: Subspaces) -> np.ndarray:
    """||B_g d_l||^2 for every unit decoder row d_l and subspace g: [n_latents, G]."""
    projected = unit_rows(decoder) @ np.vstack(truth.bases).T  # [n_latents, sum r_g]
    starts = np.cumsum([0] + [basis.shape[0] for basis in truth.bases[:-1]])
    return np.add.reduceat(projected**2, starts, axis=1)


def purity(shares: np.ndarray, Z: np.ndarray, alive: np.ndarray) -> float:
    """Mean over alive latents of max_g share, weighted by each latent's total |activation|.

    shares : [n_latents, G] from ``subspace_shares``. Z : [n_samples, n_latents]. alive : [n_latents].
    """
    weights = np.abs(Z).sum(axis=0) * alive
    if weights.sum() == 0:
        return float("nan")
    return float(np.average(shares.max(axis=1), weights=weights))


def coverage(
    X: np.ndarray, Z: np.ndarray, decoder: np.ndarray, decoder_bias: np.ndarray, shares: np.ndarray, truth: Subspaces
) -> np.ndarray:
    """coverage_g for each subspace: [G], NaN where the test data has no variance inside g.

    X : [n_samples, d]. Z : [n_samples, n_latents]. decoder : [n_latents, d] raw rows, as decode
    uses them. decoder_bias : [d]. Each latent rebuilds only its best subspace (argmax of shares).
    """
    best = shares.argmax(axis=1)
    explained = np.full(len(truth.bases), np.nan)
    for g, basis in enumerate(truth.bases):
        members = best == g  # latents only rebuild their best subspace
        Y = X @ basis.T  # [n_samples, r_g]
        Y_hat = Z[:, members] @ (decoder[members] @ basis.T) + basis @ decoder_bias
        variance = float(np.sum((Y - Y.mean(axis=0)) ** 2))
        if variance > 0:
            explained[g] = 1.0 - float(np.sum((Y - Y_hat) ** 2)) / variance
    return np.maximum(explained, 0.0)  # NaN stays NaN


def harmonic_mean(a: float, b: float) -> float:
    """2ab / (a + b); 0 when both are 0, NaN when either is NaN."""
    if a + b == 0:
        return 0.0
    return 2.0 * a * b / (a + b)


def subspace_metrics(
    X: np.ndarray, Z: np.ndarray, decoder: np.ndarray, decoder_bias: np.ndarray, alive: np.ndarray, truth: Subspaces
) -> dict[str, float]:
    """purity, coverage (mean over subspaces with variance), coverage[<label>] each, subspace_f.

    Shapes as in ``coverage``; alive : [n_latents] bool.
    """
    shares = subspace_shares(decoder, truth)
    per_subspace = coverage(X, Z, decoder, decoder_bias, shares, truth)
    mean_coverage = float(np.nanmean(per_subspace)) if np.any(np.isfinite(per_subspace)) else float("nan")
    pure = purity(shares, Z, alive)
    scores = {"purity": pure, "coverage": mean_coverage, "subspace_f": harmonic_mean(pure, mean_coverage)}
    scores.update({f"coverage[{label}]": float(c) for label, c in zip(truth.labels, per_subspace)})
    return scores
