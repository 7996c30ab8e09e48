"""pizza-zhong2023-v1 and clock-zhong2023-v1: the checkpoints Zhong et al. released (MIT licence,
LICENSE beside this file), Model A (constant attention: the pizza) and Model B (learned
attention: the clock), run through our modular-addition task code.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from structure_bench_tasks.clock.task import ClockV2Task
from structure_bench_tasks.pizza.model import ModAddTransformer, load_zhong2023
from structure_bench_tasks.pizza.task import PizzaV2Task, modular_addition_grid

HERE = Path(__file__).parent
REFERENCES = (
    "Zhong, Liu, Tegmark, Andreas 2023, The Clock and the Pizza, arXiv 2306.17844; "
    "checkpoints from github.com/fjzzq2002/pizza (MIT licence)",
)


class Zhong2023Checkpoint:
    """Mixin: the model comes from one of the authors' checkpoints, whose training split is unknown
    (their script sets no seed), so ``model_train`` is -1."""

    checkpoint: Path

    def load_model(self) -> tuple[ModAddTransformer, dict[str, Any]]:
        return load_zhong2023(self.checkpoint)

    def model_train_idx(self) -> np.ndarray | None:
        return None


class PizzaZhong2023Task(Zhong2023Checkpoint, PizzaV2Task):
    """pizza-zhong2023-v1: the authors' Model A (run p99zdpze5l, attention rate 0)."""

    metadata = replace(
        PizzaV2Task.metadata,
        id="pizza-zhong2023-v1",
        description=(
            "(a + b) mod 59 by Zhong et al.'s released Model A (constant attention): the paper's own "
            "pizza, d_model 128, 512 ReLU neurons."
        ),
        references=REFERENCES + PizzaV2Task.metadata.references[1:],
        grid=modular_addition_grid(n_fitted=512, n_keys=3),
        card=HERE / "README.md",
    )
    checkpoint = HERE / "model_a_pizza.safetensors"


class ClockZhong2023Task(Zhong2023Checkpoint, ClockV2Task):
    """clock-zhong2023-v1: the authors' Model B (run l8k1hzciux, attention rate 1)."""

    metadata = replace(
        ClockV2Task.metadata,
        id="clock-zhong2023-v1",
        description=(
            "(a + b) mod 59 by Zhong et al.'s released Model B (learned attention): the paper's own "
            "clock, d_model 128, 512 ReLU neurons."
        ),
        references=REFERENCES + ClockV2Task.metadata.references[1:],
        grid=modular_addition_grid(n_fitted=486, n_keys=3, overcomplete=False),
        card=HERE / "README.md",
    )
    checkpoint = HERE / "model_b_clock.safetensors"
