"""Structure-recovery metrics (SPEC section 2).

``evaluate`` scores one method's test-split output against every structure of a site: the
reconstruction and sparsity metrics here, and each structure's own metrics from its kind
(``structure_bench.kinds``, which defines and describes them with the functions of this package's
modules). ``task_effect``, ``seed_mcc`` and ``normalise`` are the metrics that need more than one run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from structure_bench.metrics.calibration import normalise
from structure_bench.metrics.reconstruction import reconstruction_metrics, sparsity_metrics
from structure_bench.metrics.stability import seed_mcc
from structure_bench.metrics.task_effect import task_effect
from structure_bench.structures import Structure

# The metrics of every run; each structure kind describes its own (``kinds.metric_descriptions``).
METRIC_DESCRIPTIONS: dict[str, str] = {
    "fvu": "sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 on the test split; lower is better",
    "explained_variance": "1 - fvu; higher is better",
    "l0": "mean number of latents firing (|z| above a 1e-6 relative tolerance) per sample; report beside the target",
    "dead_fraction": "share of latents that never fire on the test split; lower is better",
    "dense_fraction": "share of latents firing on more than half the test samples; lower is better",
    "shrinkage": "mean ||x_hat|| / mean ||x||; 1 is best, below 1 means shrunk reconstructions",
    "spliced_accuracy": "task accuracy with x_hat spliced in place of x; higher is better",
    "clean_accuracy": "task accuracy on the clean activations (reference for spliced_accuracy)",
    "loss_recovered": "(L_mean_ablate - L_spliced) / (L_mean_ablate - L_clean), cross-entropy, mean ablation "
    "= train-set mean; higher is better, 1 = no loss",
    "seed_mcc": "Hungarian-matched mean |cos| between the decoders of two seeds; higher is more stable",
}


# Metrics bounded by construction (base name: the part after "<structure>/", less any "[label]"):
# these and each structure kind's ``ranges``. Anything outside is a broken or edited record; the
# leaderboard refuses it.
_UNIT_INTERVAL = (0.0, 1.0)
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "fvu": (0.0, np.inf),
    "explained_variance": (-np.inf, 1.0),
    "dead_fraction": _UNIT_INTERVAL,
    "dense_fraction": _UNIT_INTERVAL,
    "shrinkage": (0.0, np.inf),
    "spliced_accuracy": _UNIT_INTERVAL,
    "clean_accuracy": _UNIT_INTERVAL,
    "seed_mcc": _UNIT_INTERVAL,
}


def metric_range(name: str, n_latents: int) -> tuple[float, float]:
    """The values metric ``name`` (e.g. ``frequencies/coverage[k=4]``, ``l0``) can take with
    ``n_latents`` latents; (-inf, inf) for metrics without a bound."""
    # The kinds build on this package's modules, so they are imported where they are used.
    from structure_bench.kinds import metric_ranges

    base = name.rpartition("/")[2].partition("[")[0]
    if base == "l0":
        return 0.0, float(n_latents)
    ranges = METRIC_RANGES | metric_ranges()
    return ranges.get("eta2" if base.startswith("eta2_") else base, (-np.inf, np.inf))


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
    structures : name -> a structure of any kind (``structure_bench.kinds``), per-sample arrays
    with n rows. Returns plain keys for reconstruction and sparsity and "<structure>/<metric>" for
    the rest (the kind's ``score``); undefined metrics are NaN.
    """
    from structure_bench.kinds import Fit, kind_of

    fit = Fit(X, Z, X_hat, decoder, decoder_bias)
    scores = reconstruction_metrics(fit.X, fit.X_hat) | sparsity_metrics(fit.fires)
    for name, structure in structures.items():
        found = kind_of(structure).score(structure, fit)
        scores.update({f"{name}/{metric}": value for metric, value in found.items()})
    return scores


__all__ = ["METRIC_DESCRIPTIONS", "METRIC_RANGES", "evaluate", "metric_range", "normalise", "seed_mcc", "task_effect"]
