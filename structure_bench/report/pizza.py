"""Pizza-task figures: latents over the input grids, and decoder weights against neuron phases."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from structure_bench.report.figures import (
    ACTIVATION_CMAP, TOP_LATENTS, WEIGHT_CMAP, FigureSpec, latent_strength, new_figure, top_latents,
)
from structure_bench.structures import Directions

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from structure_bench.task import Task

MAX_FREQUENCIES = 6


def grid_means(codes: np.ndarray, rows: np.ndarray, cols: np.ndarray, p: int) -> np.ndarray:
    """Mean of each latent over a p x p grid of two integer variables.

    codes : [n_samples, L]. rows, cols : [n_samples] ints in [0, p). Returns [L, p, p] (NaN where
    no sample falls).
    """
    cell = rows * p + cols
    counts = np.bincount(cell, minlength=p * p).astype(np.float64)
    sums = np.stack([np.bincount(cell, weights=codes[:, j], minlength=p * p) for j in range(codes.shape[1])])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts).reshape(-1, p, p)


def latent_grids(means: np.ndarray, latent_ids: Sequence[int], axis_labels: tuple[str, str], title: str) -> Figure:
    """One small heatmap per latent of its mean activation over a grid, each scaled to its own peak.

    means : [N, p, p] (rows: first variable, columns: second), N <= 16.
    The panels are tiles of one image on one axes: 16 axes cost about 0.5 s more a figure.
    """
    from matplotlib import colormaps

    n = len(latent_ids)
    n_cols = min(4, n)
    n_rows = int(np.ceil(n / n_cols))
    p = means.shape[-1]
    gap = max(2, p // 8)
    step, row_step = p + gap, p + gap + max(3, p // 8)  # rows leave room for the panel titles
    mosaic = np.full((n_rows * row_step - gap, n_cols * step - gap), np.nan)  # NaN: white gaps
    width = 2.3 * n_cols
    height = width * mosaic.shape[0] / mosaic.shape[1]  # square cells
    fig = new_figure(width + 1.8, height + 0.9, layout=None)
    ax = fig.add_axes((0.7 / (width + 1.8), 0.5 / (height + 0.9), width / (width + 1.8), height / (height + 0.9)))
    ticks = (0, p // 2, p - 1)
    for i, (grid, latent) in enumerate(zip(means, latent_ids)):
        row, col = n_rows - 1 - i // n_cols, i % n_cols  # first latents on top; origin is lower
        peak = np.nanmax(np.abs(grid)) or 1.0
        mosaic[row * row_step : row * row_step + p, col * step : col * step + p] = grid / peak
        ax.text(col * step + p / 2, row * row_step + p, f"latent {latent} (peak {peak:.2g})", ha="center", va="bottom", fontsize=8)
    image = ax.imshow(
        mosaic, cmap=colormaps[ACTIVATION_CMAP].with_extremes(bad="white"), vmin=0, vmax=1, origin="lower",
        interpolation="nearest", aspect="auto",
    )
    ax.set_xticks([c * step + t for c in range(n_cols) for t in ticks], [str(t) for _ in range(n_cols) for t in ticks], fontsize=7)
    ax.set_yticks([r * row_step + t for r in range(n_rows) for t in ticks], [str(t) for _ in range(n_rows) for t in ticks], fontsize=7)
    ax.set_xlabel(f"{axis_labels[1]} (each panel)", fontsize=9)
    ax.set_ylabel(f"{axis_labels[0]} (each panel)", fontsize=9)
    ax.spines[:].set_visible(False)
    fig.colorbar(image, cax=fig.add_axes((1 - 0.85 / (width + 1.8), 0.25, 0.02, 0.5)), label="mean activation / latent's peak")
    fig.suptitle(title)
    return fig


def phase_edges(phases: np.ndarray) -> np.ndarray:
    """Cell edges [n + 1] around sorted phases [n] in [-pi, pi]: midpoints, closed at +-pi."""
    middle = (phases[1:] + phases[:-1]) / 2
    return np.concatenate([[-np.pi], middle, [np.pi]])


def decoder_against_phases(
    decoder: np.ndarray, labels: pd.DataFrame, strength: np.ndarray, title: str
) -> Figure:
    """Per frequency k, the decoder weights of the latents living in k's neurons, neurons on the
    x-axis at their phase phi. Latents that tile the pizza make a staircase (each owns a slice of
    phases); a latent spread over all phases is a whole frequency; weights elsewhere show mixing.

    decoder : [L, n_neurons] raw rows. labels : n_neurons rows with columns k and phi (radians),
    and optionally ``assigned`` (False for neurons whose fit failed: left out).
    strength : [L] how much each latent is used (mean |activation|; ones without codes).
    The panels are offsets on one axes (as in latent_grids), each scaled to its own largest
    weight: 6 subplots under constrained layout took 0.4 s a figure to draw.
    """
    unit = decoder / np.maximum(np.linalg.norm(decoder, axis=1, keepdims=True), 1e-12)
    fitted = labels["assigned"].to_numpy(bool) if "assigned" in labels.columns else np.ones(len(labels), bool)
    frequencies = sorted(labels.loc[fitted, "k"].unique())[:MAX_FREQUENCIES]
    phi = np.angle(np.exp(1j * labels["phi"].to_numpy(dtype=np.float64)))  # wrap to (-pi, pi]
    n = max(1, len(frequencies))
    width, height = 4.0 * max(n, 2) + 1, 5.0  # at least two panels wide: room for the title
    left, right, bottom, top, gap = 0.75, 1.2, 0.55, 0.75, 0.55  # inches; gap: room for the next panel's latent ids
    panel = (width - left - right - (n - 1) * gap) / n
    step = (panel + gap) / panel * 2 * np.pi  # data units: a panel spans 2 pi
    fig = new_figure(width, height, layout=None)
    ax = fig.add_axes((left / width, bottom / height, (width - left - right) / width, (height - bottom - top) / height))
    mesh, frame_x = None, []
    for j, k in enumerate(frequencies):
        neurons = np.flatnonzero((labels["k"].to_numpy() == k) & fitted)
        neurons = neurons[np.argsort(phi[neurons])]
        share = (unit[:, neurons] ** 2).sum(axis=1)
        chosen = np.argsort(-(share * strength), kind="stable")[:TOP_LATENTS]
        chosen = chosen[share[chosen] > 0.05]
        weights = unit[np.ix_(chosen, neurons)]
        preferred = np.angle((np.abs(weights) * np.exp(1j * phi[neurons])).sum(axis=1))
        order = np.argsort(preferred)
        chosen, weights = chosen[order], weights[order]
        limit = np.abs(weights).max() if weights.size else 1.0
        x0 = j * step + np.pi  # the panel's phase 0
        rows = np.linspace(0, 1, len(chosen) + 1)
        if len(chosen):
            mesh = ax.pcolormesh(x0 + phase_edges(phi[neurons]), rows, weights / limit, cmap=WEIGHT_CMAP, vmin=-1, vmax=1)
        for latent, y in zip(chosen, (rows[1:] + rows[:-1]) / 2):
            ax.text(x0 - np.pi - 0.06, y, str(latent), ha="right", va="center", fontsize=7)
        ax.text(x0, 1.01, f"k={k} · {len(neurons)} neurons · max |w| {limit:.2g}", ha="center", va="bottom", fontsize=10)
        frame_x.append(x0 + np.pi * np.array([-1, 1, 1, -1, -1, np.nan]))
    if frame_x:  # the panels' frames, one line
        ax.plot(np.concatenate(frame_x), np.tile([0, 0, 1, 1, 0, np.nan], len(frame_x)), color="black", lw=0.8)
    ax.set_xticks([j * step + np.pi * (1 + t) for j in range(len(frequencies)) for t in (-1, -0.5, 0, 0.5, 1)],
                  ["-pi", "-pi/2", "0", "pi/2", "pi"] * len(frequencies))
    ax.set_yticks([])
    ax.set_xlim(-0.02, (n - 1) * step + 2 * np.pi + 0.02)
    ax.set_ylim(0, 1)
    ax.spines[:].set_visible(False)
    ax.set_xlabel("neuron phase phi (each panel: the neurons of frequency k)")
    ax.set_ylabel("latent (ordered by preferred phase)", labelpad=22)
    if mesh is not None:
        fig.colorbar(mesh, cax=fig.add_axes((1 - 0.95 / width, 0.2, 0.12 / width, 0.6)), ticks=[-1, -0.5, 0, 0.5, 1],
                     label="unit decoder weight / panel's max |w|")
    fig.suptitle(title)
    return fig


def curve_tuning(codes: np.ndarray, decoder: np.ndarray, structures: dict, title: str) -> Figure | None:
    """Per most-varying latent (up to 16), its mean code at each point psi_k of its home
    frequency's curve (2p points, angle m pi / p), titled with its class and r2_curve: a neuron is
    a broad half-wave, an answer tile one spike, a mixture a ragged profile. None without curves.

    codes : [n_samples, L] of every sample; decoder : [L, d]; structures : the site's "all" split.
    """
    from matplotlib.patches import StepPatch

    from structure_bench.metrics.latents import curves, home_structure, latent_table

    home = home_structure(structures)
    found = curves(home, structures) if home is not None else {}
    if not found:
        return None
    codes = codes.astype(np.float64)
    top = np.argsort(-codes.var(axis=0), kind="stable")[:TOP_LATENTS]
    # The table of the drawn latents only, indexed by latent id: of all 512 it took 0.14 s a figure.
    table = latent_table(codes[:, top], decoder[top], structures).set_axis(top)
    ids = [int(i) for i in top if table["home"][i] in found]
    if not ids:
        return None
    columns = 4
    rows = math.ceil(len(ids) / columns)
    # The panels are offsets on one axes (as in latent_grids), each scaled to its own peak: 16
    # axes made this the slowest figure of the report (1.2 s of drawing and layout a figure).
    signed = any(codes[:, latent].min() < 0 for latent in ids)
    band = 2.0 if signed else 1.0  # a panel's height: [-1, 1] or [0, 1] of its peak
    row_step, col_step = band + 0.45, 360 + 60  # room for the panel titles, and a gap
    height = 1.9 * rows + 1.0  # inches: the panels, the x label below, the title above
    fig = new_figure(12, height, layout=None)
    ax = fig.add_axes((0.06, 0.55 / height, 0.92, 1.9 * rows / height))
    for panel, latent in enumerate(ids):
        curve = found[int(table["home"][latent])]
        counts = np.bincount(curve.points, minlength=curve.n_points)
        means = np.bincount(curve.points, weights=codes[:, latent], minlength=curve.n_points) / np.maximum(counts, 1)
        peak = np.abs(means).max() or 1.0
        x0, base = (panel % columns) * col_step, (rows - 1 - panel // columns) * row_step + (band - 1.0)
        # One filled step path, not a bar per point: 2p rectangles a panel made this figure 2 s.
        # Added as an artist, not by ax.stairs: the limits are set below, and updating them from
        # each path took a third of the figure's making.
        ax.add_artist(StepPatch(base + means / peak, x0 + (np.arange(curve.n_points + 1) - 0.5) * 360 / curve.n_points,
                                baseline=base, fill=True, facecolor="tab:blue", linewidth=0))
        ax.text(x0 + 180, base + 1.05, f"#{latent} {home.labels[int(table['home'][latent])]} · {table['class'][latent]} · "
                f"r2 {table['r2_curve'][latent]:.2f} · peak {peak:.2g}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks([c * col_step + t for c in range(columns) for t in (0, 180, 360)],
                  [str(t) for _ in range(columns) for t in (0, 180, 360)], fontsize=7)
    ax.set_yticks([r * row_step + (band - 1.0) for r in range(rows)], ["0"] * rows, fontsize=7)
    ax.set_xlim(-30, columns * col_step - 30)
    ax.set_ylim(-0.1, rows * row_step)
    ax.spines[:].set_visible(False)
    ax.set_xlabel("curve point psi_k of the latent's home frequency (degrees)", fontsize=9)
    ax.set_ylabel("mean code / panel's peak", fontsize=9)
    fig.suptitle(title)
    return fig


def pizza_figures(task: Task, site: str, decoder: np.ndarray, codes: np.ndarray | None, title: str) -> list[FigureSpec]:
    """The pizza figures of one fitted method: latents over (a, b) and over (c, a - b) (for tasks
    with integer inputs a and b, given the codes of all samples), and decoder weights against
    neuron phases (at a site whose ``neurons`` directions are labelled with k and phi)."""
    specs = []
    inputs = task.inputs("all")
    if codes is not None and {"a", "b"} <= set(inputs.columns) and all(inputs[v].dtype.kind in "iu" for v in "ab"):
        p = int(inputs[["a", "b"]].to_numpy().max()) + 1
        ids = top_latents(codes, decoder.shape[0])
        chosen = codes[:, ids].astype(np.float64)
        a, b = inputs["a"].to_numpy(), inputs["b"].to_numpy()
        for kind, rows, cols, labels in (
            ("pizza-ab", a, b, ("a", "b")),
            ("pizza-cd", (a + b) % p, (a - b) % p, ("c = (a + b) mod p", "a - b mod p")),
        ):
            specs.append(FigureSpec(
                kind,
                f"mean activation of the {len(ids)} most active latents over ({labels[0]}, {labels[1]})",
                latent_grids(grid_means(chosen, rows, cols, p), ids, labels, f"{title}: latents over ({labels[0]}, {labels[1]})"),
            ))
        tuning = curve_tuning(codes, decoder, task.structures(site, "all"), f"{title}: latents along their frequency's curve")
        if tuning is not None:
            specs.append(FigureSpec(
                "pizza-curve",
                "mean code of the most varying latents at each point psi_k of their home frequency's curve, with "
                "their class (metrics/latents.py): a neuron is a broad half-wave, an answer tile one spike",
                tuning,
            ))
    neurons = task.structures(site, "all").get("neurons")
    if isinstance(neurons, Directions) and neurons.labels is not None and {"k", "phi"} <= set(neurons.labels.columns):
        strength = latent_strength(codes, decoder.shape[0])
        specs.append(FigureSpec(
            "pizza-phases",
            "decoder weights of the most used latents of each frequency against the neurons' phases "
            "(a staircase means the latents tile the pizza)",
            decoder_against_phases(decoder @ neurons.vectors.T, neurons.labels, strength, f"{title}: decoder vs neuron phase"),
        ))
    return specs
