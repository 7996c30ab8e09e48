"""Circle and curve tasks: the learned latents drawn on the true circles or curve."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from structure_bench.metrics.subspaces import subspace_shares
from structure_bench.report.figures import TOP_LATENTS, FigureSpec, latent_strength, latents_on_plane, top_latents
from structure_bench.structures import Subspaces

if TYPE_CHECKING:
    from structure_bench.task import Task

MAX_CIRCLES = 4


def circle_figures(task: Task, site: str, decoder: np.ndarray, codes: np.ndarray | None, title: str) -> list[FigureSpec]:
    """Each true circle (a 2-D subspace of the primary structure) with the samples in its plane,
    coloured by their most active latent among those whose best subspace it is, and those latents'
    decoder rows as arrows."""
    truth = task.primary_structure(site, "all")
    if not isinstance(truth, Subspaces):
        return []
    circles = [g for g, basis in enumerate(truth.bases) if basis.shape[0] == 2][:MAX_CIRCLES]
    if not circles:
        return []
    X = task.activations(site, "all").astype(np.float64)
    shares = subspace_shares(decoder, truth)
    strength = latent_strength(codes, len(decoder))
    points, directions, ids = [], [], []
    for g in circles:
        basis = truth.bases[g]
        points.append((X - X.mean(axis=0)) @ basis.T)
        directions.append(decoder @ basis.T)
        owned = np.flatnonzero(shares.argmax(axis=1) == g)
        ids.append(owned[np.argsort(-strength[owned] * shares[owned, g], kind="stable")][:TOP_LATENTS])
    figure = latents_on_plane(
        np.stack(points), codes, np.stack(directions), ids,
        [f"circle {truth.labels[g]} ({len(i)} latents)" for g, i in zip(circles, ids)],
        ("circle coordinate 1", "circle coordinate 2"), f"{title}: latents on the true circles",
    )
    return [FigureSpec("circles", "samples in each true circle's plane, coloured by their most active latent "
                       "assigned to that circle; arrows are those latents' decoder rows", figure)]


def curve_figures(task: Task, site: str, decoder: np.ndarray, codes: np.ndarray | None, title: str) -> list[FigureSpec]:
    """For the manifold tasks: the curve's samples in their top-2 principal plane, coloured by
    their most active latent among the 16 most active, with those latents' decoder rows projected
    as arrows."""
    if not task.id.startswith("manifold-"):
        return []
    X = task.activations(site, "all").astype(np.float64)
    centred = X - X.mean(axis=0)
    plane = np.linalg.svd(centred, full_matrices=False)[2][:2]  # [2, d]
    ids = top_latents(codes, len(decoder))
    figure = latents_on_plane(
        (centred @ plane.T)[None], codes, (decoder @ plane.T)[None], [ids],
        [f"{len(ids)} most active latents"], ("principal component 1", "principal component 2"),
        f"{title}: latents on the true curve",
    )
    return [FigureSpec("curve", "samples of the curve in its top-2 principal plane, coloured by their most "
                       "active latent; arrows are those latents' decoder rows", figure)]
