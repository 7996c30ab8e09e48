"""pizza-ideal-v1: the pizza built analytically from the mechanism (no training).

Per key frequency k, ``neurons_per_key`` neurons with phases phi_j = 2 pi j / n evenly tiling the
circle. The MLP input is the mean of the two token embeddings E_t = [cos(w_k t), sin(w_k t)]_k;
neuron (k, phi) has pre-activation cos(w_k a + phi) + cos(w_k b + phi); its output weight on
logit c is the area element cos(w_k c + 2 phi). Summing over phi integrates
|cos(w_k (a-b)/2)| * |cos(w_k (a+b)/2 + phi)| cos(2 phi) into (2/3-scaled) cos(w_k (a + b - c)),
so the argmax is (a + b) mod p for every pair.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from structure_bench.synthetic import width_grid
from structure_bench.task import Split, Task, TaskArrays
from structure_bench_tasks.pizza import diagnostics
from structure_bench_tasks.pizza.fourier import angular_frequency
from structure_bench_tasks.pizza.model import dictionary_split
from structure_bench_tasks.pizza.structures import embed_structures, hidden_structures, inputs_table
from structure_bench_tasks.pizza.task import PizzaTask, split_figures


class IdealPizzaTask(Task):
    """The analytic pizza: exact ground truth, 100% accuracy by construction."""

    # Sites, structures, main score and sources as pizza-v1.
    metadata = replace(
        PizzaTask.metadata,
        id="pizza-ideal-v1",
        description="The pizza algorithm built analytically: evenly tiled phases per key frequency, exact ground truth.",
        grid=width_grid(96, 3),  # the 3 keys x 32 neurons, one latent per key frequency
        card=Path(__file__).parent / "README.md",
        superseded_by="pizza-ideal-v2",
    )
    model_sites = ("hidden", "embed")
    # v1: ordered-pair split; v2: unordered pairs {a, b} and psi_k (as ModularAdditionTask.data_revision).
    data_revision = 1

    def __init__(
        self,
        id: str,
        p: int = 59,
        keys: tuple[int, ...] = (4, 11, 23),
        neurons_per_key: int = 32,
        split_seed: int = 0,
        train_fraction: float = 0.8,
    ) -> None:
        super().__init__(id, p=p, keys=list(keys), neurons_per_key=neurons_per_key,
                         split_seed=split_seed, train_fraction=train_fraction)
        self.p, self.keys, self.neurons_per_key = p, list(keys), neurons_per_key
        self.split_seed, self.train_fraction = split_seed, train_fraction

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """The (train, test) pair indices."""
        return dictionary_split(self.p, self.train_fraction, self.split_seed, self.data_revision)

    @cached_property
    def neuron_table(self) -> pd.DataFrame:
        """The construction: per neuron k, phi (in [0, 2 pi)), amplitude 1, r2 1."""
        n = self.neurons_per_key
        return pd.DataFrame({
            "k": np.repeat(self.keys, n).astype(np.int64),
            "phi": np.tile(2 * np.pi * np.arange(n) / n, len(self.keys)),
            "amplitude": 1.0,
            "r2": 1.0,
            "r2_freq": 1.0,
        })

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        """W_in [2 K, m] (embed -> pre-activation) and W_U [m, p] (hidden -> logits)."""
        table, p = self.neuron_table, self.p
        w = angular_frequency(p, table.k.to_numpy())
        phi = table.phi.to_numpy()
        slot = np.searchsorted(self.keys, table.k.to_numpy())  # which frequency block of embed
        W_in = np.zeros((2 * len(self.keys), len(table)))
        cols = np.arange(len(table))
        # 2 [cos phi, -sin phi] . mean embedding = cos(w a + phi) + cos(w b + phi)
        W_in[2 * slot, cols] = 2 * np.cos(phi)
        W_in[2 * slot + 1, cols] = -2 * np.sin(phi)
        W_U = np.cos(np.outer(w, np.arange(p)) + 2 * phi[:, None])
        return {"W_in": W_in, "W_U": W_U}

    @cached_property
    def _internals(self) -> dict[str, np.ndarray]:
        p = self.p
        a, b = np.divmod(np.arange(p * p), p)
        angles_a = np.outer(a, angular_frequency(p, np.asarray(self.keys)))
        angles_b = np.outer(b, angular_frequency(p, np.asarray(self.keys)))
        # Interleave cos/sin per frequency: columns [cos k1, sin k1, cos k2, ...].
        embed = np.stack([np.cos(angles_a) + np.cos(angles_b), np.sin(angles_a) + np.sin(angles_b)], axis=2)
        embed = embed.reshape(p * p, -1) / 2
        pre = embed @ self.weights["W_in"]
        hidden = np.maximum(pre, 0)
        return {"embed": embed, "pre": pre, "hidden": hidden, "logits": hidden @ self.weights["W_U"]}

    def generate(self) -> TaskArrays:
        internals, table = self._internals, self.neuron_table
        train_idx, test_idx = self.split()
        inputs = inputs_table(self.p)
        assigned = np.ones(len(table), dtype=bool)
        return TaskArrays(
            activations={site: internals[site].astype(np.float32) for site in ("hidden", "embed")},
            inputs=inputs,
            structures={
                "hidden": hidden_structures(table, assigned, self.keys, self.p, self.data_revision >= 2),
                "embed": embed_structures(internals["embed"], self.keys, self.p, self.data_revision >= 2),
            },
            train_idx=train_idx,
            test_idx=test_idx,
            targets=inputs.c.to_numpy(),
        )

    def forward(self, X: np.ndarray, site: str | None = None, split: Split = "test") -> np.ndarray:
        """Logits [n_split, p] from X [n_split, d_site] (no residual path in the ideal model)."""
        X = np.asarray(X, dtype=np.float64)
        hidden = np.maximum(X @ self.weights["W_in"], 0) if self._site(site) == "embed" else X
        return hidden @ self.weights["W_U"]

    def validate(self) -> dict[str, Any]:
        logits, p = self._internals["logits"], self.p
        return {
            "accuracy": float(np.mean(logits.argmax(axis=1) == inputs_table(p).c.to_numpy())),
            "neurons": len(self.neuron_table),
            "key_frequencies": self.keys,
            **split_figures(p, *self.split()),
            "gradient_symmetricity": 1.0,  # the MLP input is (E_a + E_b) / 2: identical gradients
            "distance_irrelevance": diagnostics.distance_irrelevance(logits, p),
            "logit_scale_correlation": diagnostics.scale_dependence(logits, p, self.keys),
        }


class IdealPizzaV2Task(IdealPizzaTask):
    """pizza-ideal-v2: pizza-ideal-v1's construction, data split by unordered pair {a, b}."""

    metadata = replace(IdealPizzaTask.metadata, id="pizza-ideal-v2", superseded_by=None)
    data_revision = 2
