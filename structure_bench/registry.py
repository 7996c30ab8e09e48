"""The task registry, in the style of Gymnasium: versioned ids, ``register_task`` and ``make``.

Tasks plug in the way methods do (``structure_bench.plugins``): ``register_task`` (a call or a
decorator), an installed package's entry point in the group ``structure_bench.tasks`` whose name
is the task id and whose value is the ``module:Class`` that builds it (imported when the task is
first built), or ``module:task-id``, which imports ``module`` (that registers the id) first. The
built-in tasks are entry points of this package, exactly as an outside package's would be.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint
from typing import Any, Callable

from structure_bench.errors import StructureBenchError, UnknownTaskError
from structure_bench.plugins import Plugins, import_object, object_spec
from structure_bench.task import Task, VersionedId, parse_task_id

TASK_ENTRY_POINT_GROUP = "structure_bench.tasks"


@dataclass(frozen=True)
class TaskSpec(VersionedId):
    """A registration: the id, what builds it, and the keyword arguments it is built with."""

    id: str
    entry_point: str | Callable[..., Task]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def import_spec(self) -> str:
        """``module:Class`` of what builds it, with its kwargs when it has any."""
        factory = self.entry_point
        spec = factory if isinstance(factory, str) else object_spec(factory)
        return f"{spec}({self.kwargs})" if self.kwargs else spec

    @property
    def superseded_by(self) -> str | None:
        """The declared successor of the task (``TaskMetadata.superseded_by``), importing its class
        but building nothing; None for a factory that declares no metadata."""
        factory = self.entry_point
        if isinstance(factory, str):
            factory = import_object(factory, f"task {self.id!r}")  # type: ignore[assignment]
        metadata = getattr(factory, "metadata", None)
        return getattr(metadata, "superseded_by", None)

    def build(self, **overrides: Any) -> Task:
        factory = self.entry_point
        if isinstance(factory, str):
            factory = import_object(factory, f"task {self.id!r}")  # type: ignore[assignment]
        return factory(id=self.id, **{**self.kwargs, **overrides})  # type: ignore[operator]


def _from_entry_point(ep: EntryPoint) -> TaskSpec:
    parse_task_id(ep.name)  # an entry point's name is the task id
    return TaskSpec(ep.name, ep.value)


# Tasks by id: registered here or by installed packages' entry points.
TASKS: Plugins[TaskSpec] = Plugins("task", TASK_ENTRY_POINT_GROUP, load=_from_entry_point, spec=lambda s: s.import_spec)


def register_task(
    id: str, entry_point: str | Callable[..., Task] | None = None, replace: bool = False, **kwargs: Any
) -> Any:
    """Register a task under a versioned id; without ``entry_point``, a class decorator
    (``@register_task("mytask-v1")``).

    entry_point : a ``Task`` subclass (or factory) or its ``"module:attr"`` path; it is called as
        ``entry_point(id=id, **kwargs)``.
    replace : allow replacing a task already registered under ``id`` (built-in and installed
        packages' tasks included); without it, another registration of the id is an error.
    """
    parse_task_id(id)
    if entry_point is None:
        def decorate(cls: type[Task]) -> type[Task]:
            register_task(id, cls, replace, **kwargs)
            return cls

        return decorate
    return TASKS.add(id, TaskSpec(id, entry_point, dict(kwargs)), replace=replace)


def registry() -> dict[str, TaskSpec]:
    """All registered task specs, built-in and plugin, by id (nothing is imported)."""
    return {task_id: TASKS.lookup(task_id) for task_id in TASKS.names()}  # type: ignore[misc]


def spec(task_id: str) -> TaskSpec:
    """The registration of ``task_id``; unknown ids and versions get a one-line error."""
    try:
        module, name, version = parse_task_id(task_id)
    except StructureBenchError as exc:
        raise StructureBenchError(f"{exc}{TASKS.suggestion(task_id)}") from None
    if module:
        importlib.import_module(module)
        task_id = task_id.split(":", 1)[1]
    found = TASKS.lookup(task_id)
    if found is not None:
        return found
    versions = sorted(s.version for s in registry().values() if s.name == name)
    if versions:
        listed = ", ".join(f"{name}-v{v}" for v in versions)
        raise UnknownTaskError(f"task {name!r} has no version v{version}; registered: {listed}")
    raise UnknownTaskError(f"unknown task {task_id!r}{TASKS.suggestion(task_id)} (see `structure-bench tasks`)")


def make(task_id: str, **kwargs: Any) -> Task:
    """Build the task ``task_id`` (e.g. ``"pizza-v1"``); keyword arguments override its defaults."""
    return spec(task_id).build(**kwargs)


@functools.lru_cache(maxsize=None)
def load_task(task_id: str) -> Task:
    """``make(task_id)``, built once per process and shared by everything that uses it (the units
    of a sweep, the summary, the report, the leaderboard)."""
    return make(task_id)


def list_tasks() -> list[str]:
    """Registered task ids, sorted."""
    return sorted(registry())


def default_suite() -> list[str]:
    """The default suite: every registered task that no newer version supersedes, sorted. A
    superseded task (``TaskMetadata.superseded_by``) stays registered and runs when named."""
    return [task_id for task_id in list_tasks() if spec(task_id).superseded_by is None]
