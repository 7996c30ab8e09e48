"""circles-v1: circular 2-D features (days, months, continuous angles) mixed with linear features."""

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
    magnitudes,
    orthonormal_rows,
    sparse_features,
    split_indices,
    width_grid,
    zipf_rates,
)
from structure_bench.task import TaskArrays, TaskMetadata


class CirclesTask(SyntheticTask):
    """x = sum_g r_g (cos theta_g u_g + sin theta_g v_g) + sum_i a_i g_i + noise.

    Circle g lives in a random 2-D plane (orthonormal axes u_g, v_g, stored in ``extra``); the
    planes and the span of the linear features are mutually orthogonal, so the ground truth
    ``circles`` (the planes plus that span, labelled "linear") is exact. A circle is
    on with probability ``circle_rate``, with radius uniform on [0.8, 1.2] and angle theta_g either
    one of ``circle_points[g]`` evenly spaced values (7 = days of the week, 12 = months) or, for
    0, uniform on the circle. The linear features are random unit directions with Zipf-like,
    block-correlated firing and magnitudes uniform on [0.5, 1.5].
    """

    metadata = TaskMetadata(
        id="circles-v1",
        description="4 circular features in random planes plus 24 linear features in 32 dimensions",
        references=(
            "Engels et al. 2024, Not all language model features are linear, arXiv 2405.14860",
            "Chanin, Garriga-Alonso 2026, SynthSAEBench, arXiv 2602.14687",
        ),
        sites=("hidden",),
        default_site="hidden",
        primary="circles",
        main_score="circles/subspace_f",
        # A circle needs two coordinates, so it counts twice in the true size (2 x 4 + 24) and in
        # the expected L0 (the linear rates' sum plus 2 x 4 x 0.2: 2.61).
        grid=width_grid(32, 2.61),
        card=Path(__file__).parent / "README.md",
    )

    def __init__(
        self,
        id: str,
        n_samples: int = 8000,
        d: int = 32,
        circle_points: tuple[int, ...] = (7, 12, 0, 0),
        circle_rate: float = 0.2,
        n_linear: int = 24,
        linear_max_rate: float = 0.12,
        group_size: int = 4,
        correlation: float = 0.2,
        noise_std: float = 0.01,
        test_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        super().__init__(
            id, n_samples=n_samples, d=d, circle_points=list(circle_points), circle_rate=circle_rate,
            n_linear=n_linear, linear_max_rate=linear_max_rate, group_size=group_size,
            correlation=correlation, noise_std=noise_std, test_fraction=test_fraction, seed=seed,
        )
        self.linear_rates = zipf_rates(n_linear, linear_max_rate, 0.5)

    def generate(self) -> TaskArrays:
        p = self.kwargs
        rng = np.random.default_rng(p["seed"])
        n, d, points = p["n_samples"], p["d"], p["circle_points"]
        # Circle planes and the linear features' span are mutually orthogonal (see the card).
        frame = orthonormal_rows(rng, d, d)
        axes = frame[: 2 * len(points)].reshape(len(points), 2, d)  # [n_circles, 2, d]
        on = rng.random((n, len(points))) < p["circle_rate"]
        radius = on * magnitudes(rng, on.shape, 0.8, 1.2)
        angle = np.stack([
            2 * np.pi * rng.integers(0, k, size=n) / k if k else rng.uniform(0, 2 * np.pi, size=n)
            for k in points
        ], axis=1)
        angle = np.where(on, angle, np.nan)  # an off circle has no angle
        G, A = sparse_features(rng, n, d - 2 * len(points), self.linear_rates, p["group_size"], p["correlation"])
        linear = Directions("linear", G @ frame[2 * len(points):], A)
        X = add_noise(rng, circle_signal(radius, angle, axes) + directions_signal(linear), p["noise_std"])
        train_idx, test_idx = split_indices(rng, n, p["test_fraction"])
        names = [f"circle{g}" for g in range(len(points))]
        angles = pd.DataFrame(angle, columns=[f"angle{g}" for g in range(len(points))])
        radii = pd.DataFrame(radius, columns=[f"radius{g}" for g in range(len(points))])
        return TaskArrays(
            activations={"hidden": X},
            inputs=pd.concat([angles, radii, coefficient_frame(A, "f")], axis=1),
            structures={"hidden": {
                "circles": Subspaces(
                    "circles", [*axes, linear.vectors], [*names, "linear"],
                    np.column_stack([radius, np.linalg.norm(directions_signal(linear), axis=1)]),
                ),
                "linear": linear,
                "angles": Variables("angles", angles, {c: "circular" for c in angles.columns}),
            }},
            train_idx=train_idx,
            test_idx=test_idx,
            extra={"circle_axes": axes},
        )

    def _circle_part(self) -> np.ndarray:
        """The circles' noiseless part of the activations: [n_samples, d]."""
        structures = self.arrays.structures["hidden"]
        radius = structures["circles"].membership[:, :-1]  # the last subspace is the linear span
        return circle_signal(radius, structures["angles"].values.to_numpy(), self.arrays.extra["circle_axes"])

    def clean_activations(self) -> np.ndarray:
        return self._circle_part() + directions_signal(self.arrays.structures["hidden"]["linear"])

    def validate(self) -> dict[str, float]:
        """Circle and linear firing, planes' orthogonality, angle values seen, variance explained."""
        structures = self.arrays.structures["hidden"]
        train = self.arrays.train_idx
        circles_on = structures["circles"].membership[train, :-1] > 0
        linear_codes = structures["linear"].coefficients[train]
        bases = structures["circles"].bases
        # Largest cosine between two of the planes and the linear span (0: orthogonal by design).
        overlap = max(np.linalg.norm(bases[g] @ bases[h].T, 2) for g in range(len(bases)) for h in range(g))
        angles = structures["angles"].values.iloc[train]
        return {
            **{f"linear_{key}": value for key, value in code_figures(linear_codes).items()},
            "true_l0": float((linear_codes > 0).sum(axis=1).mean() + 2 * circles_on.sum(axis=1).mean()),
            "circle_rate_min": float(circles_on.mean(axis=0).min()),
            "circle_rate_max": float(circles_on.mean(axis=0).max()),
            "max_subspace_overlap": float(overlap),
            **{f"distinct_angles{g}": int(angles[c].nunique()) for g, c in enumerate(angles.columns)},
            "circle_variance_share": float(np.sum(self._circle_part() ** 2) / np.sum(self.clean_activations() ** 2)),
            **super().validate(),
        }


def circle_signal(radius: np.ndarray, angle: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """The circles' part of the activations: [n_samples, d].

    radius : [n_samples, n_circles] (0 where off); angle : [n_samples, n_circles] radians (NaN
    where off); axes : [n_circles, 2, d] each circle's orthonormal plane axes.
    """
    on = radius > 0
    cos = np.where(on, radius * np.cos(np.where(on, angle, 0.0)), 0.0)
    sin = np.where(on, radius * np.sin(np.where(on, angle, 0.0)), 0.0)
    return cos @ axes[:, 0] + sin @ axes[:, 1]
