"""The task registry, in the style of Gymnasium: versioned ids, ``register_task`` and ``make``.

Built-in tasks register through the same entry-point group an outside package would use
(``structure_bench.tasks``): each entry point names a module whose import calls ``register_task``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

from structure_bench.errors import StructureBenchError, UnknownTaskError
from structure_bench.task import Task, parse_task_id

TASK_ENTRY_POINT_GROUP = "structure_bench.tasks"


@dataclass(frozen=True)
class TaskSpec:
    """A registration: the id, what builds it, and the keyword arguments it is built with."""

    id: str
    entry_point: str | Callable[..., Task]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return parse_task_id(self.id)[1]

    @property
    def version(self) -> int:
        return parse_task_id(self.id)[2]

    def build(self, **overrides: Any) -> Task:
        factory = self.entry_point
        if isinstance(factory, str):
            module_name, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module_name), attr)
        return factory(id=self.id, **{**self.kwargs, **overrides})


_REGISTRY: dict[str, TaskSpec] = {}
_plugins_loaded = False


def register_task(id: str, entry_point: str | Callable[..., Task], replace: bool = False, **kwargs: Any) -> TaskSpec:
    """Register a task under a versioned id.

    entry_point : a ``Task`` subclass (or factory) or its ``"module:attr"`` path; it is called as
        ``entry_point(id=id, **kwargs)``.
    replace : allow replacing a task already registered under ``id`` (built-in and installed
        packages' tasks included); without it, that is an error.
    """
    parse_task_id(id)
    _load_plugins()  # so that a built-in or installed task's id counts as taken
    if id in _REGISTRY and not replace:
        raise StructureBenchError(f"task {id!r} is already registered; pick another id or pass replace=True")
    spec = TaskSpec(id, entry_point, dict(kwargs))
    _REGISTRY[id] = spec
    return spec


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=TASK_ENTRY_POINT_GROUP):
        try:
            ep.load()
        except StructureBenchError as exc:
            raise StructureBenchError(f"installed package {getattr(ep.dist, 'name', '?')} ({ep.value}): {exc}") from None


def registry() -> dict[str, TaskSpec]:
    """All registered task specs, built-in and plugin, by id."""
    _load_plugins()
    return dict(_REGISTRY)


def spec(task_id: str) -> TaskSpec:
    """The registration of ``task_id``; unknown ids and versions get a one-line error."""
    try:
        module, name, version = parse_task_id(task_id)
    except StructureBenchError as exc:
        raise StructureBenchError(f"{exc}{_suggestion(task_id, list(registry()))}") from None
    if module:
        importlib.import_module(module)
        task_id = task_id.split(":", 1)[1]
    specs = registry()
    if task_id in specs:
        return specs[task_id]
    versions = sorted(s.version for s in specs.values() if s.name == name)
    if versions:
        listed = ", ".join(f"{name}-v{v}" for v in versions)
        raise UnknownTaskError(f"task {name!r} has no version v{version}; registered: {listed}")
    raise UnknownTaskError(f"unknown task {task_id!r}{_suggestion(task_id, list(specs))} (see `structure-bench tasks`)")


def _suggestion(task_id: str, known: list[str]) -> str:
    close = difflib.get_close_matches(task_id, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


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
