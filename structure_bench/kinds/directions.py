"""Directions: a set of true feature directions (data class ``structures.Directions``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from structure_bench.kinds.base import Fit, Kind, Similarity, register_kind
from structure_bench.metrics.directions import RECOVERED_THRESHOLD, abs_cosines, direction_metrics
from structure_bench.structures import Directions, frame_from_arrays, frame_to_arrays

_UNIT_INTERVAL = (0.0, 1.0)


@register_kind
class DirectionsKind(Kind[Directions]):
    """Scored by how well alive latents' decoder rows match the true directions."""

    structure = Directions
    descriptions = {
        "mmcs_truth": "mean over true directions of the best |cos| with an alive latent's decoder row; higher is better",
        "mmcs_learned": "mean over alive latents of the best |cos| with a true direction; higher is better",
        "mcc": "mean |cos| over a Hungarian one-to-one matching of alive latents to true directions, "
        "min(m, n_alive) pairs; higher is better",
        f"recovered@{RECOVERED_THRESHOLD}": f"share of true directions whose matched latent has |cos| >= "
        f"{RECOVERED_THRESHOLD}; higher is better",
        "detector_f1": "F1 of z_l > 0 against the matched feature's coefficient > 0, mean over matched pairs; "
        "higher is better",
    }
    ranges = dict.fromkeys(descriptions, _UNIT_INTERVAL)

    def to_arrays(self, structure: Directions) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, meta = {"vectors": structure.vectors}, {}
        if structure.coefficients is not None:
            arrays["coefficients"] = structure.coefficients
        if structure.labels is not None:
            label_arrays, meta["labels"] = frame_to_arrays("labels", structure.labels)
            arrays.update(label_arrays)
        return arrays, meta

    def from_arrays(self, name: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Directions:
        labels = frame_from_arrays("labels", meta["labels"], arrays) if "labels" in meta else None
        return self.structure(name, arrays["vectors"], arrays.get("coefficients"), labels)

    def map_units(self, structure: Directions, apply: Callable[[np.ndarray], np.ndarray]) -> Directions:
        return replace(structure, vectors=apply(structure.vectors))

    def score(self, structure: Directions, fit: Fit) -> dict[str, float]:
        return direction_metrics(fit.decoder, fit.Z, fit.alive, structure, fit.tolerance)

    def headline(self, structure: Directions) -> list[str]:
        return ["mcc", "mmcs_learned"]

    def oracle_dictionary(self, structure: Directions) -> np.ndarray:
        return structure.vectors

    def similarity(self, structure: Directions, decoder: np.ndarray) -> Similarity:
        """|cos| of each decoder row with each true direction, directions sorted by their labels."""
        order = np.arange(structure.size)
        parts = [str(i) for i in order]
        if structure.labels is not None and len(structure.labels.columns):
            order = np.lexsort(structure.labels.to_numpy().T[::-1])
            parts = [", ".join(f"{c}={v:.3g}" if isinstance(v, float) else f"{c}={v}" for c, v in row.items())
                     for _, row in structure.labels.iloc[order].iterrows()]
        return Similarity(abs_cosines(structure.vectors[order], decoder), parts,
                          "|cos(decoder row, truth)|", f"true direction ({structure.name})")
