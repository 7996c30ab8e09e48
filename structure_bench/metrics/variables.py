"""Correlation ratio eta^2 of latents against per-sample variables (SPEC 2, Variables).

Scores are bias-corrected (``adjusted_eta2``): a variable with no effect on the codes scores about
0 whatever its number of levels and the split's size, not (levels - 1) / (n - 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from structure_bench.structures import Variables

# Continuous and circular variables are cut into this many equal-width bins (circular over
# [0, 2pi), scalar over [min, max]). 24 bins resolve a circle to 15 degrees while keeping ~145
# samples per bin on a 3481-sample test split.
N_BINS = 24


def group_index(values: pd.Series, kind: str) -> np.ndarray:
    """Integer group [n_samples] for each sample: its value (discrete) or its bin (circular, scalar)."""
    if kind == "discrete":
        return pd.factorize(values, sort=True)[0]
    numbers = values.to_numpy(dtype=np.float64)
    if kind == "circular":
        fraction = np.mod(numbers, 2 * np.pi) / (2 * np.pi)
    else:
        span = numbers.max() - numbers.min()
        fraction = (numbers - numbers.min()) / span if span > 0 else np.zeros_like(numbers)
    return np.minimum((fraction * N_BINS).astype(np.int64), N_BINS - 1)


def between_group_sum_of_squares(Z_centred: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """sum_k n_k * (mean of z_l in group k)^2 for every column l of centred codes [n_samples, L]: [L]."""
    n_groups = int(groups.max()) + 1
    one_hot = sparse.csr_matrix(
        (np.ones(len(groups)), (groups, np.arange(len(groups)))), shape=(n_groups, len(groups))
    )
    group_sums = one_hot @ Z_centred  # [n_groups, L]
    counts = np.bincount(groups, minlength=n_groups)
    return (group_sums**2 / np.maximum(counts, 1)[:, None]).sum(axis=0)


def eta2_per_latent(Z: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """eta^2 = Var(E[z_l | group]) / Var(z_l) for each latent of Z [n_samples, L]: [L].

    groups : [n_samples] integer group of each sample. NaN for latents with zero variance.
    """
    Z_centred = Z - Z.mean(axis=0)
    total = (Z_centred**2).sum(axis=0)
    between = between_group_sum_of_squares(Z_centred, groups)
    return np.divide(between, total, out=np.full(total.shape, np.nan), where=total > 0)


def adjusted_eta2(eta2: np.ndarray | float, n_samples: int, n_groups: int) -> np.ndarray | float:
    """Bias-corrected eta^2 (Kelley's epsilon^2, the adjusted R^2 of a one-way fit):
    1 - (1 - eta2) (n - 1) / (n - G). Raw eta^2 of codes independent of a G-group variable has
    expectation (G - 1) / (n - 1); this form has expectation 0 there (it can dip below 0) and keeps 1
    for codes that are an exact function of the variable. NaN when n <= G (no residual degrees
    of freedom)."""
    if n_samples <= n_groups:
        return np.full_like(np.asarray(eta2, dtype=np.float64), np.nan) if np.ndim(eta2) else float("nan")
    return 1 - (1 - eta2) * (n_samples - 1) / (n_samples - n_groups)


def variable_metrics(Z: np.ndarray, alive: np.ndarray, truth: Variables) -> dict[str, float]:
    """eta2_<var> for each variable: mean over alive latents of the bias-corrected eta^2
    (``adjusted_eta2``, with G the variable's non-empty groups), weighted by Var(z_l).

    Z : [n_samples, n_latents]. alive : [n_latents] bool. NaN when no alive latent varies.
    A variable that is NaN on some samples (a circle that is off has no angle) is scored on the
    samples where it is defined.
    """
    Z_alive = np.compress(alive, Z, axis=1)  # C-ordered (Z[:, alive] is not), as sparse @ dense wants
    scores = {}
    for variable, kind in truth.kinds.items():
        defined = truth.values[variable].notna().to_numpy()
        Z_defined = Z_alive[defined]
        Z_centred = Z_defined - Z_defined.mean(axis=0)
        total = float((Z_centred**2).sum())
        if total == 0:
            scores[f"eta2_{variable}"] = float("nan")
            continue
        # Weighting eta^2_l by Var(z_l) turns the mean into a ratio of summed sums of squares.
        groups = group_index(truth.values[variable][defined], kind)
        between = between_group_sum_of_squares(Z_centred, groups)
        n_groups = int(np.count_nonzero(np.bincount(groups)))
        # The correction is affine in eta^2, so it commutes with the Var(z_l)-weighted mean.
        scores[f"eta2_{variable}"] = float(adjusted_eta2(float(between.sum()) / total, len(groups), n_groups))
    return scores
