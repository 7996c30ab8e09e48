"""clock-v1: the same transformer with learned attention (Zhong et al.'s model A, a clock).

Everything but the checkpoint and the neuron fit is pizza-v1's code: a clock neuron multiplies
cos(w_k a) and cos(w_k b) terms, so its frequency is fitted with the products included.
"""

from dataclasses import replace
from pathlib import Path

from structure_bench_tasks.pizza.task import ModularAdditionTask, PizzaTask, PizzaV2Task, modular_addition_grid

HERE = Path(__file__).parent


class ClockTask(ModularAdditionTask):
    """clock-v1 (attention rate 1; checkpoint tasks/clock/clock.safetensors)."""

    # Sites, structures, main score and sources as pizza-v1.
    metadata = replace(
        PizzaTask.metadata,
        id="clock-v1",
        description=(
            "(a + b) mod 59 by a one-layer transformer with learned attention: the clock algorithm "
            "(the correct logit is cos(w_k (a + b - c)), independent of a - b)."
        ),
        grid=modular_addition_grid(n_fitted=171, n_keys=3),
        card=HERE / "README.md",
        superseded_by="clock-v2",
    )
    checkpoint = HERE / "clock.safetensors"
    neuron_form = "frequency"


class ClockV2Task(ClockTask):
    """clock-v2: Zhong et al.'s settings exactly with attention rate 1 (d_model 128, 20000 steps;
    checkpoint tasks/clock/clock-v2.safetensors), data split by unordered pair."""

    metadata = replace(
        PizzaV2Task.metadata,
        id="clock-v2",
        description=(
            "(a + b) mod 59 by a one-layer transformer with learned attention, retrained with Zhong "
            "et al.'s settings exactly (d_model 128, 512 ReLU neurons, 20000 steps): the clock."
        ),
        grid=modular_addition_grid(n_fitted=435, n_keys=4, overcomplete=False),
        card=HERE / "README.md",
    )
    checkpoint = HERE / "clock-v2.safetensors"
    data_revision = 2
