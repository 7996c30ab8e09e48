"""One registry type for everything that plugs in (tasks and methods), with one idiom for both:

- registered in this process, by a call or a decorator (``register_task``, ``register_method``);
- registered by an installed package: an entry point in the kind's group whose name is the
  plugin's name and whose value is ``module:Object`` (the object is imported when first used);
- named ``module:Name`` where a name is expected (the kind says what that means: a method
  class, or a task id that importing ``module`` registers).

A name taken by another object is an error unless ``replace=True``; a name two installed packages
claim for different objects is an error when it is looked up (neither silently shadows the other).
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Callable, Generic, TypeVar

from structure_bench.errors import StructureBenchError

T = TypeVar("T")


class Plugins(Generic[T]):
    """The registered plugins of one kind, by name.

    kind : "task" or "method", for messages. group : the entry-point group.
    load : an entry point -> the registered object (e.g. ``EntryPoint.load``).
    spec : an object -> the ``module:Name`` string that imports it (what an entry point's value
        is), which says whether two registrations are the same.
    """

    def __init__(self, kind: str, group: str, load: Callable[[EntryPoint], T], spec: Callable[[T], str]) -> None:
        self.kind, self.group, self._load, self._spec = kind, group, load, spec
        self.local: dict[str, T] = {}
        self._entry_points: dict[str, EntryPoint] | None = None
        self.conflicts: dict[str, list[EntryPoint]] = {}

    def entry_points(self) -> dict[str, EntryPoint]:
        """The installed packages' entry points of the group, by name (read once)."""
        if self._entry_points is None:
            found: dict[str, EntryPoint] = {}
            for ep in entry_points(group=self.group):
                if ep.name in found and found[ep.name].value != ep.value:
                    self.conflicts[ep.name] = [found[ep.name], ep]
                found.setdefault(ep.name, ep)
            self._entry_points = found
        return self._entry_points

    def forget_entry_points(self) -> None:
        """Read the group again at the next lookup (after a ``pip install`` in this process)."""
        self._entry_points = None
        self.conflicts = {}

    def entry_point(self, name: str) -> EntryPoint | None:
        """The entry point named ``name`` (None if none); two packages claiming it is an error."""
        ep = self.entry_points().get(name)
        if name in self.conflicts:
            claims = " and ".join(f"{getattr(e.dist, 'name', '?')} ({e.value})" for e in self.conflicts[name])
            raise StructureBenchError(f"{self.kind} {name!r} is claimed by two installed packages: {claims}; uninstall one")
        return ep

    def add(self, name: str, obj: T, replace: bool = False) -> T:
        """Register ``obj`` under ``name``; a name taken by another object needs ``replace``
        (registering the same object again, or what the entry point of that name names, is not
        a conflict)."""
        taken: object = self.local.get(name)
        if taken is None and name in self.entry_points():
            taken = self.entry_points()[name].value
        if taken is not None and not replace and self._spec_of(taken) != self._spec(obj):
            raise StructureBenchError(
                f"{self.kind} {name!r} is already registered to {self._spec_of(taken)}; pick another name or pass replace=True"
            )
        self.local[name] = obj
        return obj

    def _spec_of(self, taken: object) -> str:
        """The ``module:Name`` of a registered object, or an entry point's value as it is."""
        return taken if isinstance(taken, str) else self._spec(taken)  # type: ignore[arg-type]

    def lookup(self, name: str) -> T | None:
        """The object registered under ``name`` here or by an entry point (loading it), or None."""
        if name in self.local:
            return self.local[name]
        ep = self.entry_point(name)
        if ep is None:
            return None
        try:
            obj = self._load(ep)
        except StructureBenchError as exc:
            raise StructureBenchError(f"installed package {getattr(ep.dist, 'name', '?')} ({ep.value}): {exc}") from None
        self.local.setdefault(name, obj)
        return obj

    def names(self) -> list[str]:
        """Every registered name, sorted (entry points are not loaded)."""
        return sorted(set(self.local) | set(self.entry_points()))

    def suggestion(self, name: str) -> str:
        """"; did you mean 'x'?" for the closest registered name, or ""."""
        close = difflib.get_close_matches(name, self.names(), n=1)
        return f"; did you mean {close[0]!r}?" if close else ""


def object_spec(obj: object) -> str:
    """The ``module:Name`` string that ``import_object`` imports ``obj`` (a class or function) by."""
    return f"{obj.__module__}:{obj.__qualname__}"  # type: ignore[attr-defined]


def import_object(spec: str, what: str) -> object:
    """The object ``module:Name`` names (importing the module); one-line errors name ``what``
    it was for."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StructureBenchError(f"cannot import {module_name!r} for {what} {spec!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise StructureBenchError(f"module {module_name!r} has no attribute {attr!r} ({what} {spec!r})") from None
