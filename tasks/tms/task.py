"""tms-v1: sparse features in superposition in a trained toy model (Elhage et al. 2022)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from structure_bench.structures import Directions
from structure_bench.task import Cell, Task, TaskArrays, TaskMetadata
from structure_bench_tasks.tms.model import CHECKPOINT, hidden, load_weights, reconstruct, sample_features
from structure_bench_tasks.tms.train import TrainConfig

# A feature is represented when its embedding ||W_i|| exceeds this (Elhage et al.'s plots show
# norms near 0 or near 1, with little in between).
REPRESENTED_NORM = 0.5


def represented_features(W: np.ndarray) -> np.ndarray:
    """Indices of the features whose column of W [m, n] has norm above REPRESENTED_NORM."""
    return np.flatnonzero(np.linalg.norm(W, axis=0) > REPRESENTED_NORM)


def feature_dimensionality(W: np.ndarray) -> np.ndarray:
    """Elhage et al.'s D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2, [n] (0 for unembedded features)."""
    norms = np.linalg.norm(W, axis=0)
    unit = W / np.where(norms > 0, norms, 1.0)
    interference = ((unit.T @ W) ** 2).sum(axis=1)
    return np.where(norms > 0, norms**2 / np.where(interference > 0, interference, 1.0), 0.0)


class ToyModelOfSuperpositionTask(Task):
    """Bottleneck activations h = W x of the shipped ReLU output model on sparse features.

    Samples are fresh draws from the training distribution (seeded), split into train and test by
    position. Ground truth ``features``: the unit columns of W for the represented features, with
    their values x as per-sample coefficients.
    """

    metadata = TaskMetadata(
        id="tms-v1",
        description="Sparse features in superposition in the bottleneck of a trained ReLU output model.",
        references=(
            "Elhage et al. 2022, Toy Models of Superposition, https://transformer-circuits.pub/2022/toy_model/",
        ),
        sites=("hidden",),
        default_site="hidden",
        primary="features",
        main_score="features/mcc",
        grid=(Cell(12, 1), Cell(25, 1), Cell(100, 1), Cell(25, 2)),
        card=Path(__file__).parent / "README.md",
    )
    instance_seed = "sample_seed"

    def __init__(self, id: str, n_samples: int = 8000, n_train: int = 6000, sample_seed: int = 1) -> None:
        super().__init__(id, n_samples=n_samples, n_train=n_train, sample_seed=sample_seed)
        self.n_samples, self.n_train, self.sample_seed = n_samples, n_train, sample_seed
        self.config = TrainConfig()
        self.checkpoint = CHECKPOINT  # a retrained model can be validated by pointing this elsewhere

    def data_files(self) -> list[Path]:
        return [self.checkpoint]

    def source_files(self) -> list[Path]:
        return [*super().source_files(), Path(__file__).parent / "model.py"]

    def features(self) -> np.ndarray:
        """The seeded feature vectors x, [n_samples, n_features] float64."""
        rng = np.random.default_rng(self.sample_seed)
        return sample_features(rng, self.n_samples, self.config.n_features, self.config.feature_probability)

    def generate(self) -> TaskArrays:
        weights = load_weights(self.checkpoint)
        x = self.features()
        represented = represented_features(weights["W"])
        labels = pd.DataFrame(
            {
                "feature": represented,
                "importance": self.config.importance()[represented],
                "norm": np.linalg.norm(weights["W"], axis=0)[represented],
            }
        )
        features = Directions("features", weights["W"][:, represented].T, x[:, represented], labels)
        return TaskArrays(
            activations={"hidden": hidden(weights, x).astype(np.float32)},
            inputs=pd.DataFrame({f"x{i:02d}": x[:, i] for i in range(x.shape[1])}),
            structures={"hidden": {"features": features}},
            train_idx=np.arange(self.n_train),
            test_idx=np.arange(self.n_train, self.n_samples),
        )

    def validate(self) -> dict[str, Any]:
        weights = load_weights(self.checkpoint)
        W = weights["W"]
        x = self.features()
        importance = self.config.importance()
        loss = float((importance * (x - reconstruct(weights, hidden(weights, x))) ** 2).sum(1).mean())
        # Without superposition the best a width-m model can do is to keep the m most important
        # features exactly and drop the rest, losing E[x_i^2] = p / 3 each.
        dropped = importance[self.config.n_hidden :].sum() * self.config.feature_probability / 3
        represented = represented_features(W)
        unit = W[:, represented] / np.linalg.norm(W[:, represented], axis=0)
        cosines = unit.T @ unit - 2 * np.eye(len(represented))  # -2 keeps the diagonal out of max
        dims = feature_dimensionality(W)[represented]
        return {
            "loss": loss,
            "loss_without_superposition": float(dropped),
            "n_features": int(W.shape[1]),
            "n_hidden": int(W.shape[0]),
            "n_represented": int(len(represented)),
            "features_per_dimension": len(represented) / W.shape[0],
            "dimensions_per_feature": float(W.shape[0] / np.linalg.norm(W) ** 2),
            "feature_dimensionality_min": float(dims.min()),
            "feature_dimensionality_max": float(dims.max()),
            "max_cosine": float(cosines.max()),
            "antipodal_pairs": int((np.triu(cosines, 1) < -0.99).sum()),
            "true_l0": float((x[:, represented] > 0).sum(1).mean()),
        }
