"""The ReLU output model of Elhage et al. (2022), "Toy Models of Superposition".

h = W x (the `hidden` bottleneck, m dims) and x' = ReLU(W^T h + b), trained to reconstruct sparse
features x (n dims) under an importance-weighted squared error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from torch import nn

CHECKPOINT = Path(__file__).parent / "checkpoint.safetensors"


class ReluOutputModel(nn.Module):
    """W : [m, n] (columns are the features' embeddings), b : [n]."""

    def __init__(self, n_features: int, n_hidden: int) -> None:
        super().__init__()
        self.W = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_hidden, n_features)))
        self.b = nn.Parameter(torch.zeros(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions [batch, n] of features x [batch, n]."""
        return torch.relu((x @ self.W.T) @ self.W + self.b)

    def weights(self) -> dict[str, np.ndarray]:
        """The parameters as float32 numpy arrays, under the checkpoint's names."""
        return {name: p.detach().numpy().astype(np.float32) for name, p in self.state_dict().items()}


def sample_features(
    rng: np.random.Generator, n_samples: int, n_features: int, feature_probability: float
) -> np.ndarray:
    """Sparse features [n_samples, n_features]: each is U[0, 1] with probability p, else 0."""
    on = rng.random((n_samples, n_features)) < feature_probability
    return on * rng.random((n_samples, n_features))


def load_weights(path: Path = CHECKPOINT) -> dict[str, np.ndarray]:
    """The checkpoint's W [m, n] and b [n] in float64."""
    return {name: array.astype(np.float64) for name, array in load_file(str(path)).items()}


def hidden(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Bottleneck activations h = W x, [n_samples, m], for features x [n_samples, n]."""
    return x @ weights["W"].T


def reconstruct(weights: dict[str, np.ndarray], h: np.ndarray) -> np.ndarray:
    """x' = ReLU(W^T h + b), [n_samples, n], from bottleneck activations h [n_samples, m]."""
    return np.maximum(h @ weights["W"] + weights["b"], 0.0)
