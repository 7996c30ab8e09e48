"""The pizza tasks: a trained constant-attention transformer (pizza-v1) and the analytic pizza
(pizza-ideal-v1) for (a + b) mod 59. See README.md."""

from structure_bench.registry import register_task
from structure_bench_tasks.pizza.ideal import IdealPizzaTask
from structure_bench_tasks.pizza.task import PizzaTask

register_task("pizza-v1", entry_point=PizzaTask)
register_task("pizza-ideal-v1", entry_point=IdealPizzaTask)
