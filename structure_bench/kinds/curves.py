"""Curves: where each sample lies on named closed curves, e.g. one circle per key frequency of
modular addition, and whether each latent is a function of its position on one of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from structure_bench.kinds.base import Fit, Kind, register_kind
from structure_bench.metrics.variables import adjusted_eta2, eta2_per_latent


@dataclass(frozen=True)
class Curves:
    """Per-sample points on named curves.

    points : int [n_samples, c], each sample's point on each curve as a level 0, 1, ... (for
        modular addition: psi_k = arg(e^{i w_k a} + e^{i w_k b}) binned into 2p levels).
    labels : one name per curve (e.g. "k=4"); "0", "1", ... when empty.
    scales : [n_samples, c] or None, each sample's scale on each curve (|e^{i w_k a} + e^{i w_k b}|).
    """

    name: str
    points: np.ndarray
    labels: list[str] = field(default_factory=list)
    scales: np.ndarray | None = None
    kind: ClassVar[str] = "curves"

    def __post_init__(self) -> None:
        points = np.asarray(self.points)
        if points.ndim != 2 or not np.issubdtype(points.dtype, np.integer) or np.any(points < 0):
            raise ValueError(f"Curves {self.name!r} points must be non-negative integers [n_samples, c], "
                             f"got {points.dtype} {points.shape}")
        object.__setattr__(self, "points", points.astype(np.int64))
        labels = list(self.labels) or [str(c) for c in range(points.shape[1])]
        if len(labels) != points.shape[1]:
            raise ValueError(f"Curves {self.name!r} has {points.shape[1]} curves but {len(labels)} labels")
        object.__setattr__(self, "labels", labels)
        if self.scales is not None:
            scales = np.asarray(self.scales, dtype=np.float64)
            if scales.shape != points.shape or not np.all(np.isfinite(scales)):
                raise ValueError(f"Curves {self.name!r} scales must be finite, shaped like points {points.shape}")
            object.__setattr__(self, "scales", scales)

    @property
    def size(self) -> int:
        """Number of curves, c."""
        return self.points.shape[1]

    def take(self, idx: np.ndarray) -> Curves:
        scales = None if self.scales is None else self.scales[idx]
        return replace(self, points=self.points[idx], scales=scales)


def curve_eta2(Z: np.ndarray, alive: np.ndarray, points: np.ndarray) -> float:
    """sum_l Var(z_l) max_c eta^2(z_l | point on curve c) / sum_l Var(z_l) over alive latents, with
    eta^2 bias-corrected (``adjusted_eta2``).

    Z : [n_samples, n_latents] codes. alive : bool [n_latents]. points : int [n_samples, c].
    NaN when no alive latent varies.
    """
    Z_alive = np.compress(alive, Z, axis=1)
    variance = Z_alive.var(axis=0)
    varying = variance > 0
    if not varying.any():
        return float("nan")
    Z_varying = np.compress(varying, Z_alive, axis=1)
    eta2 = np.stack([
        adjusted_eta2(eta2_per_latent(Z_varying, points[:, c]), len(points), len(np.unique(points[:, c])))
        for c in range(points.shape[1])
    ])  # [c, L], bias-corrected
    return float(variance[varying] @ eta2.max(axis=0) / variance[varying].sum())


@register_kind
class CurvesKind(Kind[Curves]):
    """Scored by how far each latent is a function of one curve's point; no geometry, no oracle."""

    structure = Curves
    descriptions = {
        "curve_eta2": "per alive latent, the bias-corrected correlation ratio Var(E[z_l | point]) / Var(z_l) against the "
        "point of the curve it follows best, mean over latents weighted by Var(z_l); high means each latent "
        "is a function of its position on one curve",
    }
    ranges = {"curve_eta2": (-np.inf, 1.0)}  # the bias correction can dip below 0 by chance

    def to_arrays(self, structure: Curves) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {"points": structure.points}
        if structure.scales is not None:
            arrays["scales"] = structure.scales
        return arrays, {"labels": list(structure.labels)}

    def from_arrays(self, name: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Curves:
        return Curves(name, arrays["points"], meta["labels"], arrays.get("scales"))

    def score(self, structure: Curves, fit: Fit) -> dict[str, float]:
        return {"curve_eta2": curve_eta2(fit.Z, fit.alive, structure.points)}

    def headline(self, structure: Curves) -> list[str]:
        return ["curve_eta2"]
