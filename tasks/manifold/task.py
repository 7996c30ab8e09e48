"""manifold-v1: a continuous 1-D feature on a smooth curve, plus sparse linear features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from structure_bench.structures import Directions, Subspaces, Variables
from structure_bench.synthetic import (
    SyntheticTask,
    add_noise,
    code_figures,
    coefficient_frame,
    directions_signal,
    orthonormal_rows,
    sparse_features,
    split_indices,
    width_grid,
    zipf_rates,
)
from structure_bench.task import TaskArrays, TaskMetadata


class ManifoldTask(SyntheticTask):
    """x = on * curve(t) + sum_i a_i g_i + noise.

    The curve maps a position t in [0, 1] to a unit vector in a random ``curve_dim``-dimensional
    subspace (orthonormal axes stored in ``extra``, orthogonal to the span of the linear
    features; the ground truth ``curve`` holds both subspaces): coordinate j is cos(pi j t) / j, j = 1..r,
    normalised to length 1, so the curve is smooth, open, and bends through all r dimensions
    with ever finer wiggles. It is on with probability ``curve_rate`` (t uniform on [0, 1]); the
    linear features are random unit directions with Zipf-like firing and magnitudes on [0.5, 1.5].
    """

    metadata = TaskMetadata(
        id="manifold-v1",
        description="a 1-D feature on a smooth curve spanning 6 dimensions plus 16 linear features in 32 dimensions",
        references=(
            "Michaud, Gorton, McGrath 2025, Understanding sparse autoencoder scaling in the presence of feature manifolds, arXiv 2509.02565",
            "Engels et al. 2024, Not all language model features are linear, arXiv 2405.14860",
        ),
        sites=("hidden",),
        default_site="hidden",
        primary="curve",
        main_score="curve/subspace_f",
        # True size 6 + 16. The curve is one feature with one degree of freedom: it counts once
        # in the expected L0 (0.4 plus the linear rates' sum: 1.73).
        grid=width_grid(22, 1.73),
        card=Path(__file__).parent / "README.md",
    )

    def __init__(
        self,
        id: str,
        n_samples: int = 8000,
        d: int = 32,
        curve_dim: int = 6,
        curve_rate: float = 0.4,
        n_linear: int = 16,
        linear_max_rate: float = 0.2,
        noise_std: float = 0.01,
        test_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        super().__init__(
            id, n_samples=n_samples, d=d, curve_dim=curve_dim, curve_rate=curve_rate,
            n_linear=n_linear, linear_max_rate=linear_max_rate, noise_std=noise_std,
            test_fraction=test_fraction, seed=seed,
        )
        self.linear_rates = zipf_rates(n_linear, linear_max_rate, 0.5)

    def generate(self) -> TaskArrays:
        p = self.kwargs
        rng = np.random.default_rng(p["seed"])
        n, d = p["n_samples"], p["d"]
        # The curve's subspace and the linear features' span are orthogonal (see the card).
        frame = orthonormal_rows(rng, d, d)
        axes = frame[: p["curve_dim"]]
        on = rng.random(n) < p["curve_rate"]
        t = np.where(on, rng.uniform(0.0, 1.0, size=n), np.nan)  # an off curve has no position
        G, A = sparse_features(rng, n, d - p["curve_dim"], self.linear_rates)
        linear = Directions("linear", G @ frame[p["curve_dim"]:], A)
        X = add_noise(rng, curve_signal(t, axes) + directions_signal(linear), p["noise_std"])
        train_idx, test_idx = split_indices(rng, n, p["test_fraction"])
        position = pd.DataFrame({"t": t})
        return TaskArrays(
            activations={"hidden": X},
            inputs=pd.concat([position, coefficient_frame(A, "f")], axis=1),
            structures={"hidden": {
                "curve": Subspaces(
                    "curve", [axes, linear.vectors], ["curve", "linear"],
                    np.column_stack([on, np.linalg.norm(directions_signal(linear), axis=1)]),
                ),
                "linear": linear,
                "position": Variables("position", position, {"t": "scalar"}),
            }},
            train_idx=train_idx,
            test_idx=test_idx,
            extra={"curve_axes": axes},
        )

    def clean_activations(self) -> np.ndarray:
        structures = self.arrays.structures["hidden"]
        t = structures["position"].values["t"].to_numpy()
        return curve_signal(t, self.arrays.extra["curve_axes"]) + directions_signal(structures["linear"])

    def validate(self) -> dict[str, float]:
        """Curve length and effective rank, firing statistics, variance explained."""
        structures = self.arrays.structures["hidden"]
        train = self.arrays.train_idx
        axes = self.arrays.extra["curve_axes"]
        grid = curve_signal(np.linspace(0.0, 1.0, 2001), axes)
        spectrum = np.linalg.svd(grid - grid.mean(axis=0), compute_uv=False) ** 2
        linear_codes = structures["linear"].coefficients[train]
        curve_on = structures["curve"].membership[train, 0] > 0
        return {
            **{f"linear_{key}": value for key, value in code_figures(linear_codes).items()},
            "true_l0": float((linear_codes > 0).sum(axis=1).mean() + curve_on.mean()),
            "curve_rate": float(curve_on.mean()),
            "curve_length": float(np.linalg.norm(np.diff(grid, axis=0), axis=1).sum()),
            "curve_end_to_end_cos": float(grid[0] @ grid[-1]),
            "curve_pcs_for_99pct": int(np.searchsorted(np.cumsum(spectrum) / spectrum.sum(), 0.99) + 1),
            **super().validate(),
        }


def curve_signal(t: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """Points on the curve at positions t [n] (NaN = off, giving 0), in R^d via axes [r, d]: [n, d]."""
    on = ~np.isnan(t)
    j = np.arange(1, len(axes) + 1)
    coords = np.cos(np.pi * np.outer(np.where(on, t, 0.0), j)) / j
    coords /= np.linalg.norm(coords, axis=1, keepdims=True)
    return (coords * on[:, None]) @ axes
