"""The command line shared by the trained tasks' retraining scripts."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.numpy import save_file

from structure_bench.results import file_mode


def retrain_main(description: str, train: Callable[..., Any], config: Any, log_every: int) -> None:
    """Parse ``--out``, train ``config`` on one thread, write the model's weights as safetensors."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True, help="where to write the safetensors checkpoint")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: the same reduction order on every machine
    start = time.perf_counter()
    model = train(config, log_every=log_every)
    print(f"trained in {time.perf_counter() - start:.1f} s with {asdict(config)}")
    save_file(model.weights(), str(args.out))
    os.chmod(args.out, file_mode())  # safetensors writes 0600; a checkpoint is for everyone to read
