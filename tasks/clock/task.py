"""clock-v1: the same transformer with learned attention (Zhong et al.'s model A, a clock).

Everything but the checkpoint and the neuron fit is pizza-v1's code: a clock neuron multiplies
cos(w_k a) and cos(w_k b) terms, so its frequency is fitted with the products included.
"""

from pathlib import Path

from structure_bench_tasks.pizza.task import ModularAdditionTask

HERE = Path(__file__).parent


class ClockTask(ModularAdditionTask):
    """clock-v1 (attention rate 1; checkpoint tasks/clock/clock.safetensors)."""

    checkpoint = HERE / "clock.safetensors"
    neuron_form = "frequency"
    description = (
        "(a + b) mod 59 by a one-layer transformer with learned attention: the clock algorithm "
        "(the correct logit is cos(w_k (a + b - c)), independent of a - b)."
    )
    card = HERE / "README.md"
