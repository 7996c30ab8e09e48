"""The one-layer transformer of Zhong et al. 2023 for (a + b) mod p, shared by pizza and clock.

Architecture (their ``train-main.py``): token embedding ``W_E`` and positional embedding ``W_pos``
for the two-token input ``[a, b]``; one attention layer (4 heads, no mask, no layer norm) whose
pattern is ``rate * softmax(q k / sqrt(d_head)) + (1 - rate)`` (rate 0: every weight is 1, the
constant attention of the pizza; rate 1: learned attention); a ReLU MLP of width ``4 d_model``;
residual connections around both; an unembedding read at the last position. Only the last
position feeds the logits, so only its query is computed (exactly equivalent for one layer).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from structure_bench.errors import StructureBenchError
from structure_bench.results import file_mode


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the modular-addition transformer."""

    p: int = 59
    d_model: int = 64
    n_heads: int = 4
    attention_rate: float = 0.0

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_mlp(self) -> int:
        return 4 * self.d_model


class ModAddTransformer(nn.Module):
    """One-layer transformer; ``forward(tokens [n, 2])`` gives logits [n, p] at the last position."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        p, d, h, dh, m = config.p, config.d_model, config.n_heads, config.d_head, config.d_mlp
        # Initial scales follow Zhong et al.'s code (randn over sqrt of a fan dimension).
        self.W_E = nn.Parameter(torch.randn(p, d) / np.sqrt(d))
        self.W_pos = nn.Parameter(torch.randn(2, d) / np.sqrt(d))
        self.W_Q = nn.Parameter(torch.randn(h, d, dh) / np.sqrt(d))
        self.W_K = nn.Parameter(torch.randn(h, d, dh) / np.sqrt(d))
        self.W_V = nn.Parameter(torch.randn(h, d, dh) / np.sqrt(d))
        self.W_O = nn.Parameter(torch.randn(h * dh, d) / np.sqrt(d))
        self.W_in = nn.Parameter(torch.randn(d, m) / np.sqrt(m))
        self.b_in = nn.Parameter(torch.zeros(m))
        self.W_out = nn.Parameter(torch.randn(m, d) / np.sqrt(d))
        self.b_out = nn.Parameter(torch.zeros(d))
        self.W_U = nn.Parameter(torch.randn(d, p) / np.sqrt(p))

    def mlp_input(self, e_a: torch.Tensor, e_b: torch.Tensor) -> torch.Tensor:
        """Residual stream at the last position before the MLP, [n, d], from token embeddings [n, d]."""
        x = torch.stack([e_a, e_b], dim=1) + self.W_pos  # [n, 2, d]
        q = torch.einsum("nd,hde->nhe", x[:, 1], self.W_Q)
        k = torch.einsum("npd,hde->nhpe", x, self.W_K)
        v = torch.einsum("npd,hde->nhpe", x, self.W_V)
        scores = torch.einsum("nhe,nhpe->nhp", q, k) / np.sqrt(self.config.d_head)
        rate = self.config.attention_rate
        pattern = rate * torch.softmax(scores, dim=-1) + (1.0 - rate)
        z = torch.einsum("nhp,nhpe->nhe", pattern, v).reshape(len(x), -1)
        return x[:, 1] + z @ self.W_O

    def pre_activation(self, resid_mid: torch.Tensor) -> torch.Tensor:
        """MLP pre-activations [n, d_mlp] from the MLP input [n, d]."""
        return resid_mid @ self.W_in + self.b_in

    def logits_from_hidden(self, hidden: torch.Tensor, resid_mid: torch.Tensor) -> torch.Tensor:
        """Logits [n, p] from post-ReLU hidden [n, d_mlp] plus the residual that skips the MLP."""
        return (resid_mid + hidden @ self.W_out + self.b_out) @ self.W_U

    def logits_from_embeddings(self, e_a: torch.Tensor, e_b: torch.Tensor) -> torch.Tensor:
        resid_mid = self.mlp_input(e_a, e_b)
        return self.logits_from_hidden(torch.relu(self.pre_activation(resid_mid)), resid_mid)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits_from_embeddings(self.W_E[tokens[:, 0]], self.W_E[tokens[:, 1]])


def all_pairs(p: int) -> np.ndarray:
    """Every input pair, row-major in (a, b): int64 [p * p, 2]."""
    a, b = np.divmod(np.arange(p * p), p)
    return np.stack([a, b], axis=1)


def pair_split(p: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random split of the p^2 pair indices into (train, test), each sorted."""
    order = np.random.default_rng(seed).permutation(p * p)
    n_train = int(train_fraction * p * p)
    return np.sort(order[:n_train]), np.sort(order[n_train:])


