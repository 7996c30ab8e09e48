"""group-v1: composition in S4 by a trained one-hidden-layer network (Chughtai, Chan & Nanda 2023)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.structures import Directions, Subspaces, Variables
from structure_bench.task import Cell, Split, Task, TaskArrays, TaskMetadata
from structure_bench_tasks.group import analysis
from structure_bench_tasks.group.model import CHECKPOINT, embed, hidden_from_embed, load_weights, logits_from_hidden
from structure_bench_tasks.group.symmetric import irreps
from structure_bench_tasks.group.train import all_pairs

_HERE = Path(__file__).parent


class GroupCompositionTask(Task):
    """Activations of the shipped S4 network on all 576 pairs (x, y); the target is z = x * y.

    Sites: ``hidden`` (post-ReLU, default) and ``embed`` (the MLP input, [E_l x ; E_r y]).
    Ground truth: ``irreps`` (per key irrep, the span of its neurons at ``hidden``, of its embedding
    directions at ``embed``), ``neurons`` (the neuron basis labelled by irrep) and ``inputs`` (x, y, z).
    """

    metadata = TaskMetadata(
        id="group-v1",
        description="Composition in the symmetric group S4 by a trained MLP that uses irreducible representations.",
        references=(
            "Chughtai, Chan, Nanda 2023, A Toy Model of Universality, arXiv 2302.03025",
            "Stander, Yu, Fan, Biderman 2023, Grokking Group Multiplication with Cosets, arXiv 2312.06581",
        ),
        sites=("hidden", "embed"),
        default_site="hidden",
        primary="irreps",
        main_score="irreps/subspace_f",
        # 0.5x, 1x, 4x the 91 key neurons; L0 3 (one per key irrep) and 14 (the sum of d_rho^2).
        grid=(Cell(45, 3), Cell(91, 3), Cell(364, 3), Cell(91, 14)),
        card=_HERE / "README.md",
    )
    model_sites = ("hidden", "embed")

    def __init__(self, id: str, test_fraction: float = 0.25, split_seed: int = 0) -> None:
        super().__init__(id, test_fraction=test_fraction, split_seed=split_seed)
        self.test_fraction, self.split_seed = test_fraction, split_seed
        self.checkpoint = CHECKPOINT  # a retrained model can be validated by pointing this elsewhere

    def data_files(self) -> list[Path]:
        return [self.checkpoint]

    def source_files(self) -> list[Path]:
        return [*super().source_files(), *(_HERE / name for name in ("model.py", "analysis.py", "symmetric.py"))]

    def generate(self) -> TaskArrays:
        weights = load_weights(self.checkpoint)
        x, y, z = all_pairs()
        embedded = embed(weights, x, y)
        hidden = hidden_from_embed(weights, embedded)
        neurons = analysis.neuron_irreps(weights)
        keys = analysis.key_irreps(weights)
        eye = np.eye(hidden.shape[1])
        hidden_irreps = Subspaces(
            "irreps", [eye[neurons.alive & (neurons.irrep == name)] for name in keys], keys
        )
        # Labels must be numeric arrays (they are fingerprinted): the irrep as its index in irreps().
        names = [rho.name for rho in irreps()]
        neuron_labels = pd.DataFrame(
            {
                "neuron": np.flatnonzero(neurons.alive),
                "irrep": [names.index(name) for name in neurons.irrep[neurons.alive]],
                "share": neurons.share[neurons.alive],
            }
        )
        neuron_directions = Directions("neurons", eye[neurons.alive], hidden[:, neurons.alive], neuron_labels)
        embed_irreps = Subspaces("irreps", [analysis.embedding_subspace(weights, name) for name in keys], keys)
        inputs = pd.DataFrame({"x": x, "y": y, "z": z})
        variables = Variables("inputs", inputs, {"x": "discrete", "y": "discrete", "z": "discrete"})
        permutation = np.random.default_rng(self.split_seed).permutation(len(x))
        n_test = round(self.test_fraction * len(x))
        return TaskArrays(
            activations={"hidden": hidden.astype(np.float32), "embed": embedded.astype(np.float32)},
            inputs=inputs,
            structures={
                "hidden": {"irreps": hidden_irreps, "neurons": neuron_directions, "inputs": variables},
                "embed": {"irreps": embed_irreps, "inputs": variables},
            },
            train_idx=np.sort(permutation[n_test:]),
            test_idx=np.sort(permutation[:n_test]),
            targets=z,
        )

    def forward(self, X: np.ndarray, site: str | None = None, split: Split = "test") -> np.ndarray:
        """Logits [n, 24] from activations X [n, d_site] at ``hidden`` or ``embed`` (no residual path)."""
        site = self._site(site)
        if site not in self.model_sites:
            raise StructureBenchError(f"task {self.id} has no model at site {site!r}")
        weights = load_weights(self.checkpoint)
        X = np.asarray(X, dtype=np.float64)
        hidden = hidden_from_embed(weights, X) if site == "embed" else X
        return logits_from_hidden(weights, hidden)

    def validate(self) -> dict[str, Any]:
        weights = load_weights(self.checkpoint)
        x, y, z = all_pairs()
        hidden = hidden_from_embed(weights, embed(weights, x, y))
        logits = logits_from_hidden(weights, hidden)
        keys = analysis.key_irreps(weights)
        neurons = analysis.neuron_irreps(weights)
        in_key = neurons.alive & np.isin(neurons.irrep, keys)
        logit_shares = analysis.logit_shares(logits)
        embedding_shares = analysis.embedding_shares(weights)
        figures: dict[str, Any] = {
            "accuracy_all_pairs": float((logits.argmax(1) == z).mean()),
            "key_irreps": keys,
            "alive_neurons": int(neurons.alive.sum()),
            "neurons_per_irrep": {name: int((neurons.alive & (neurons.irrep == name)).sum())
                                  for name in logit_shares},
            "neurons_share_ge_0.9": float((neurons.share[neurons.alive] >= 0.9).mean()),
            "hidden_variance_in_key_neurons": float((hidden[:, in_key] ** 2).sum() / (hidden**2).sum()),
            "embedding_variance_in_key_irreps": sum(embedding_shares[name] for name in keys),
            "logit_variance_in_key_irreps": sum(logit_shares[name] for name in keys),
            "accuracy_key_neurons_only": float((logits_from_hidden(weights, hidden * in_key).argmax(1) == z).mean()),
        }
        figures.update({f"logit_share/{name}": share for name, share in logit_shares.items()})
        figures.update({f"embedding_share/{name}": share for name, share in embedding_shares.items()})
        return figures
