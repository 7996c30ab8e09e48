"""Task folder: manifold-v1 (a continuous 1-D feature on a curve)."""

from structure_bench.registry import register_task
from structure_bench_tasks.manifold.task import ManifoldTask

register_task("manifold-v1", entry_point=ManifoldTask)
