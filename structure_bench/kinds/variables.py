"""Variables: per-sample variables a latent may respond to (data class ``structures.Variables``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from structure_bench.kinds.base import Fit, Kind, register_kind
from structure_bench.metrics.variables import N_BINS, variable_metrics
from structure_bench.structures import Variables, frame_from_arrays, frame_to_arrays


@register_kind
class VariablesKind(Kind[Variables]):
    """Scored by how much of each latent's variance each variable explains; no geometry."""

    structure = Variables
    descriptions = {
        "eta2_<variable>": "correlation ratio Var(E[z_l | V]) / Var(z_l), bias-corrected (epsilon^2: about 0 when "
        "the codes ignore V, at any number of levels), mean over alive latents weighted by Var(z_l); continuous and "
        f"circular V in {N_BINS} equal bins; high means latents are functions of V",
    }
    # Every eta2_<variable> (``metric_range``); the bias correction can dip below 0 by chance.
    ranges = {"eta2": (-np.inf, 1.0)}

    def to_arrays(self, structure: Variables) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, columns = frame_to_arrays("values", structure.values)
        return arrays, {"columns": columns, "kinds": dict(structure.kinds)}

    def from_arrays(self, name: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Variables:
        return Variables(name, frame_from_arrays("values", meta["columns"], arrays), meta["kinds"])

    def score(self, structure: Variables, fit: Fit) -> dict[str, float]:
        return variable_metrics(fit.Z, fit.alive, structure)

    def headline(self, structure: Variables) -> list[str]:
        return [f"eta2_{v}" for v in structure.values.columns]

    def describe(self, structure: Variables) -> str:
        return structure.kind
