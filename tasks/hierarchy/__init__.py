"""Task folder: hierarchy-v1 (parent/child features: absorption and hedging)."""

from structure_bench.registry import register_task
from structure_bench_tasks.hierarchy.task import HierarchyTask

register_task("hierarchy-v1", entry_point=HierarchyTask)
