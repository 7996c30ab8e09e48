"""Task folder: circles-v1 (circular 2-D features mixed with linear features)."""

from structure_bench.registry import register_task
from structure_bench_tasks.circles.task import CirclesTask

register_task("circles-v1", entry_point=CirclesTask)
