"""What every kind of ground-truth structure provides, and the registry that finds a structure's kind.

A kind is a subclass of ``Kind`` for one data class (its ``structure``), registered with
``@register_kind`` under that class's ``kind`` string. Everything in the benchmark that depends on
the kind of a structure asks ``kind_of(structure)`` (or ``kind_named(tag)`` for a stored one):

========================  ==================================================================
``to_arrays``             its storable form: named arrays and a JSON-able meta (``cache``)
``from_arrays``           the structure back from that form (``cache``)
``reference_form``        what its share of the task's identity summarises (``identity``)
``map_units``             the structure after an orthogonal map of the units (``hidden``)
``score``                 its metrics for one method's output (``metrics.evaluate``)
``descriptions``          a one-line definition of each of those metrics
``ranges``                the values each metric can take (``metrics.metric_range``)
``headline``              the metrics the summary's profile shows for it (``summary``)
``oracle_dictionary``     the decoder rows the ``oracle`` method uses, or None (``baselines``)
``similarity``            latents against its parts, for the report's heatmap, or None (``report``)
``describe``              what ``structure-bench tasks`` says of it (``cli``)
========================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from structure_bench.metrics.reconstruction import firing_mask, firing_tolerance
from structure_bench.structures import Structure

S = TypeVar("S", bound=Structure)


@dataclass(frozen=True)
class Fit:
    """One method's output on the test split, as every kind's ``score`` reads it (float64 arrays).

    X : [n, d] activations. Z : [n, n_latents] codes. X_hat : [n, d] reconstructions.
    decoder : [n_latents, d] raw rows. decoder_bias : [d].
    """

    X: np.ndarray
    Z: np.ndarray
    X_hat: np.ndarray
    decoder: np.ndarray
    decoder_bias: np.ndarray

    def __post_init__(self) -> None:
        for name in ("X", "Z", "X_hat", "decoder", "decoder_bias"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))

    @cached_property
    def tolerance(self) -> float:
        """The |z| above which a latent counts as firing (``firing_tolerance``)."""
        return firing_tolerance(self.Z)

    @cached_property
    def fires(self) -> np.ndarray:
        """Which latents fire on which samples: bool [n, n_latents]."""
        return firing_mask(self.Z)

    @cached_property
    def alive(self) -> np.ndarray:
        """Latents that fire on some sample: bool [n_latents]."""
        return self.fires.any(axis=0)


@dataclass(frozen=True)
class Similarity:
    """Latents against the parts of a structure, for the report's heatmap.

    values : [n_parts, n_latents] in [0, 1]; parts : one label per row; value_label : what a value
    is; parts_axis : what a row is.
    """

    values: np.ndarray
    parts: Sequence[str]
    value_label: str
    parts_axis: str


class Kind(Generic[S]):
    """How the benchmark handles structures of one data class ``structure`` (module docstring).

    ``to_arrays``, ``from_arrays``, ``score`` and ``headline`` are required; the rest have defaults
    for a kind without geometry (no dictionary, no heatmap, unchanged by a map of the units).
    """

    structure: ClassVar[type]
    # metric name (``<label>`` or ``<variable>`` standing for a part's name) -> one-line definition
    descriptions: ClassVar[Mapping[str, str]] = {}
    # metric base name (less any ``[label]``) -> (lowest, highest) value it can take
    ranges: ClassVar[Mapping[str, tuple[float, float]]] = {}

    def to_arrays(self, structure: S) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Named arrays (names relative to the structure, e.g. ``vectors``) and a JSON-able meta
        (without the ``kind`` key, which the cache adds) that ``from_arrays`` rebuilds it from."""
        raise NotImplementedError

    def from_arrays(self, name: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> S:
        """The structure ``name`` from ``to_arrays``' arrays and meta (with its ``kind`` key)."""
        raise NotImplementedError

    def reference_form(
        self, arrays: dict[str, np.ndarray], meta: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The arrays and meta the task's identity summarises (``structure_bench.identity``):
        by default the stored ones; a kind overrides it to leave out what is arbitrary."""
        return arrays, meta

    def map_units(self, structure: S, apply: Callable[[np.ndarray], np.ndarray]) -> S:
        """The structure after the units are mapped by the orthogonal ``apply`` ([..., d] -> [..., d])."""
        return structure

    def score(self, structure: S, fit: Fit) -> dict[str, float]:
        """Every metric of ``fit`` against the structure (per-sample arrays of the fit's samples),
        by names without the structure's prefix; NaN where undefined."""
        raise NotImplementedError

    def headline(self, structure: S) -> list[str]:
        """The metrics that say what the latents align with, for the summary's profile."""
        raise NotImplementedError

    def oracle_dictionary(self, structure: S) -> np.ndarray | None:
        """The ``oracle`` method's decoder rows [size, d] for this truth, or None when it has none."""
        return None

    def similarity(self, structure: S, decoder: np.ndarray) -> Similarity | None:
        """Latents (decoder [n_latents, d] raw rows) against the structure's parts, or None."""
        return None

    def describe(self, structure: S) -> str:
        """A few words for the task list, e.g. ``directions, 64``."""
        return f"{structure.kind}, {structure.size}"


_KINDS: dict[str, Kind] = {}
K = TypeVar("K", bound=type[Kind])


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_kind(cls: K) -> K:
    """Class decorator: make ``cls()`` the kind of every structure whose ``kind`` is ``cls.structure.kind``."""
    tag = cls.structure.kind
    if tag in _KINDS and _qualified(type(_KINDS[tag])) != _qualified(cls):  # a reloaded module may register again
        raise ValueError(f"structure kind {tag!r} is registered twice: {_qualified(type(_KINDS[tag]))} and {_qualified(cls)}")
    _KINDS[tag] = cls()
    return cls


def kind_named(tag: str) -> Kind:
    """The kind registered under ``tag`` (a structure's ``kind``, as the cache stores it)."""
    try:
        return _KINDS[tag]
    except KeyError:
        raise ValueError(f"no structure kind {tag!r}; known: {', '.join(sorted(_KINDS))}") from None


def kind_of(structure: Structure) -> Kind:
    """The kind of ``structure``."""
    tag = getattr(type(structure), "kind", None)
    if tag not in _KINDS:
        raise TypeError(f"structure {getattr(structure, 'name', structure)!r} is a {type(structure).__name__}, "
                        "not a registered structure kind")
    return _KINDS[tag]


def registered_kinds() -> list[Kind]:
    """Every registered kind, in the order of their tags."""
    return [_KINDS[tag] for tag in sorted(_KINDS)]


def metric_descriptions() -> dict[str, str]:
    """metric name -> definition, for the metrics of every registered kind."""
    return {name: text for kind in registered_kinds() for name, text in kind.descriptions.items()}


def metric_ranges() -> dict[str, tuple[float, float]]:
    """metric base name -> (lowest, highest) value, for the metrics of every registered kind."""
    return {name: bounds for kind in registered_kinds() for name, bounds in kind.ranges.items()}
