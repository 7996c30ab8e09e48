"""Retrain the shipped group-composition checkpoint (S4), deterministically on CPU.

    python -m structure_bench_tasks.group.train --out checkpoint.safetensors

Full-batch AdamW on a fixed random fraction of the 576 pairs, with the strong weight decay that
makes these networks generalise (Chughtai et al. 2023, following Nanda et al. 2023).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from structure_bench_tasks.training_cli import retrain_main
from structure_bench_tasks.group.model import GroupMLP
from structure_bench_tasks.group.symmetric import ORDER, multiplication_table


@dataclass(frozen=True)
class TrainConfig:
    """The configuration the shipped checkpoint was trained with."""

    d_embed: int = 256
    d_hidden: int = 128
    train_fraction: float = 0.7
    lr: float = 3e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    steps: int = 6000
    seed: int = 0


def all_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, z = x * y), each [ORDER^2], with pair index x * ORDER + y."""
    x, y = np.divmod(np.arange(ORDER * ORDER), ORDER)
    return x, y, multiplication_table()[x, y]


def train_pairs(config: TrainConfig) -> np.ndarray:
    """Sorted indices of the pairs the model is trained on (a seeded random fraction)."""
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(ORDER * ORDER, generator=generator).numpy()
    return np.sort(order[: round(config.train_fraction * ORDER * ORDER)])


def train(config: TrainConfig = TrainConfig(), log_every: int = 0) -> GroupMLP:
    """Train the network with ``config``; returns the model after the last step."""
    torch.manual_seed(config.seed)
    model = GroupMLP(ORDER, config.d_embed, config.d_hidden)
    x, y, z = (torch.from_numpy(a) for a in all_pairs())
    idx = torch.from_numpy(train_pairs(config))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=config.betas
    )
    for step in range(config.steps):
        loss = F.cross_entropy(model(x[idx], y[idx]), z[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if log_every and (step % log_every == 0 or step == config.steps - 1):
            with torch.no_grad():
                accuracy = (model(x, y).argmax(-1) == z).double().mean().item()
            print(f"step {step:6d}  train loss {loss.item():.4f}  accuracy (all pairs) {accuracy:.4f}")
    return model


def main() -> None:
    retrain_main(__doc__.splitlines()[0], train, TrainConfig(), log_every=500)


if __name__ == "__main__":
    main()
