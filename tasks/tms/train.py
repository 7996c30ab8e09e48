"""Retrain the shipped toy-model-of-superposition checkpoint, deterministically on CPU.

    python -m structure_bench_tasks.tms.train --out checkpoint.safetensors

Fresh batches of sparse features each step, AdamW on the importance-weighted squared error, as in
Elhage et al. (2022).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

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
        """Feature importances I_i = decay^i, [n_features]."""
        return self.importance_decay ** np.arange(self.n_features)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the safetensors checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: the same reduction order on every machine
    config = TrainConfig()
    start = time.perf_counter()
    model = train(config, log_every=1000)
    print(f"trained in {time.perf_counter() - start:.1f} s with {asdict(config)}")
    save_file(model.weights(), str(args.out))


if __name__ == "__main__":
    main()
