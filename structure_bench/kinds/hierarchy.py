"""Hierarchy: feature directions in a parent/child tree, scored for absorption and hedging too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from structure_bench.kinds.base import Fit, register_kind
from structure_bench.kinds.directions import DirectionsKind
from structure_bench.metrics.hierarchy import hierarchy_metrics
from structure_bench.structures import Directions

_UNIT_INTERVAL = (0.0, 1.0)


@dataclass(frozen=True)
class Hierarchy(Directions):
    """Directions whose ``labels`` carry a ``parent`` column: the index of each feature's parent
    feature, -1 for roots. Built like ``Directions(name, vectors, coefficients, labels)``; the
    coefficients [n_samples, m] say when each feature is on (absorption needs them).
    """

    kind: ClassVar[str] = "hierarchy"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.labels is None or "parent" not in self.labels.columns:
            raise ValueError(f"Hierarchy {self.name!r} needs labels with a 'parent' column")
        parents = self.labels["parent"].to_numpy()
        if not np.issubdtype(parents.dtype, np.integer) or np.any((parents < -1) | (parents >= self.size)):
            raise ValueError(f"Hierarchy {self.name!r}: parent must be a feature index or -1, got {parents}")
        if np.any(parents == np.arange(self.size)):
            raise ValueError(f"Hierarchy {self.name!r}: a feature is its own parent")


@register_kind
class HierarchyKind(DirectionsKind):
    """Directions' metrics, plus how matched latents of parents and children share the work
    (``metrics.hierarchy``)."""

    structure = Hierarchy
    descriptions = DirectionsKind.descriptions | {
        "absorption_rate": "over every (parent, child) pair and sample where both are on, the share where the "
        "child's matched latent fires and the parent's does not; lower is better",
        "absorption_free": "1 - absorption_rate; higher is better",
        "hedging": "mean over parents with a matched latent of the share of its unit decoder row in the span of "
        "its children's directions less their part along the parent; lower is better",
    }
    ranges = DirectionsKind.ranges | dict.fromkeys(("absorption_rate", "absorption_free", "hedging"), _UNIT_INTERVAL)

    def reference_form(
        self, arrays: dict[str, np.ndarray], meta: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Summarised as the directions it extends (the parent column is among their labels):
        hierarchies were pinned as such, and their identities stay."""
        return arrays, {**meta, "kind": DirectionsKind.structure.kind}

    def score(self, structure: Hierarchy, fit: Fit) -> dict[str, float]:
        return super().score(structure, fit) | hierarchy_metrics(fit.decoder, fit.Z, structure)
