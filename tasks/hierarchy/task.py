"""hierarchy-v1: parent features with mutually exclusive children (absorption and hedging)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from structure_bench.kinds.hierarchy import Hierarchy
from structure_bench.synthetic import (
    SyntheticTask,
    add_noise,
    code_figures,
    coefficient_frame,
    correlated_firing,
    directions_signal,
    magnitudes,
    max_interference,
    split_indices,
    unit_vectors,
    width_grid,
    zipf_rates,
)
from structure_bench.task import TaskArrays, TaskMetadata


class HierarchyTask(SyntheticTask):
    """x = sum_i a_i g_i + noise over a two-level hierarchy of random unit directions g_i.

    Features, in order: ``n_parents`` parents (each on with probability ``parent_rate``), their
    children (parent j has children_per_parent[j % len]; when a parent is on, exactly one of its
    children is on with probability ``child_probability``, chosen uniformly, so children are
    mutually exclusive and never fire without their parent), then ``n_roots`` childless features
    with Zipf-like rates. Magnitudes are uniform on [0.5, 1.5].
    """

    metadata = TaskMetadata(
        id="hierarchy-v1",
        description=(
            "8 parents with 23 mutually exclusive children and 16 other features in 40 dimensions: "
            "absorption and hedging"
        ),
        references=(
            "Chanin et al. 2024, A is for Absorption, arXiv 2409.14507",
            "Chanin et al. 2025, Feature hedging, arXiv 2505.11756",
            "Bussmann et al. 2025, Matryoshka sparse autoencoders, arXiv 2503.17547",
            "Chanin, Garriga-Alonso 2026, SynthSAEBench, arXiv 2602.14687",
        ),
        sites=("hidden",),
        default_site="hidden",
        primary="features",
        main_score="features/absorption_free",
        # The 47 features at the expected L0: 8 x 0.12 x (1 + 0.8) plus the roots' rates, 2.39.
        grid=width_grid(47, 2.39),
        card=Path(__file__).parent / "README.md",
    )

    def __init__(
        self,
        id: str,
        n_samples: int = 8000,
        d: int = 40,
        n_parents: int = 8,
        children_per_parent: tuple[int, ...] = (2, 3, 4),
        parent_rate: float = 0.12,
        child_probability: float = 0.8,
        n_roots: int = 16,
        root_max_rate: float = 0.1,
        noise_std: float = 0.01,
        test_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        super().__init__(
            id, n_samples=n_samples, d=d, n_parents=n_parents,
            children_per_parent=list(children_per_parent), parent_rate=parent_rate,
            child_probability=child_probability, n_roots=n_roots, root_max_rate=root_max_rate,
            noise_std=noise_std, test_fraction=test_fraction, seed=seed,
        )
        self.n_children = [children_per_parent[j % len(children_per_parent)] for j in range(n_parents)]
        self.root_rates = zipf_rates(n_roots, root_max_rate, 0.5)
        self.parents = np.concatenate([
            np.full(n_parents, -1),
            np.repeat(np.arange(n_parents), self.n_children),
            np.full(n_roots, -1),
        ])

    def generate(self) -> TaskArrays:
        p = self.kwargs
        rng = np.random.default_rng(p["seed"])
        n, n_parents, m = p["n_samples"], p["n_parents"], len(self.parents)
        G = unit_vectors(rng, m, p["d"])
        on = np.zeros((n, m), dtype=bool)
        on[:, :n_parents] = rng.random((n, n_parents)) < p["parent_rate"]
        first_child = n_parents + np.concatenate([[0], np.cumsum(self.n_children)[:-1]])
        for parent in range(n_parents):
            with_child = on[:, parent] & (rng.random(n) < p["child_probability"])
            pick = rng.integers(0, self.n_children[parent], size=n)
            rows = np.flatnonzero(with_child)
            on[rows, first_child[parent] + pick[rows]] = True
        # Childless roots fire independently (one block per feature, no shared factor).
        on[:, m - p["n_roots"]:] = correlated_firing(rng, n, self.root_rates, 1, 0.0)
        A = on * magnitudes(rng, on.shape)
        X = add_noise(rng, A @ G, p["noise_std"])
        train_idx, test_idx = split_indices(rng, n, p["test_fraction"])
        labels = pd.DataFrame({
            "parent": self.parents,
            "level": (self.parents >= 0).astype(np.int64),
            "has_children": np.isin(np.arange(m), self.parents),
        })
        return TaskArrays(
            activations={"hidden": X},
            inputs=coefficient_frame(A, "f"),
            structures={"hidden": {"features": Hierarchy("features", G, A, labels)}},
            train_idx=train_idx,
            test_idx=test_idx,
        )

    def clean_activations(self) -> np.ndarray:
        return directions_signal(self.arrays.structures["hidden"]["features"])

    def validate(self) -> dict[str, float]:
        """Firing statistics, how often parents carry a child, and hierarchy violations (must be 0)."""
        features = self.arrays.structures["hidden"]["features"]
        on = features.coefficients[self.arrays.train_idx] > 0
        parents = features.labels["parent"].to_numpy()
        parent_on = on[:, np.unique(parents[parents >= 0])]
        child_count = np.stack([on[:, parents == q].sum(axis=1) for q in np.unique(parents[parents >= 0])], axis=1)
        orphans = on[:, parents >= 0] & ~on[:, parents[parents >= 0]]
        return {
            **code_figures(on),
            "child_given_parent": float(child_count[parent_on].mean()),
            "max_children_on_together": int(child_count.max()),
            "orphan_children": int(orphans.sum()),
            "max_direction_interference": max_interference(features.vectors),
            **super().validate(),
        }
