"""Structure-recovery metrics (SPEC section 2).

``evaluate`` scores one method's test-split output against every structure of a site;
``task_effect``, ``seed_mcc`` and ``normalise`` are the metrics that need more than one run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from structure_bench.metrics.calibration import normalise
from structure_bench.metrics.directions import direction_metrics
from structure_bench.metrics.reconstruction import (
    firing_mask,
    firing_tolerance,
    reconstruction_metrics,
    sparsity_metrics,
)
from structure_bench.metrics.stability import seed_mcc
from structure_bench.metrics.subspaces import subspace_metrics
from structure_bench.metrics.task_effect import task_effect
from structure_bench.metrics.variables import N_BINS, variable_metrics
from structure_bench.structures import Directions, Structure, Subspaces, Variables

METRIC_DESCRIPTIONS: dict[str, str] = {
    "fvu": "sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 on the test split; lower is better",
    "explained_variance": "1 - fvu; higher is better",
    "l0": "mean number of latents firing (|z| above a 1e-6 relative tolerance) per sample; report beside the target",
    "dead_fraction": "share of latents that never fire on the test split; lower is better",
    "dense_fraction": "share of latents firing on more than half the test samples; lower is better",
    "shrinkage": "mean ||x_hat|| / mean ||x||; 1 is best, below 1 means shrunk reconstructions",
    "mmcs_truth": "mean over true directions of the best |cos| with an alive latent's decoder row; higher is better",
    "mmcs_learned": "mean over alive latents of the best |cos| with a true direction; higher is better",
    "mcc": "mean |cos| over a Hungarian one-to-one matching of alive latents to true directions, "
    "min(m, n_alive) pairs; higher is better",
    "recovered@0.9": "share of true directions whose matched latent has |cos| >= 0.9; higher is better",
    "detector_f1": "F1 of z_l > 0 against the matched feature's coefficient > 0, mean over matched pairs; "
    "higher is better",
    "purity": "mean over alive latents, weighted by total |activation|, of max_g ||B_g d_l||^2 (unit d_l); "
    "higher is better",
    "coverage": "mean over subspaces g of coverage[g]; higher is better",
    "coverage[<label>]": "max(0, 1 - ||Y_g - Yhat_g||^2 / ||Y_g - mean Y_g||^2), Yhat_g rebuilt by the latents "
    "whose best subspace is g plus the projected decoder bias; higher is better",
    "subspace_f": "harmonic mean of purity and coverage; higher is better",
    "eta2_<variable>": "correlation ratio Var(E[z_l | V]) / Var(z_l), mean over alive latents weighted by "
    f"Var(z_l); continuous and circular V in {N_BINS} equal bins; high means latents are functions of V",
    "spliced_accuracy": "task accuracy with x_hat spliced in place of x; higher is better",
    "clean_accuracy": "task accuracy on the clean activations (reference for spliced_accuracy)",
    "loss_recovered": "(L_mean_ablate - L_spliced) / (L_mean_ablate - L_clean), cross-entropy, mean ablation "
    "= train-set mean; higher is better, 1 = no loss",
    "seed_mcc": "Hungarian-matched mean |cos| between the decoders of two seeds; higher is more stable",
}


# Metrics bounded by construction (base name: the part after "<structure>/", less any "[label]").
# Anything outside is a broken or edited record; the leaderboard refuses it.
_UNIT_INTERVAL = (0.0, 1.0)
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "fvu": (0.0, np.inf),
    "explained_variance": (-np.inf, 1.0),
    "dead_fraction": _UNIT_INTERVAL,
    "dense_fraction": _UNIT_INTERVAL,
    "shrinkage": (0.0, np.inf),
    "mmcs_truth": _UNIT_INTERVAL,
    "mmcs_learned": _UNIT_INTERVAL,
    "mcc": _UNIT_INTERVAL,
    "recovered@0.9": _UNIT_INTERVAL,
    "detector_f1": _UNIT_INTERVAL,
    "purity": _UNIT_INTERVAL,
    "coverage": _UNIT_INTERVAL,
    "subspace_f": _UNIT_INTERVAL,
    "eta2": _UNIT_INTERVAL,
    "absorption_rate": _UNIT_INTERVAL,
    "absorption_free": _UNIT_INTERVAL,
    "hedging": _UNIT_INTERVAL,
    "spliced_accuracy": _UNIT_INTERVAL,
    "clean_accuracy": _UNIT_INTERVAL,
    "seed_mcc": _UNIT_INTERVAL,
}


def metric_range(name: str, n_latents: int) -> tuple[float, float]:
    """The values metric ``name`` (e.g. ``frequencies/coverage[k=4]``, ``l0``) can take with
    ``n_latents`` latents; (-inf, inf) for metrics without a bound."""
    base = name.rpartition("/")[2].partition("[")[0]
    if base == "l0":
        return 0.0, float(n_latents)
    return METRIC_RANGES.get("eta2" if base.startswith("eta2_") else base, (-np.inf, np.inf))


def _as_float(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float64)


def _has_hierarchy(structure: Directions) -> bool:
    return structure.labels is not None and "parent" in structure.labels.columns


def evaluate(
    X: np.ndarray,
    Z: np.ndarray,
    X_hat: np.ndarray,
    decoder: np.ndarray,
    decoder_bias: np.ndarray,
    structures: Mapping[str, Structure],
) -> dict[str, float]:
    """Every SPEC-2 metric of one method's output on the test split.

    X : [n, d] test activations. Z : [n, n_latents] codes. X_hat : [n, d] reconstructions.
    decoder : [n_latents, d] raw rows. decoder_bias : [d].
    structures : name -> Directions | Subspaces | Variables, per-sample arrays with n rows.
    Returns plain keys for reconstruction and sparsity and "<structure>/<metric>" for the rest;
    undefined metrics are NaN.
    """
    X, Z, X_hat, decoder, decoder_bias = map(_as_float, (X, Z, X_hat, decoder, decoder_bias))
    fires = firing_mask(Z)
    alive = fires.any(axis=0)
    scores = reconstruction_metrics(X, X_hat) | sparsity_metrics(fires)
    for name, structure in structures.items():
        if isinstance(structure, Directions):
            found = direction_metrics(decoder, Z, alive, structure, firing_tolerance(Z))
            if _has_hierarchy(structure):
                # Written separately and imported only when a task has a hierarchy.
                from structure_bench.metrics.hierarchy import hierarchy_metrics

                found |= hierarchy_metrics(decoder, Z, structure)
        elif isinstance(structure, Subspaces):
            found = subspace_metrics(X, Z, decoder, decoder_bias, alive, structure)
        elif isinstance(structure, Variables):
            found = variable_metrics(Z, alive, structure)
        else:
            raise TypeError(f"structure {name!r} is a {type(structure).__name__}, not a structure kind")
        scores.update({f"{name}/{metric}": value for metric, value in found.items()})
    return scores


__all__ = ["METRIC_DESCRIPTIONS", "METRIC_RANGES", "evaluate", "metric_range", "normalise", "seed_mcc", "task_effect"]
