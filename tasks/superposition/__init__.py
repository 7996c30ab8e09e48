"""Task folder: superposition-v1 (sparse features in superposition; the positive control)."""

from structure_bench.registry import register_task
from structure_bench_tasks.superposition.task import SuperpositionTask

register_task("superposition-v1", entry_point=SuperpositionTask)
