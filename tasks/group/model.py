"""The one-hidden-layer group-composition network of Chughtai, Chan & Nanda (2023).

One-hot x and y are embedded by separate matrices (left and right), the two embeddings are
concatenated (the `embed` site), passed through one ReLU layer (the `hidden` site) and unembedded
to logits over the group. There is no residual path: the logits depend on the hidden layer alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from torch import nn

CHECKPOINT = Path(__file__).parent / "checkpoint.safetensors"


class GroupMLP(nn.Module):
    """logits = W_U ReLU(W_in [E_l x ; E_r y] + b_in)."""

    def __init__(self, order: int, d_embed: int, d_hidden: int) -> None:
        super().__init__()
        self.embed_left = nn.Parameter(torch.randn(order, d_embed) / np.sqrt(d_embed))
        self.embed_right = nn.Parameter(torch.randn(order, d_embed) / np.sqrt(d_embed))
        self.mlp = nn.Linear(2 * d_embed, d_hidden)
        self.unembed = nn.Linear(d_hidden, order, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits [n, order] for element indices x, y [n]."""
        embedded = torch.cat([self.embed_left[x], self.embed_right[y]], dim=-1)
        return self.unembed(torch.relu(self.mlp(embedded)))

    def weights(self) -> dict[str, np.ndarray]:
        """The parameters as float32 numpy arrays, under the checkpoint's names."""
        return {name: p.detach().numpy().astype(np.float32) for name, p in self.state_dict().items()}


def load_weights(path: Path = CHECKPOINT) -> dict[str, np.ndarray]:
    """The checkpoint's parameters in float64 (all downstream maths is float64)."""
    return {name: array.astype(np.float64) for name, array in load_file(str(path)).items()}


def embed(weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """MLP input [n, 2 * d_embed] for element indices x, y [n]."""
    return np.concatenate([weights["embed_left"][x], weights["embed_right"][y]], axis=1)


def hidden_from_embed(weights: dict[str, np.ndarray], embedded: np.ndarray) -> np.ndarray:
    """Post-ReLU activations [n, d_hidden] from MLP inputs [n, 2 * d_embed]."""
    return np.maximum(embedded @ weights["mlp.weight"].T + weights["mlp.bias"], 0.0)


def logits_from_hidden(weights: dict[str, np.ndarray], hidden: np.ndarray) -> np.ndarray:
    """Logits [n, order] from post-ReLU activations [n, d_hidden]."""
    return hidden @ weights["unembed.weight"].T