def unordered_pair_split(p: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random split of the p^2 pair indices into (train, test), each sorted, that keeps
    (a, b) and (b, a) together: the p (p + 1) / 2 unordered pairs {a, b} are permuted and the first
    ``train_fraction`` of them go to train. A network symmetric under a <-> b then never sees a test
    sample's mirror image in training."""
    a, b = np.divmod(np.arange(p * p), p)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    unordered = lo * p - lo * (lo - 1) // 2 + (hi - lo)  # rank of {lo, hi} among pairs with lo <= hi
    n_unordered = p * (p + 1) // 2
    order = np.random.default_rng(seed).permutation(n_unordered)
    in_train = np.zeros(n_unordered, dtype=bool)
    in_train[order[: int(train_fraction * n_unordered)]] = True
    train = in_train[unordered]
    return np.flatnonzero(train), np.flatnonzero(~train)


def dictionary_split(p: int, train_fraction: float, seed: int, data_revision: int) -> tuple[np.ndarray, np.ndarray]:
    """A modular-addition task's dictionary-learning (train, test) pair indices: ``pair_split`` for
    v1 data (revision 1), ``unordered_pair_split`` from revision 2 on."""
    split = unordered_pair_split if data_revision >= 2 else pair_split
    return split(p, train_fraction, seed)


def mirror_share(p: int, train_idx: np.ndarray, test_idx: np.ndarray) -> float:
    """Share of test pairs (a, b) whose mirror image (b, a) is in ``train_idx`` (pair indices a p + b)."""
    a, b = np.divmod(np.asarray(test_idx), p)
    return float(np.isin(b * p + a, train_idx).mean())


def save_checkpoint(model: ModAddTransformer, path: Path, training: dict) -> None:
    """Write the weights (float32) with the architecture and training config in the metadata."""
    tensors = {name: t.detach().to(torch.float32).contiguous() for name, t in model.state_dict().items()}
    metadata = {"model": json.dumps(asdict(model.config)), "training": json.dumps(training, sort_keys=True)}
    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, file_mode())  # safetensors writes 0600; a checkpoint is for everyone to read


def load_checkpoint(path: Path, dtype: torch.dtype = torch.float64) -> tuple[ModAddTransformer, dict]:
    """The model (in ``dtype``, eval mode, no grad on weights) and its training config."""
    from safetensors import safe_open

    if not Path(path).exists():
        raise StructureBenchError(f"checkpoint {path} is missing; retrain it with structure_bench_tasks.pizza.train")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    model = ModAddTransformer(ModelConfig(**json.loads(metadata["model"])))
    model.load_state_dict(load_file(str(path)))
    model = model.to(dtype).eval()
    model.requires_grad_(False)
    return model, json.loads(metadata["training"])


# The authors' tensors in their layout (``train-main.py``): name -> (our parameter, transpose?).
# Theirs: W_E [d, p], W_Q/W_K/W_V [h, d_head, d], W_O [d, h d_head], W_in [d_mlp, d],
# W_out [d, d_mlp]; ours multiply from the right ([p, d], [h, d, d_head], [h d_head, d], ...).
_ZHONG2023_NAMES = {
    "embed.W_E": ("W_E", True),
    "pos_embed.W_pos": ("W_pos", False),
    "blocks.0.attn.W_Q": ("W_Q", True),
    "blocks.0.attn.W_K": ("W_K", True),
    "blocks.0.attn.W_V": ("W_V", True),
    "blocks.0.attn.W_O": ("W_O", True),
    "blocks.0.mlp.W_in": ("W_in", True),
    "blocks.0.mlp.b_in": ("b_in", False),
    "blocks.0.mlp.W_out": ("W_out", True),
    "blocks.0.mlp.b_out": ("b_out", False),
    "unembed.W_U": ("W_U", False),
}


def load_zhong2023(path: Path, dtype: torch.dtype = torch.float64) -> tuple[ModAddTransformer, dict]:
    """One of Zhong et al.'s released checkpoints (converted to safetensors, their tensor names) as
    our model, and the run's config. Their causal mask (``blocks.0.attn.mask``) hides nothing from
    the last position, the only one read, so it is not needed."""
    from safetensors import safe_open

    if not Path(path).exists():
        raise StructureBenchError(f"checkpoint {path} is missing: copy it from shared/reference_models/zhong2023")
    with safe_open(str(path), framework="pt") as handle:
        config = json.loads(handle.metadata()["config"])
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    if config["n_layers"] != 1 or config["act_fn"] != "ReLU" or config["diff_vocab"] or config["eqn_sign"]:
        raise StructureBenchError(f"checkpoint {path}: not a one-layer ReLU model on [a, b] ({config})")
    model = ModAddTransformer(ModelConfig(
        p=config["C"], d_model=config["d_model"], n_heads=config["n_heads"], attention_rate=float(config["attn_coeff"])
    ))
    state = {}
    for theirs, (ours, transpose) in _ZHONG2023_NAMES.items():
        tensor = tensors[theirs]
        state[ours] = tensor.transpose(-1, -2) if transpose else tensor
    model.load_state_dict(state)
    model = model.to(dtype).eval()
    model.requires_grad_(False)
    return model, config
