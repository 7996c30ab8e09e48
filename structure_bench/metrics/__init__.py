"""Structure-recovery metrics (SPEC section 2).

``evaluate`` scores one method's test-split output against every structure of a site: the
reconstruction and sparsity metrics here, and each structure's own metrics from its kind
(``structure_bench.kinds``, which defines and describes them with the functions of this package's
modules). ``task_effect``, ``seed_mcc`` and ``normalise`` are the metrics that need more than one run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

import pandas as pd

from structure_bench.metrics.calibration import normalise
from structure_bench.metrics.latents import CLASS_DESCRIPTIONS, latent_profile, latent_table
from structure_bench.metrics.reconstruction import amortisation_metrics, reconstruction_metrics, sparsity_metrics
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
    "fvu_omp": "FVU of the method's own decoder with the codes orthogonal matching pursuit finds at the cell's "
    "L0 target (any sign): what its dictionary allows at that L0",
    "amortisation_gap": "fvu - fvu_omp: reconstruction the method's encoder leaves behind against better sparse codes "
    "for its own decoder (negative: the encoder beats greedy OMP, or uses more latents than the target)",
    # What each latent is (metrics/latents.py), stored as latents/<name>.
    "share[<class>]": "share of the latents in the class (" + "; ".join(f"{c}: {d}" for c, d in CLASS_DESCRIPTIONS.items()) + ")",
    "variance_share[<class>]": "share of the summed code variance sum_l Var(z_l) held by the class's latents",
    "eta2_psi": "per latent, bias-corrected eta^2 against its home frequency's curve point psi_k (2p levels); mean over "
    "alive latents weighted by Var(z_l)",
    "r2_curve": "per latent, R^2 of z_l ~ scale_k g(psi_k) with the best g (a function of its frequency's pizza state "
    "scores 1); Var(z_l)-weighted mean",
    "tuning_width": "per latent, participation ratio of that g over the 2p curve points as a share of them (1/(2p): one "
    "point; a neuron 1/3); Var(z_l)-weighted mean",
    "one_per_frequency": "share of (test input, key frequency) pairs on which exactly one latent at home in the "
    "frequency fires",
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
    "fvu_omp": (0.0, np.inf),
    "spliced_accuracy": _UNIT_INTERVAL,
    "clean_accuracy": _UNIT_INTERVAL,
    "seed_mcc": _UNIT_INTERVAL,
    "share": _UNIT_INTERVAL,
    "variance_share": _UNIT_INTERVAL,
    "tuning_width": _UNIT_INTERVAL,
    "one_per_frequency": _UNIT_INTERVAL,
    "r2_curve": (-np.inf, 1.0),
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


def evaluate_latents(
    Z: np.ndarray, decoder: np.ndarray, structures: Mapping[str, Structure]
) -> tuple[pd.DataFrame, dict[str, float]]:
    """What each latent is: (its table, one row per latent, ``metrics.latents.latent_table``; the
    aggregate as metrics ``latents/<name>``). Z : [n, n_latents] test codes. decoder : [n_latents, d]."""
    table = latent_table(Z, decoder, structures)
    return table, {f"latents/{name}": value for name, value in latent_profile(Z, table, structures).items()}


__all__ = [
    "METRIC_DESCRIPTIONS", "METRIC_RANGES", "amortisation_metrics", "evaluate", "evaluate_latents", "metric_range", "normalise", "seed_mcc",
    "task_effect",
]
