"""Subspaces: true subspaces given by orthonormal bases (data class ``structures.Subspaces``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from structure_bench.kinds.base import Fit, Kind, Similarity, register_kind
from structure_bench.metrics.subspaces import subspace_metrics, subspace_shares
from structure_bench.structures import Subspaces

_UNIT_INTERVAL = (0.0, 1.0)


@register_kind
class SubspacesKind(Kind[Subspaces]):
    """Scored by how purely latents lie in one subspace and how well they rebuild each."""

    structure = Subspaces
    descriptions = {
        "purity": "mean over alive latents, weighted by total |activation|, of max_g ||B_g d_l||^2 (unit d_l); "
        "higher is better",
        "coverage": "mean over subspaces g of coverage[g]; higher is better",
        "coverage[<label>]": "max(0, 1 - ||Y_g - Yhat_g||^2 / ||Y_g - mean Y_g||^2), Yhat_g rebuilt by the latents "
        "whose best subspace is g plus the projected decoder bias; higher is better",
        "subspace_f": "harmonic mean of purity and coverage; higher is better",
    }
    ranges = dict.fromkeys(("purity", "coverage", "subspace_f"), _UNIT_INTERVAL)

    def to_arrays(self, structure: Subspaces) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"basis/{g}": basis for g, basis in enumerate(structure.bases)}
        if structure.membership is not None:
            arrays["membership"] = structure.membership
        return arrays, {"labels": list(structure.labels)}

    def from_arrays(self, name: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Subspaces:
        bases = [arrays[f"basis/{g}"] for g in range(len(meta["labels"]))]
        return Subspaces(name, bases, meta["labels"], arrays.get("membership"))

    def reference_form(
        self, arrays: dict[str, np.ndarray], meta: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Each basis B [r, d] as its projector ``projector/g`` = B^T B [d, d]: a basis is defined
        only up to a rotation within its subspace, which differs between LAPACK kernels."""
        reference = {key: value for key, value in arrays.items() if not key.startswith("basis/")}
        for g in range(len(meta["labels"])):
            basis = arrays[f"basis/{g}"]
            reference[f"projector/{g}"] = basis.T @ basis
        return reference, meta

    def map_units(self, structure: Subspaces, apply: Callable[[np.ndarray], np.ndarray]) -> Subspaces:
        return replace(structure, bases=[apply(b) for b in structure.bases])

    def score(self, structure: Subspaces, fit: Fit) -> dict[str, float]:
        return subspace_metrics(fit.X, fit.Z, fit.decoder, fit.decoder_bias, fit.alive, structure)

    def headline(self, structure: Subspaces) -> list[str]:
        return ["purity", "coverage", "subspace_f"]

    def oracle_dictionary(self, structure: Subspaces) -> np.ndarray:
        return np.vstack(structure.bases)

    def similarity(self, structure: Subspaces, decoder: np.ndarray) -> Similarity:
        """The share ||B_g d||^2 of each unit decoder row in each true subspace."""
        return Similarity(subspace_shares(decoder, structure).T, structure.labels,
                          "share in subspace, ||B_g d||^2", f"true subspace ({structure.name})")
