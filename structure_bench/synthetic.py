"""Generators shared by the synthetic tasks (superposition, circles, manifold, hierarchy).

Every function takes a ``numpy.random.Generator`` (or none) and computes in float64, so a task
that seeds one generator and calls these in a fixed order is bit-identical on every run. On another
CPU, what goes through BLAS/LAPACK (``orthonormal_rows``'s QR, matrix products) may differ in the
last bit; a task's ``identity`` does not.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

from structure_bench.structures import Directions
from structure_bench.task import Cell, Task


def unit_vectors(rng: np.random.Generator, m: int, d: int) -> np.ndarray:
    """m random unit vectors in R^d (uniform on the sphere): [m, d]."""
    vectors = rng.standard_normal((m, d))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def orthonormal_rows(rng: np.random.Generator, r: int, d: int) -> np.ndarray:
    """A uniformly random orthonormal r-frame in R^d: [r, d]."""
    q, _ = np.linalg.qr(rng.standard_normal((d, r)))
    return q.T


def zipf_rates(m: int, max_rate: float, exponent: float) -> np.ndarray:
    """Firing probabilities [m] falling as max_rate * rank^-exponent (rank 1..m).

    Powers by libm's ``math.pow``, one rank at a time: numpy's vectorised ``**`` takes another code
    path with AVX-512 than without and differs in the last bit (3 of superposition-v1's 64 rates).
    """
    return max_rate * np.array([math.pow(rank, -exponent) for rank in range(1, m + 1)])


def correlated_firing(
    rng: np.random.Generator, n: int, rates: np.ndarray, group_size: int, correlation: float
) -> np.ndarray:
    """Which features fire: bool [n, m], feature i on with probability rates[i].

    A Gaussian copula: consecutive blocks of ``group_size`` features share one standard normal
    factor with weight sqrt(correlation), so features in a block tend to fire together while
    each keeps its own firing rate exactly in expectation.
    """
    m = len(rates)
    groups = np.arange(m) // group_size
    shared = rng.standard_normal((n, groups.max() + 1))[:, groups]
    own = rng.standard_normal((n, m))
    latent = np.sqrt(correlation) * shared + np.sqrt(1.0 - correlation) * own
    return latent < ndtri(rates)


def magnitudes(rng: np.random.Generator, shape: tuple[int, ...], low: float = 0.5, high: float = 1.5) -> np.ndarray:
    """Feature magnitudes, uniform on [low, high] (bounded away from 0 so 'on' is unambiguous)."""
    return rng.uniform(low, high, size=shape)


def sparse_features(
    rng: np.random.Generator, n: int, d: int, rates: np.ndarray, group_size: int = 1, correlation: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Random unit directions G [m, d] and sparse non-negative codes A [n, m] firing at ``rates``.

    Firing follows ``correlated_firing``; a firing feature gets a magnitude from ``magnitudes``.
    """
    G = unit_vectors(rng, len(rates), d)
    on = correlated_firing(rng, n, rates, group_size, correlation)
    return G, on * magnitudes(rng, on.shape)


def directions_signal(directions: Directions) -> np.ndarray:
    """The activations a Directions structure with coefficients describes, A @ G: [n_samples, d]."""
    return directions.coefficients @ directions.vectors


def add_noise(rng: np.random.Generator, clean: np.ndarray, noise_std: float) -> np.ndarray:
    """clean [n, d] plus isotropic Gaussian noise, cast to float32 activations [n, d]."""
    return (clean + noise_std * rng.standard_normal(clean.shape)).astype(np.float32)


def split_indices(rng: np.random.Generator, n: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """A random train/test split of range(n): (train_idx, test_idx), each sorted."""
    order = rng.permutation(n)
    n_test = int(round(test_fraction * n))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def coefficient_frame(coefficients: np.ndarray, prefix: str) -> pd.DataFrame:
    """Columns ``<prefix><i>`` holding coefficients [n, m], for an inputs table."""
    return pd.DataFrame(coefficients, columns=[f"{prefix}{i}" for i in range(coefficients.shape[1])])


def width_grid(n_true: int, l0: float) -> tuple[Cell, ...]:
    """Cells at 0.5x, 1x and 4x the true number of features, at the true mean L0 (>= 1)."""
    k = max(1, int(round(l0)))
    return tuple(Cell(max(1, int(round(f * n_true))), k) for f in (0.5, 1.0, 4.0))


def code_figures(active: np.ndarray) -> dict[str, float]:
    """Firing statistics of a true code, active: bool or float [n, m] (nonzero = on).

    Returns the mean L0, the lowest and highest firing rate, and the largest and mean
    off-diagonal Pearson correlation between features' on/off indicators.
    """
    on = np.asarray(active) != 0
    rates = on.mean(axis=0)
    live = rates > 0
    corr = np.corrcoef(on[:, live].T.astype(np.float64))
    off_diag = corr[~np.eye(len(corr), dtype=bool)]
    return {
        "true_l0": float(on.sum(axis=1).mean()),
        "min_firing_rate": float(rates.min()),
        "max_firing_rate": float(rates.max()),
        "max_firing_correlation": float(off_diag.max()),
        "mean_firing_correlation": float(off_diag.mean()),
    }


def variance_explained(X: np.ndarray, clean: np.ndarray) -> float:
    """Share of the variance of X [n, d] (about its mean) that the noiseless truth clean [n, d] explains."""
    X = np.asarray(X, dtype=np.float64)
    return float(1.0 - np.sum((X - clean) ** 2) / np.sum((X - X.mean(axis=0)) ** 2))


def max_interference(vectors: np.ndarray) -> float:
    """Largest |cos| between two distinct unit rows of vectors [m, d]."""
    gram = np.abs(vectors @ vectors.T)
    np.fill_diagonal(gram, 0.0)
    return float(gram.max())


class SyntheticTask(Task):
    """Base of the synthetic tasks: activations at site ``hidden`` = a known noiseless signal plus noise.

    Subclasses implement ``clean_activations`` (rebuilt from the stored ground truth) and extend
    ``validate``; the shared generators in this module are part of every such task's source.
    """

    instance_seed = "seed"

    def clean_activations(self) -> np.ndarray:
        """The noiseless activations [n_samples, d] that the ground truth describes exactly."""
        raise NotImplementedError

    def source_files(self) -> list[Path]:
        return [*super().source_files(), Path(__file__)]

    def validate(self) -> dict[str, float]:
        """Variance of X the truth explains, and the noise's share of X's norm."""
        X = self.arrays.activations["hidden"].astype(np.float64)
        clean = self.clean_activations()
        return {
            "variance_explained_by_truth": variance_explained(X, clean),
            "noise_to_signal_norm": float(np.linalg.norm(X - clean) / np.linalg.norm(clean)),
        }
