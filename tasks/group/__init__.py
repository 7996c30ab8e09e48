"""group-v1: S4 composition by a trained MLP (Chughtai et al. 2023), with its checkpoint shipped."""

from structure_bench.registry import register_task
from structure_bench_tasks.group.task import GroupCompositionTask

register_task("group-v1", entry_point=GroupCompositionTask)
