"""Ground-truth structures of a modular-addition network (SPEC sections 4-5), shared by the
trained pizza, the ideal pizza and the clock.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from structure_bench.structures import Directions, Structure, Subspaces, Variables
from structure_bench_tasks.pizza.fourier import angular_frequency, frequency_planes


def inputs_table(p: int) -> pd.DataFrame:
    """a, b, c = (a + b) % p, d = (a - b) % p for every pair, row-major in (a, b)."""
    a, b = np.divmod(np.arange(p * p), p)
    return pd.DataFrame({"a": a, "b": b, "c": (a + b) % p, "d": (a - b) % p})


def curve_point(p: int, k: int) -> np.ndarray:
    """Per pair (row-major (a, b)), the point psi_k = arg(e^{i w_k a} + e^{i w_k b}) of frequency k's
    activation curve as an integer m in [0, 2p): psi_k = m pi / p (the sum never vanishes for p odd).
    Each point fixes c = (a + b) mod p, and each c has two antipodal points, m and m + p, told apart
    by the sign of cos(w_k (a - b) / 2): 2p levels. [p * p]"""
    a, b = np.divmod(np.arange(p * p), p)
    w = angular_frequency(p, k)
    angle = np.mod(np.angle(np.exp(1j * w * a) + np.exp(1j * w * b)), 2 * np.pi)
    return np.rint(angle / (np.pi / p)).astype(np.int64) % (2 * p)  # exact multiples of pi / p, rounded


def input_variables(p: int, keys: list[int], curve_points: bool = False) -> Variables:
    """a, b, c, d (discrete); per key frequency the circle angle theta_k = w_k (a + b) mod 2 pi, the
    integration's scale |cos(w_k (a - b) / 2)| and, with ``curve_points``, the curve point
    ``psi_k`` (``curve_point``; discrete, 2p levels)."""
    table = inputs_table(p)
    values = table.copy()
    kinds = {name: "discrete" for name in table.columns}
    for k in keys:
        w = angular_frequency(p, k)
        values[f"theta_{k}"] = np.mod(w * (table.a + table.b), 2 * np.pi)
        values[f"scale_{k}"] = np.abs(np.cos(w * (table.a - table.b) / 2))
        kinds[f"theta_{k}"] = "circular"
        kinds[f"scale_{k}"] = "scalar"
        if curve_points:
            values[f"psi_{k}"] = curve_point(p, k)
            kinds[f"psi_{k}"] = "discrete"
    return Variables("inputs", values, kinds)


def hidden_structures(
    fits: pd.DataFrame, assigned: np.ndarray, keys: list[int], p: int, curve_points: bool = False
) -> dict[str, Structure]:
    """Structures at the neuron site.

    fits : one row per neuron (k, phi, amplitude, r2, ...); assigned : bool [m], neurons whose fit is
    good and whose frequency is a key frequency; curve_points : as ``input_variables``.
    """
    identity = np.eye(len(fits))
    labels = fits.assign(assigned=assigned)
    frequencies = Subspaces(
        "frequencies",
        [identity[assigned & (fits.k.to_numpy() == k)] for k in keys],
        [f"k={k}" for k in keys],
    )
    return {
        "neurons": Directions("neurons", identity, labels=labels),
        "frequencies": frequencies,
        "inputs": input_variables(p, keys, curve_points),
    }


def embed_structures(X: np.ndarray, keys: list[int], p: int, curve_points: bool = False) -> dict[str, Structure]:
    """Structures at the MLP input X [p * p, d]: per key frequency its Fourier plane(s)."""
    fourier = Subspaces("fourier", [frequency_planes(X, p, k) for k in keys], [f"k={k}" for k in keys])
    return {"fourier": fourier, "inputs": input_variables(p, keys, curve_points)}
