"""Metrics against true feature directions G [m, d] (SPEC 2, Directions), and the matching helper."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from structure_bench.structures import Directions

RECOVERED_THRESHOLD = 0.9


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows of vectors [k, d] scaled to unit length; all-zero rows stay zero (cosine 0 to all)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors, dtype=np.float64), where=norms > 0)


def abs_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|cos| between every row of a [k, d] and every row of b [m, d]: [k, m]."""
    return np.abs(unit_rows(a) @ unit_rows(b).T)


def hungarian_match(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching maximising total similarity [k, m] (minimises 1 - similarity).

    Returns (rows, cols), min(k, m) index pairs.
    """
    return linear_sum_assignment(1.0 - similarity)


def matched_mean_abs_cos(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |cos| over the Hungarian matching of rows of a [k, d] to rows of b [m, d]."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    similarity = abs_cosines(a, b)
    rows, cols = hungarian_match(similarity)
    return float(similarity[rows, cols].mean())


def _f1(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Column-wise F1 of boolean predicted vs actual [n, k]; NaN where both are all False."""
    true_pos = np.sum(predicted & actual, axis=0)
    denominator = predicted.sum(axis=0) + actual.sum(axis=0)
    return np.divide(2.0 * true_pos, denominator, out=np.full(denominator.shape, np.nan), where=denominator > 0)


def direction_metrics(
    decoder: np.ndarray, Z: np.ndarray, alive: np.ndarray, truth: Directions, firing_threshold: float
) -> dict[str, float]:
    """mmcs_truth, mmcs_learned, mcc, recovered@0.9 and (when truth has coefficients) detector_f1.

    decoder : [n_latents, d] raw rows. Z : [n_samples, n_latents] codes. alive : [n_latents] bool.
    firing_threshold : z above which a latent counts as on (for detector_f1).
    Only alive latents take part; every metric is NaN when none is alive.
    """
    names = ["mmcs_truth", "mmcs_learned", "mcc", f"recovered@{RECOVERED_THRESHOLD}"]
    if truth.coefficients is not None:
        names.append("detector_f1")
    alive_idx = np.flatnonzero(alive)
    if alive_idx.size == 0:
        return dict.fromkeys(names, float("nan"))
    similarity = abs_cosines(decoder[alive_idx], truth.vectors)  # [n_alive, m]
    rows, cols = hungarian_match(similarity)
    matched = similarity[rows, cols]
    scores = {
        "mmcs_truth": float(similarity.max(axis=0).mean()),
        "mmcs_learned": float(similarity.max(axis=1).mean()),
        "mcc": float(matched.mean()),
        # Features left unmatched (more features than alive latents) count as not recovered.
        f"recovered@{RECOVERED_THRESHOLD}": float(np.sum(matched >= RECOVERED_THRESHOLD)) / truth.size,
    }
    if truth.coefficients is not None:
        f1 = _f1(Z[:, alive_idx[rows]] > firing_threshold, truth.coefficients[:, cols] > 0)
        scores["detector_f1"] = float(np.nanmean(f1)) if np.any(np.isfinite(f1)) else float("nan")
    return scores
