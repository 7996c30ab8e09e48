"""structure_bench: what do dictionary learners find in networks whose structure we know?

>>> import structure_bench as sb
>>> task = sb.make("pizza-v1")
>>> X = task.activations("hidden", split="train")   # float32 [n_train, d]
"""

from structure_bench.checks import check_task
from structure_bench.errors import MethodError, StructureBenchError, UnknownMethodError, UnknownTaskError
from structure_bench.kinds.hierarchy import Hierarchy
from structure_bench.methods import Method, check_method, get_method, list_methods, register_method
from structure_bench.registry import default_suite, list_tasks, make, register_task
from structure_bench.results import load_results
from structure_bench.structures import Directions, Subspaces, Variables
from structure_bench.task import Cell, Task, TaskArrays, TaskMetadata
from structure_bench.unit import evaluate
from structure_bench.version import __version__

__all__ = [
    "__version__",
    "Cell",
    "Directions",
    "Hierarchy",
    "Method",
    "MethodError",
    "StructureBenchError",
    "Subspaces",
    "Task",
    "TaskArrays",
    "TaskMetadata",
    "UnknownMethodError",
    "UnknownTaskError",
    "Variables",
    "check_method",
    "check_task",
    "default_suite",
    "evaluate",
    "get_method",
    "list_methods",
    "list_tasks",
    "load_results",
    "make",
    "register_method",
    "register_task",
]
