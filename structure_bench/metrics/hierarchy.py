"""Absorption and hedging on a parent/child feature hierarchy, computed exactly from the truth.

A hierarchy is a ``Directions`` structure whose labels carry a ``parent`` column (the index of
each feature's parent, -1 for roots) and whose coefficients say when each feature is on. Each
true feature is matched one-to-one to an alive latent by the Hungarian matching of the ``mcc``
metric (``1 - |cos|`` between unit decoder rows and true directions); the two measures then ask
how the matched latents of parents and children share the work:

absorption_rate
    Over every (parent p, child c) pair and every sample where both are on (``A_p > 0`` and
    ``A_c > 0``), the fraction where the child's latent fires (``|z|`` above the firing
    tolerance that ``l0`` uses) while the parent's latent does not: the child latent has absorbed the parent (Chanin et al. 2024, who also count
    only full absorption, where the parent latent is silent). Pooled over pairs, so each
    co-occurrence counts once. A feature without a matched latent never fires.
    ``absorption_free = 1 - absorption_rate``.
hedging
    For each parent with a matched latent, the share of that latent's unit decoder row lying in
    the span of its children's directions after removing their component along the parent,
    ``||Q_p u_p||^2`` with ``Q_p`` an orthonormal basis of that span (Chanin et al. 2025, feature
    hedging: a parent latent mixes in its correlated children). Mean over parents; 0 for an exact
    dictionary, about (number of children) / d for a random unit vector.
"""

from __future__ import annotations

import numpy as np

from structure_bench.metrics.directions import abs_cosines, hungarian_match, unit_rows
from structure_bench.metrics.reconstruction import firing_mask
from structure_bench.structures import Directions


def matched_latents(decoder: np.ndarray, fires: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """For each true feature, its Hungarian-matched alive latent (the ``mcc`` matching), or -1: int [m].

    decoder : [n_latents, d]; fires : bool [n_samples, n_latents] (alive = fires on some sample);
    vectors : [m, d] unit true directions.
    """
    alive = np.flatnonzero(fires.any(axis=0))
    latents, features = hungarian_match(abs_cosines(np.asarray(decoder, dtype=np.float64)[alive], vectors))
    match = np.full(len(vectors), -1)
    match[features] = alive[latents]
    return match


def _fires(fires: np.ndarray, latent: int) -> np.ndarray:
    """Whether ``latent`` fires on each sample: bool [n_samples] (all False for -1)."""
    if latent < 0:
        return np.zeros(len(fires), dtype=bool)
    return fires[:, latent]


def absorption_rate(fires: np.ndarray, coefficients: np.ndarray, parents: np.ndarray, match: np.ndarray) -> float:
    """Share of parent-and-child co-occurrences where the child's latent fires and the parent's does not.

    fires : bool [n_samples, n_latents]; coefficients : [n_samples, m]; parents : [m] (-1 for roots);
    match : [m] matched latent per feature (-1 for none). NaN when no pair ever co-occurs.
    """
    co_occurrences = absorbed = 0
    for child in np.flatnonzero(parents >= 0):
        parent = parents[child]
        both_on = (coefficients[:, parent] > 0) & (coefficients[:, child] > 0)
        swallowed = _fires(fires, match[child]) & ~_fires(fires, match[parent])
        co_occurrences += int(both_on.sum())
        absorbed += int((both_on & swallowed).sum())
    return absorbed / co_occurrences if co_occurrences else float("nan")


def hedging(decoder: np.ndarray, vectors: np.ndarray, parents: np.ndarray, match: np.ndarray) -> float:
    """Mean share of a parent latent's unit decoder row inside its children's (parent-orthogonal) span.

    decoder : [n_latents, d]; vectors : [m, d] unit; parents : [m]; match : [m].
    NaN when no parent with children has a matched latent.
    """
    shares = []
    for parent in np.unique(parents[parents >= 0]):
        if match[parent] < 0:
            continue
        g = vectors[parent]
        children = vectors[parents == parent]
        q, _ = np.linalg.qr((children - np.outer(children @ g, g)).T)
        u = unit_rows(np.asarray(decoder, dtype=np.float64)[[match[parent]]])[0]
        shares.append(float(np.sum((q.T @ u) ** 2)))
    return float(np.mean(shares)) if shares else float("nan")


def hierarchy_metrics(decoder: np.ndarray, Z: np.ndarray, truth: Directions) -> dict[str, float]:
    """Absorption and hedging of a dictionary on a hierarchy (definitions in the module docstring).

    decoder : [n_latents, d] decoder rows; Z : [n_samples, n_latents] codes of the samples that
    ``truth.coefficients`` [n_samples, m] describe; truth.labels has a ``parent`` column.
    Returns ``absorption_rate``, ``absorption_free`` and ``hedging``.
    """
    fires = firing_mask(np.asarray(Z, dtype=np.float64))
    parents = truth.labels["parent"].to_numpy().astype(int)
    match = matched_latents(decoder, fires, truth.vectors)
    # Without per-sample coefficients co-occurrence is unknown; only the geometry can be scored.
    rate = float("nan") if truth.coefficients is None else absorption_rate(fires, truth.coefficients, parents, match)
    return {
        "absorption_rate": rate,
        "absorption_free": 1.0 - rate,
        "hedging": hedging(decoder, truth.vectors, parents, match),
    }
