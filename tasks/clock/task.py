"""clock-v1: the same transformer with learned attention (Zhong et al.'s model A, a clock).

Everything but the checkpoint and the neuron fit is pizza-v1's code: a clock neuron multiplies
cos(w_k a) and cos(w_k b) terms, so its frequency is fitted with the products included.
"""

from dataclasses import replace
from pathlib import Path

from structure_bench_tasks.pizza.task import ModularAdditionTask, PizzaTask, modular_addition_grid

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
    )
    checkpoint = HERE / "clock.safetensors"
    neuron_form = "frequency"
