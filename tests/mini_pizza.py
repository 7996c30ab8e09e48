"""A small analytic pizza (SPEC 5) and an NMF method for the report tests (importable as ``mini_pizza``).

Neuron i of frequency k and phase phi fires ReLU(cos(w_k a + phi) + cos(w_k b + phi)); the
``embed`` site holds the per-frequency Fourier circles (cos, sin of w_k a averaged with b).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import NMF

from structure_bench import Cell, Directions, Method, Subspaces, Task, TaskArrays, TaskMetadata, Variables, register_task


class MiniPizza(Task):
    """Pizza-like activations over all p^2 pairs (a, b), with the pizza tasks' structures."""

    metadata = TaskMetadata(
        id="mini-pizza-v1", description="analytic mini pizza (test fixture)", references=(), sites=("hidden", "embed"),
        default_site="hidden", primary="frequencies", main_score="frequencies/subspace_f",
        grid=(Cell(16, 2),),  # the 2 frequencies x 8 neurons
    )

    def __init__(self, id: str, p: int = 13, frequencies: tuple[int, ...] = (1, 3), neurons_per_frequency: int = 8) -> None:
        super().__init__(id, p=p, frequencies=frequencies, neurons_per_frequency=neurons_per_frequency)
        self.p, self.frequencies, self.per_frequency = p, frequencies, neurons_per_frequency

    def generate(self) -> TaskArrays:
        p = self.p
        a, b = np.divmod(np.arange(p * p), p)
        k = np.repeat(self.frequencies, self.per_frequency)
        phi = np.tile(np.linspace(-np.pi, np.pi, self.per_frequency, endpoint=False), len(self.frequencies))
        w = 2 * np.pi * k / p
        hidden = np.maximum(np.cos(np.outer(a, w) + phi) + np.cos(np.outer(b, w) + phi), 0).astype(np.float32)
        wf = 2 * np.pi * np.asarray(self.frequencies) / p
        embed = np.concatenate(
            [(np.cos(np.outer(a, wf)) + np.cos(np.outer(b, wf))) / 2, (np.sin(np.outer(a, wf)) + np.sin(np.outer(b, wf))) / 2],
            axis=1,
        ).astype(np.float32)
        inputs = pd.DataFrame({"a": a, "b": b, "c": (a + b) % p, "d": (a - b) % p})
        n_neurons = len(k)
        identity = np.eye(n_neurons)
        F = len(self.frequencies)
        perm = np.random.default_rng(0).permutation(p * p)
        return TaskArrays(
            activations={"hidden": hidden, "embed": embed},
            inputs=inputs,
            structures={
                "hidden": {
                    "neurons": Directions("neurons", identity, labels=pd.DataFrame({"k": k, "phi": phi})),
                    "frequencies": Subspaces("frequencies", [identity[k == f] for f in self.frequencies],
                                             [f"k={f}" for f in self.frequencies]),
                    "inputs": Variables("inputs", inputs, dict.fromkeys(inputs.columns, "discrete")),
                },
                "embed": {
                    "circles": Subspaces("circles", [np.eye(2 * F)[[g, F + g]] for g in range(F)],
                                         [f"k={f}" for f in self.frequencies]),
                },
            },
            train_idx=np.sort(perm[: p * p * 3 // 4]),
            test_idx=np.sort(perm[p * p * 3 // 4 :]),
        )


register_task("mini-pizza-v1", entry_point=MiniPizza)


class NonNegative(Method):
    """sklearn NMF: non-negative codes and dictionary (the activations are non-negative ReLU outputs)."""

    def fit(self, X: np.ndarray) -> NonNegative:
        self.model_ = NMF(self.n_latents, init="nndsvda", max_iter=400, random_state=self.seed).fit(np.maximum(X, 0))
        self.decoder_ = self.model_.components_
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        return self.model_.transform(np.maximum(X, 0))
