"""Fourier fits of a modular-addition network: per-neuron frequency and phase, embedding planes.

Everything is evaluated over the full p x p grid of inputs, row-major in (a, b), so 2-D discrete
Fourier transforms give exact least-squares fits (the Fourier basis is orthogonal on the grid).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FIT_THRESHOLD = 0.9
"""A neuron is "fitted" when its fit explains at least this share of its pre-activation variance."""


def angular_frequency(p: int, k: int | np.ndarray) -> np.ndarray:
    """w_k = 2 pi k / p."""
    return 2 * np.pi * np.asarray(k) / p


def _grid_fft(values: np.ndarray, p: int) -> np.ndarray:
    """2-D DFT over (a, b) of values [p * p, m]: complex [p, p, m]."""
    return np.fft.fft2(values.reshape(p, p, -1), axes=(0, 1))


def _frequency_mask(p: int, k: int) -> np.ndarray:
    """Boolean [p, p]: the 2-D Fourier components built only from frequency k (and 0), DC excluded."""
    axis = np.zeros(p, dtype=bool)
    axis[[0, k, p - k]] = True
    mask = axis[:, None] & axis[None, :]
    mask[0, 0] = False
    return mask


def fit_neurons(pre: np.ndarray, p: int) -> pd.DataFrame:
    """Fit every neuron's pre-activation over the grid.

    pre : [p * p, m] pre-activations, row-major in (a, b).

    Returns one row per neuron with ``k`` (1..(p-1)/2, the frequency whose components explain most
    variance), ``r2_freq`` (that share: the best fit using frequency k in a, b and their products),
    and the pizza form ``pre ~ const + A [cos(w_k a + phi) + cos(w_k b + phi)]``: ``amplitude`` A >= 0,
    ``phi`` in (-pi, pi], ``r2`` (its share of variance).
    """
    spectrum = _grid_fft(pre, p)
    power = np.abs(spectrum) ** 2
    total = power.sum(axis=(0, 1)) - power[0, 0]  # p^2 times the sum of squares about the mean
    freqs = np.arange(1, (p - 1) // 2 + 1)
    per_freq = np.stack([power[_frequency_mask(p, k)].sum(axis=0) for k in freqs])  # [K, m]
    safe_total = np.where(total > 0, total, 1.0)
    best = per_freq.argmax(axis=0)
    k = freqs[best]
    neurons = np.arange(pre.shape[1])
    # Least squares on u = cos(w a) + cos(w b), v = sin(w a) + sin(w b), orthogonal with |u|^2 = p^2.
    alpha = (spectrum[k, 0, neurons].real + spectrum[0, k, neurons].real) / p**2
    beta = -(spectrum[k, 0, neurons].imag + spectrum[0, k, neurons].imag) / p**2
    amplitude = np.hypot(alpha, beta)
    explained = amplitude**2 * p**2 * p**2  # in the same p^2-scaled units as total
    return pd.DataFrame(
        {
            "k": k.astype(np.int64),
            "phi": np.arctan2(-beta, alpha),
            "amplitude": amplitude,
            "r2": np.where(total > 0, explained / safe_total, 0.0),
            "r2_freq": np.where(total > 0, per_freq[best, neurons] / safe_total, 0.0),
        }
    )


def key_frequencies(fits: pd.DataFrame, fitted: np.ndarray, min_share: float = 0.05) -> list[int]:
    """Frequencies carried by at least ``min_share`` of the fitted neurons, ascending."""
    counts = fits.loc[fitted, "k"].value_counts()
    return sorted(int(k) for k, n in counts.items() if n >= min_share * max(fitted.sum(), 1))


def frequency_planes(X: np.ndarray, p: int, k: int, rel_tol: float = 0.1, max_rank: int = 4) -> np.ndarray:
    """Orthonormal basis [r, d] of the directions of X [p * p, d] that carry frequency k.

    The frequency-k part of X (its 2-D Fourier components built from k alone) is decomposed by SVD;
    directions with singular value >= ``rel_tol`` times the largest are kept (at most ``max_rank``:
    cos and sin of a and of b).
    """
    spectrum = _grid_fft(X, p)
    spectrum[~_frequency_mask(p, k)] = 0
    part = np.fft.ifft2(spectrum, axes=(0, 1)).real.reshape(p * p, -1)
    _, s, vt = np.linalg.svd(part, full_matrices=False)
    rank = int(min(max_rank, np.sum(s >= rel_tol * s[0])))
    return vt[:rank]


def output_phase(weights: np.ndarray, k: np.ndarray, p: int) -> np.ndarray:
    """Phase psi of each row's fit ``weights[i, c] ~ B cos(w_k c + psi)``, B >= 0.

    weights : [m, p] a neuron's effect on each output logit; k : [m] its frequency.
    """
    c = np.arange(p)
    angles = np.outer(angular_frequency(p, k), c)
    gamma_cos = np.sum(weights * np.cos(angles), axis=1)
    gamma_sin = np.sum(weights * np.sin(angles), axis=1)
    return np.arctan2(-gamma_sin, gamma_cos)
