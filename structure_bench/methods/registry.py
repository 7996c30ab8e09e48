"""The method registry: a decorator, a package entry point, or a ``module:Class`` string.

Built-in baselines register through the ``structure_bench.methods`` entry-point group, exactly as
an outside package does after ``pip install``.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import typing
from importlib.metadata import packages_distributions, version
from pathlib import Path
from typing import Any, Callable, TypeVar

import pandas as pd

from structure_bench.errors import StructureBenchError, UnknownMethodError
from structure_bench.plugins import Plugins, import_object, object_spec

METHOD_ENTRY_POINT_GROUP = "structure_bench.methods"
T = TypeVar("T", bound=type)


def method_import_spec(cls: type) -> str:
    """The ``module:Class`` string that re-imports ``cls``."""
    return object_spec(cls)


# Methods by name: registered here (the decorator) or by installed packages' entry points.
METHODS: Plugins[type] = Plugins("method", METHOD_ENTRY_POINT_GROUP, load=lambda ep: ep.load(), spec=method_import_spec)


def register_method(name: str, replace: bool = False) -> Callable[[T], T]:
    """Class decorator: ``@register_method("my-sae")`` makes the class runnable by that name.

    A name that is taken (registered here or by an installed package's entry point, the
    built-in baselines included) is an error unless ``replace=True``.
    """

    def decorate(cls: T) -> T:
        return METHODS.add(name, cls, replace=replace)

    return decorate


def registered_method(name: str) -> type | None:
    """The class registered under ``name`` in this process or by an installed package's entry
    point (loading it), or None; imports nothing a ``module:Class`` string names."""
    return METHODS.lookup(name)


def get_method(spec: str) -> type:
    """The method class for a registered name, an entry-point name, or a ``module:Class`` string."""
    if ":" in spec:
        try:
            return import_object(spec, "method")  # type: ignore[return-value]
        except StructureBenchError as exc:
            raise UnknownMethodError(str(exc)) from None
    cls = registered_method(spec)
    if cls is not None:
        return cls
    raise UnknownMethodError(f"unknown method {spec!r}{METHODS.suggestion(spec)} (see `structure-bench methods`)")


def method_source(cls: type) -> str:
    """A digest of a method's code, which resume compares to recompute records of changed code.

    ``sha256:<hex>`` over the source files of the class and of its bases from the same top-level
    package or from structure_bench (an SAE variant's shared training loop is in its base class;
    third-party bases such as scikit-learn's are left out); ``dist:<name>==<version>`` for a class
    with no source file from an installed distribution; ``unknown`` otherwise (a notebook class).
    """
    package = cls.__module__.partition(".")[0]
    digest, found = hashlib.sha256(), False
    seen: set[str] = set()
    for base in cls.__mro__:
        if base.__module__.partition(".")[0] not in (package, "structure_bench"):
            continue
        try:
            path = inspect.getsourcefile(base)
        except TypeError:  # a built-in or a class defined where there is no file
            path = None
        if path is None or path in seen or not Path(path).is_file():
            continue
        seen.add(path)
        digest.update(Path(path).read_bytes())
        found = True
    if found:
        return f"sha256:{digest.hexdigest()}"
    distributions = packages_distributions().get(package, [])
    if distributions:
        return f"dist:{distributions[0]}=={version(distributions[0])}"
    return "unknown"


def method_parameters(cls: type) -> dict[str, Any]:
    """Constructor parameters and their defaults (``inspect.Parameter.empty`` when required)."""
    params = inspect.signature(cls.__init__).parameters
    return {name: p.default for name, p in params.items() if name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD}


def extended_signature(own: Callable, base: Callable) -> inspect.Signature:
    """The signature of a constructor ``own`` that passes ``**kwargs`` on to ``base``: its own
    parameters, then those of ``base`` it does not name, with their defaults. Set it as
    ``__init__.__signature__`` so the registry lists, checks and records them all, and a subclass
    adding a parameter does not repeat (and drift from) its base's defaults."""
    mine = [p for p in inspect.signature(own).parameters.values() if p.kind is not p.VAR_KEYWORD]
    named = {p.name for p in mine}
    inherited = [p for p in inspect.signature(base).parameters.values() if p.name not in named and p.kind is p.POSITIONAL_OR_KEYWORD]
    return inspect.Signature(mine + inherited)


# Every cell sets these; a method's own parameters cannot.
CELL_PARAMETERS = ("n_latents", "l0_target", "seed")


def check_params(cls: type, params: dict[str, Any], name: str) -> None:
    """Raise a one-line StructureBenchError unless every entry of ``params`` is a constructor
    parameter of ``cls`` (other than the cell's ``CELL_PARAMETERS``) with a value of its type.

    The type is the annotation where it is a ``Literal`` (the value must be one of its choices),
    else that of the default: a bool default takes only bools, an int default only integers, a
    float default any number, a str default only strings; a None or missing default takes anything.
    A constructor with ``**kwargs`` accepts any other name.
    """
    signature = inspect.signature(cls.__init__)
    known = method_parameters(cls)
    open_ended = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # an annotation that does not resolve here says nothing about the value
        hints = {}
    for key, value in params.items():
        if key in CELL_PARAMETERS:
            raise StructureBenchError(
                f"parameter {key!r} of {name} is set by each cell, not by a parameter: "
                "choose cells with --cells NxK or --widths/--l0 (plan(cells=...))"
            )
        if key not in known:
            if open_ended:
                continue
            choices = [k for k in known if k not in CELL_PARAMETERS]
            close = difflib.get_close_matches(key, choices, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise StructureBenchError(
                f"{name} has no parameter {key!r}; {hint}its parameters: {', '.join(choices) or '(none)'}"
            )
        problem = _type_problem(value, known[key], hints.get(key))
        if problem:
            raise StructureBenchError(f"parameter {key!r} of {name}: {problem} (got {value!r})")


def _type_problem(value: Any, default: Any, annotation: Any) -> str | None:
    """What is wrong with ``value`` for a parameter with this default and annotation, or None."""
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        return None if value in choices else f"expected one of {', '.join(map(repr, choices))}"
    if default is inspect.Parameter.empty or default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "expected an integer"
    if isinstance(default, float):
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "expected a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "expected a string"
    return None


def calibration_role(spec: str) -> str | None:
    """The calibration role ("oracle", "random") the method ``spec`` declares, or None (also when
    it cannot be imported here: a record's method that is gone calibrates nothing)."""
    try:
        return getattr(get_method(spec), "calibration_role", None)
    except StructureBenchError:
        return None


def calibration_methods() -> dict[str, str]:
    """Role -> the registered method that declares it (a role claimed twice is an error)."""
    found: dict[str, str] = {}
    for name in METHODS.names():
        role = calibration_role(name)
        if role is None or found.get(role) == name:
            continue
        if role in found and get_method(found[role]) is not get_method(name):
            raise StructureBenchError(f"two registered methods declare the calibration role {role!r}: {found[role]} and {name}")
        found.setdefault(role, name)
    return found


BUILTIN_METHOD_PACKAGE = "structure_bench_baselines"


def builtin_methods() -> list[str]:
    """The built-in baselines: every registered method whose class ships in ``baselines/``."""
    methods = list_methods()
    return list(methods.loc[methods["class"].str.startswith(BUILTIN_METHOD_PACKAGE), "name"])


def list_methods() -> pd.DataFrame:
    """Every registered method: name, import spec, and constructor parameters."""
    names = METHODS.names()
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
