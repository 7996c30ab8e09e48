"""The kinds of ground-truth structure: one module each, every one registered on import.

A kind's module holds all the benchmark does with structures of that kind (``base.Kind``): its
storage, its share of the task's identity, its metrics and their definitions, its profile columns,
the oracle's dictionary and the report's heatmap. Adding a kind is adding a module here.
"""

import importlib
import pkgutil

from structure_bench.kinds.base import (
    Fit,
    Kind,
    Similarity,
    kind_named,
    kind_of,
    metric_descriptions,
    metric_ranges,
    register_kind,
    registered_kinds,
)

# Every module of this package defines a kind: importing them all registers each built-in kind.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "Fit",
    "Kind",
    "Similarity",
    "kind_named",
    "kind_of",
    "metric_descriptions",
    "metric_ranges",
    "register_kind",
    "registered_kinds",
]
