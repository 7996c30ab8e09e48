"""The method registry: a decorator, a package entry point, or a ``module:Class`` string.

Built-in baselines register through the ``structure_bench.methods`` entry-point group, exactly as
an outside package does after ``pip install``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from importlib.metadata import entry_points
from typing import Any, Callable, TypeVar

import pandas as pd

from structure_bench.errors import StructureBenchError, UnknownMethodError

METHOD_ENTRY_POINT_GROUP = "structure_bench.methods"
_METHODS: dict[str, type] = {}
_entry_points: dict[str, Any] | None = None

T = TypeVar("T", bound=type)


def register_method(name: str) -> Callable[[T], T]:
    """Class decorator: ``@register_method("my-sae")`` makes the class runnable by that name."""

    def decorate(cls: T) -> T:
        if name in _METHODS and _METHODS[name] is not cls:
            raise StructureBenchError(f"method {name!r} is already registered to {_METHODS[name].__qualname__}")
        _METHODS[name] = cls
        cls.method_name = name
        return cls

    return decorate


def _plugin_entry_points() -> dict[str, Any]:
    global _entry_points
    if _entry_points is None:
        _entry_points = {ep.name: ep for ep in entry_points(group=METHOD_ENTRY_POINT_GROUP)}
    return _entry_points


def _import_spec(spec: str) -> type:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownMethodError(f"cannot import {module_name!r} for method {spec!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownMethodError(f"module {module_name!r} has no attribute {attr!r} (method {spec!r})") from None


def get_method(spec: str) -> type:
    """The method class for a registered name, an entry-point name, or a ``module:Class`` string."""
    if ":" in spec:
        return _import_spec(spec)
    if spec in _METHODS:
        return _METHODS[spec]
    plugins = _plugin_entry_points()
    if spec in plugins:
        cls = plugins[spec].load()
        _METHODS.setdefault(spec, cls)
        return cls
    known = sorted(set(_METHODS) | set(plugins))
    close = difflib.get_close_matches(spec, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownMethodError(f"unknown method {spec!r}{hint} (see `structure-bench methods`)")


def method_import_spec(cls: type) -> str:
    """The ``module:Class`` string that re-imports ``cls``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def method_parameters(cls: type) -> dict[str, Any]:
    """Constructor parameters and their defaults (``inspect.Parameter.empty`` when required)."""
    params = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in params.items() if name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD}


def list_methods() -> pd.DataFrame:
    """Every registered method: name, import spec, and constructor parameters."""
    names = sorted(set(_METHODS) | set(_plugin_entry_points()))
    rows = []
    for name in names:
        cls = get_method(name)
        params = method_parameters(cls)
        rows.append(
            {
                "name": name,
                "class": method_import_spec(cls),
                "parameters": ", ".join(
                    p if d is inspect.Parameter.empty else f"{p}={d!r}" for p, d in params.items()
                ),
                "summary": (inspect.getdoc(cls) or "").split("\n")[0],
            }
        )
    return pd.DataFrame(rows, columns=["name", "class", "parameters", "summary"])
