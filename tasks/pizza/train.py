"""Train the modular-addition transformer full-batch on CPU and write a safetensors checkpoint.

    python -m structure_bench_tasks.pizza.train --out tasks/pizza/pizza.safetensors
    python -m structure_bench_tasks.pizza.train --attention-rate 1 --steps 500 --out tasks/clock/clock.safetensors

Defaults are Zhong et al.'s (``train-main.py``): p = 59, 4 heads, AdamW with lr 1e-3, weight
decay 2.0, betas (0.9, 0.98), 10-step linear warm-up, 80% of the pairs as the training set, full
batch, float64 cross-entropy; except d_model = 64 (their width sweep spans 32-512; the paper's
main models use 128) and 1500 steps (the paper: 20000), to train on a small shared CPU.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from structure_bench_tasks.pizza.model import ModAddTransformer, ModelConfig, all_pairs, pair_split, save_checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the split seed also fixes the task's train/test split."""

    steps: int = 1500
    lr: float = 1e-3
    weight_decay: float = 2.0
    train_fraction: float = 0.8
    split_seed: int = 0
    seed: int = 0
    warmup_steps: int = 10


def train(model_config: ModelConfig, config: TrainConfig, log_every: int = 0) -> tuple[ModAddTransformer, dict]:
    """Train from a fixed seed; returns the model and a record (config, accuracies, seconds)."""
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # one thread: a fixed reduction order, and no contention on small CPUs
    model = ModAddTransformer(model_config)
    pairs = torch.from_numpy(all_pairs(model_config.p))
    targets = pairs.sum(dim=1) % model_config.p
    train_idx, test_idx = (torch.from_numpy(i) for i in pair_split(model_config.p, config.train_fraction, config.split_seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.98))
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(step / config.warmup_steps, 1.0))
    start = time.perf_counter()
    for step in range(config.steps):
        logits = model(pairs[train_idx])
        # float64 cross-entropy: float32 log-softmax saturates on confident outputs (loss spikes).
        loss = F.cross_entropy(logits.to(torch.float64), targets[train_idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        warmup.step()
        if log_every and step % log_every == 0:
            print(f"step {step:6d}  train loss {loss.item():.3e}", flush=True)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        correct = model(pairs).argmax(dim=1) == targets
    record = {
        **asdict(config),
        "train_accuracy": correct[train_idx].double().mean().item(),
        "test_accuracy": correct[test_idx].double().mean().item(),
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
    }
    return model, record


def main(argv: list[str] | None = None) -> None:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="where to write the .safetensors checkpoint")
    parser.add_argument("--attention-rate", type=float, default=0.0, help="0 = constant attention (pizza), 1 = learned")
    parser.add_argument("--d-model", type=int, default=ModelConfig.d_model)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--log-every", type=int, default=1000)
    args = parser.parse_args(argv)
    model_config = ModelConfig(d_model=args.d_model, attention_rate=args.attention_rate)
    config = TrainConfig(steps=args.steps, seed=args.seed, weight_decay=args.weight_decay)
    model, record = train(model_config, config, log_every=args.log_every)
    save_checkpoint(model, args.out, record)
    print(f"wrote {args.out}: {record}")


if __name__ == "__main__":
    main()
