"""superposition-v1: sparse non-negative features in superposition (the positive control)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from structure_bench.structures import Directions
from structure_bench.synthetic import (
    SyntheticTask,
    add_noise,
    code_figures,
    coefficient_frame,
    directions_signal,
    max_interference,
    sparse_features,
    split_indices,
    width_grid,
    zipf_rates,
)
from structure_bench.task import TaskArrays, TaskMetadata


class SuperpositionTask(SyntheticTask):
    """x = sum_i a_i g_i + noise: m random unit directions g_i in R^d, sparse codes a_i >= 0.

    Feature i fires with a Zipf-like probability max_rate * rank^-zipf_exponent; blocks of
    ``group_size`` features fire together through a shared factor (``correlation``); a firing
    feature has magnitude uniform on [0.5, 1.5].
    """

    metadata = TaskMetadata(
        id="superposition-v1",
        description="64 sparse non-negative features in superposition in 48 dimensions",
        references=(
            "Sharkey, Braun, Millidge 2022, Taking features out of superposition with sparse autoencoders",
            "Chanin, Garriga-Alonso 2026, SynthSAEBench, arXiv 2602.14687",
        ),
        sites=("hidden",),
        default_site="hidden",
        primary="features",
        main_score="features/mcc",
        grid=width_grid(64, 2.92),  # the 64 features at their expected L0, the sum of the rates
        card=Path(__file__).parent / "README.md",
    )

    def __init__(
        self,
        id: str,
        n_samples: int = 8000,
        d: int = 48,
        n_features: int = 64,
        max_rate: float = 0.2,
        zipf_exponent: float = 0.5,
        group_size: int = 8,
        correlation: float = 0.3,
        noise_std: float = 0.01,
        test_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        super().__init__(
            id, n_samples=n_samples, d=d, n_features=n_features, max_rate=max_rate,
            zipf_exponent=zipf_exponent, group_size=group_size, correlation=correlation,
            noise_std=noise_std, test_fraction=test_fraction, seed=seed,
        )
        self.rates = zipf_rates(n_features, max_rate, zipf_exponent)

    def generate(self) -> TaskArrays:
        p = self.kwargs
        rng = np.random.default_rng(p["seed"])
        # Shuffle which features get the frequent rates, so correlated blocks mix rates.
        rates = self.rates[rng.permutation(p["n_features"])]
        G, A = sparse_features(rng, p["n_samples"], p["d"], rates, p["group_size"], p["correlation"])
        X = add_noise(rng, A @ G, p["noise_std"])
        train_idx, test_idx = split_indices(rng, p["n_samples"], p["test_fraction"])
        labels = pd.DataFrame({"firing_rate": rates})
        return TaskArrays(
            activations={"hidden": X},
            inputs=coefficient_frame(A, "f"),
            structures={"hidden": {"features": Directions("features", G, A, labels)}},
            train_idx=train_idx,
            test_idx=test_idx,
        )

    def clean_activations(self) -> np.ndarray:
        return directions_signal(self.arrays.structures["hidden"]["features"])

    def validate(self) -> dict[str, float]:
        """Firing statistics of the true code (train split), interference, variance explained."""
        features = self.arrays.structures["hidden"]["features"]
        train_codes = features.coefficients[self.arrays.train_idx]
        return {
            **code_figures(train_codes),
            "min_train_firings": int((train_codes > 0).sum(axis=0).min()),
            "features_per_dimension": features.size / features.dim,
            "max_direction_interference": max_interference(features.vectors),
            **super().validate(),
        }
