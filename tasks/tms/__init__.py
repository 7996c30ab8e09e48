"""tms-v1: the toy model of superposition (Elhage et al. 2022), trained, with its checkpoint shipped."""

from structure_bench.registry import register_task
from structure_bench_tasks.tms.task import ToyModelOfSuperpositionTask

register_task("tms-v1", entry_point=ToyModelOfSuperpositionTask)
