"""Retrain the shipped toy-model-of-superposition checkpoint, deterministically on CPU.

    python -m structure_bench_tasks.tms.train --out checkpoint.safetensors

Fresh batches of sparse features each step, AdamW on the importance-weighted squared error, as in
Elhage et al. (2022).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from structure_bench_tasks.training_cli import retrain_main
from structure_bench_tasks.tms.model import ReluOutputModel


@dataclass(frozen=True)
class TrainConfig:
    """The configuration the shipped checkpoint was trained with."""

    n_features: int = 40
    n_hidden: int = 10
    feature_probability: float = 0.05
    importance_decay: float = 0.9
    batch_size: int = 1024
    steps: int = 10_000
    lr: float = 1e-3
    seed: int = 0

    def importance(self) -> np.ndarray:
        """Feature importances I_i = decay^i, [n_features] (libm's pow: see ``synthetic.zipf_rates``)."""
        return np.array([math.pow(self.importance_decay, i) for i in range(self.n_features)])


def train(config: TrainConfig = TrainConfig(), log_every: int = 0) -> ReluOutputModel:
    """Train the model with ``config``; returns it after the last step."""
    torch.manual_seed(config.seed)
    model = ReluOutputModel(config.n_features, config.n_hidden)
    importance = torch.from_numpy(config.importance()).float()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    shape = (config.batch_size, config.n_features)
    for step in range(config.steps):
        x = (torch.rand(shape) < config.feature_probability) * torch.rand(shape)
        loss = (importance * (x - model(x)) ** 2).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if log_every and (step % log_every == 0 or step == config.steps - 1):
            print(f"step {step:6d}  loss {loss.item():.5f}")
    return model


def main() -> None:
    retrain_main(__doc__.splitlines()[0], train, TrainConfig(), log_every=1000)


if __name__ == "__main__":
    main()
