"""The clock task: modular addition by a transformer with learned attention. See README.md."""

from structure_bench.registry import register_task
from structure_bench_tasks.clock.task import ClockTask

register_task("clock-v1", entry_point=ClockTask)
