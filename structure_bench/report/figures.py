"""Figures for every task: similarity heatmaps, frontiers, profiles, latents on a plane.

Each function takes arrays or DataFrames and returns a matplotlib Figure (built without pyplot,
so nothing global changes). One colour scheme throughout: ``ACTIVATION_CMAP`` for non-negative
values (activations, similarities), ``WEIGHT_CMAP`` for signed weights, ``method_colours`` for
methods in every cross-method plot, ``LATENT_COLOURS`` for telling latents apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.kinds import kind_of
from structure_bench.methods import calibration_role
from structure_bench.metrics.directions import hungarian_match
from structure_bench.structures import Structure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ACTIVATION_CMAP = "viridis"
WEIGHT_CMAP = "RdBu_r"
LATENT_COLOURS = "tab20"
CALIBRATION_COLOURS = {"oracle": "#222222", "random": "#999999"}
TOP_LATENTS = 16


@dataclass
class FigureSpec:
    """A figure of the report: what kind it is (e.g. "similarity"), its caption, the Figure."""

    kind: str
    caption: str
    figure: Figure


def require_matplotlib(purpose: str = "figures") -> None:
    """A one-line error when matplotlib (the ``plots`` extra) is not installed; the command line
    calls it before any work, so ``run --plots`` fails before fitting, not after."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise StructureBenchError(f"{purpose} need matplotlib: pip install 'structure-bench[plots]'") from None


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A Figure of width x height inches, or a one-line error when matplotlib is missing.

    layout : "constrained" (neat, slow with many panels) or None (place panels by hand).
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=layout)


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """A fixed colour per method name: the calibration references by their role (oracle black,
    random grey), the rest tab10 in sorted order."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    roles = {name: calibration_role(name) for name in methods}
    others = sorted(name for name, role in roles.items() if role not in CALIBRATION_COLOURS)
    colours = {name: palette[i % len(palette)] for i, name in enumerate(others)}
    return colours | {name: CALIBRATION_COLOURS[role] for name, role in roles.items() if role in CALIBRATION_COLOURS}


def latent_strength(codes: np.ndarray | None, n_latents: int) -> np.ndarray:
    """How much each latent is used: mean |activation| over codes [n_samples, n_latents], or
    ones [n_latents] when the codes were not saved."""
    if codes is None:
        return np.ones(n_latents)
    return np.abs(codes.astype(np.float32)).mean(axis=0)


def top_latents(codes: np.ndarray | None, n_latents: int, n: int = TOP_LATENTS) -> np.ndarray:
    """Indices of the n most used latents (``latent_strength``), most used first; the first n
    latents when there are no codes."""
    return np.argsort(-latent_strength(codes, n_latents), kind="stable")[:n]


def matched_order(similarity: np.ndarray) -> np.ndarray:
    """Column order of similarity [n_truth, n_latents] that puts each truth row's Hungarian match
    on the diagonal, then the unmatched latents grouped by their best truth row."""
    rows, cols = hungarian_match(similarity)
    matched = cols[np.argsort(rows)]
    rest = np.setdiff1d(np.arange(similarity.shape[1]), matched)
    rest = rest[np.lexsort((-similarity[:, rest].max(axis=0), similarity[:, rest].argmax(axis=0)))]
    return np.concatenate([matched, rest])


def text_width(labels: Sequence[str], fontsize: float) -> float:
    """Inches of the widest of ``labels`` at ``fontsize`` points, measured without drawing."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    prop = FontProperties(size=fontsize)
    return max((text_to_path.get_text_width_height_descent(label, prop, ismath=False)[0] for label in labels), default=0.0) / 72


def similarity_heatmap(
    similarity: np.ndarray,
    latent_ids: np.ndarray,
    truth_labels: Sequence[str],
    title: str,
    value_label: str,
    truth_axis: str,
) -> Figure:
    """Heatmap of similarity [n_truth, n_latents], 0 to 1, columns the latents ``latent_ids``
    [n_latents] in display order.

    Laid out by hand, the left margin from the widest truth label: constrained layout was 40% of
    the figure's drawing, and this is the report's most frequent figure.
    """
    n_truth, n_latents = similarity.shape
    width, height = min(14, 7 + 0.1 * n_latents), min(9, 2.5 + 0.22 * n_truth)
    labelled = n_truth <= 40  # else numbered by matplotlib's ticks (10 points)
    left = (text_width(truth_labels, 8) if labelled else text_width([str(n_truth)], 10)) + 0.4  # inches, + ticks and axis label
    bottom, top, bar_labels, gap = 0.5, 0.3, 0.62, 0.25
    plot_height = height - bottom - top
    bar_width = 0.045 * plot_height  # a colorbar of 90% of the plot's height, aspect 20
    fig = new_figure(width, height, layout=None)
    ax = fig.add_axes((left / width, bottom / height, (width - left - gap - bar_width - bar_labels) / width, plot_height / height))
    image = ax.imshow(similarity, cmap=ACTIVATION_CMAP, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    if n_latents <= 40:
        ax.set_xticks(range(n_latents), [str(i) for i in latent_ids], fontsize=8)
        ax.set_xlabel(f"latent id (matched order; {n_latents} latents)")
    else:
        ax.set_xlabel(f"latents in matched order (position; {n_latents} latents)")
    ax.set_ylabel(truth_axis)
    if labelled:
        ax.set_yticks(range(n_truth), list(truth_labels), fontsize=8)
    ax.set_title(title)
    bar = fig.add_axes(((width - bar_labels - bar_width) / width, (bottom + 0.05 * plot_height) / height,
                        bar_width / width, 0.9 * plot_height / height))
    fig.colorbar(image, cax=bar, label=value_label)
    return fig


def similarity_figure(truth: Structure, decoder: np.ndarray, title: str) -> FigureSpec | None:
    """Latents against the ground truth (its kind's ``similarity``: |cos| with each true direction,
    the share of each unit decoder row in each true subspace, ...), latents in matched order.
    None for a kind without one (a set of variables).

    decoder : [n_latents, d] raw rows.
    """
    similarity = kind_of(truth).similarity(truth, decoder)
    if similarity is None:
        return None
    order = matched_order(similarity.values)
    figure = similarity_heatmap(similarity.values[:, order], order, similarity.parts, title,
                                similarity.value_label, similarity.parts_axis)
    return FigureSpec("similarity", f"latents against the true {truth.name} (Hungarian-matched order)", figure)


FRONTIER_PANELS = (("l0", "main_score"), ("l0", "fvu"), ("n_latents", "main_score"))
AXIS_LABELS = {"l0": "achieved L0 (latents firing per sample)", "n_latents": "width (number of latents)", "fvu": "FVU (lower is better)"}


def frontier(summary: pd.DataFrame, colours: dict[str, str], title: str, main_score_name: str) -> Figure:
    """Main score and FVU against achieved L0, and main score against width, one line per method.

    summary : rows of ``structure_bench.summary.summarise`` for one task and site (one per config).
    """
    fig = new_figure(15, 4.2)
    axes = fig.subplots(1, len(FRONTIER_PANELS))
    for ax, (x, y) in zip(axes, FRONTIER_PANELS):
        for method, rows in summary.groupby("method"):
            rows = rows.dropna(subset=[x, y]).sort_values(x)
            if rows.empty:
                continue
            ax.plot(rows[x], rows[y], marker="o", color=colours[method], label=method)
        if (summary[x].dropna() > 0).all() and summary[x].max() > 4 * summary[x].min():
            from matplotlib.ticker import NullFormatter, ScalarFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(AXIS_LABELS[x])
        ax.set_ylabel(AXIS_LABELS.get(y, main_score_name))
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=8, title="method")
    fig.suptitle(title)
    return fig


def profile_bars(profile: pd.DataFrame, columns: Sequence[str], colours: dict[str, str], title: str) -> Figure:
    """Grouped bars: for each profile column (eta^2 of a variable, purity of a structure, ...),
    one bar per method. profile : one row per method (means over seeds)."""
    methods = list(profile["method"])
    width = 0.8 / max(1, len(methods))
    fig = new_figure(min(16, 3 + 0.45 * len(columns) * max(1, len(methods)) ** 0.5 * 2), 4.5)
    ax = fig.add_subplot()
    positions = np.arange(len(columns))
    for i, (_, row) in enumerate(profile.iterrows()):
        ax.bar(positions + (i - (len(methods) - 1) / 2) * width, row[list(columns)].astype(float), width,
               color=colours[row["method"]], label=row["method"])
    ax.set_xticks(positions, list(columns), rotation=35, ha="right", fontsize=9)
    ax.set_ylabel("score (eta^2, purity, MCC: 0 to 1)")
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, title="method", ncols=max(1, len(methods) // 6 + 1))
    ax.set_title(title)
    return fig


def class_bars(view: pd.DataFrame, title: str) -> Figure:
    """One stacked bar per method: the share of its code variance in each latent class
    (``summary.latent_view`` rows of one cell, columns var[<class>])."""
    from structure_bench.metrics.latents import CLASSES

    fig = new_figure(9, 1.2 + 0.35 * len(view))
    ax = fig.add_subplot()
    left = np.zeros(len(view))
    palette = {"dead": "0.85", "aligned": "tab:green", "dense": "tab:gray", "tile": "tab:orange", "pure": "tab:blue",
               "mixture": "tab:red"}
    for name in CLASSES:
        values = view[f"var[{name}]"].fillna(0).to_numpy(dtype=float)
        ax.barh(np.arange(len(view)), values, left=left, color=palette[name], label=name)
        left += values
    ax.set_yticks(np.arange(len(view)), list(view["method"]), fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the summed code variance")
    ax.legend(ncol=len(CLASSES), fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.set_title(title, pad=28)
    return fig


def latents_on_plane(
    points: np.ndarray,
    codes: np.ndarray | None,
    directions: np.ndarray,
    latent_ids: np.ndarray,
    titles: Sequence[str],
    axis_labels: tuple[str, str],
    suptitle: str,
) -> Figure:
    """The data drawn in true 2-D planes, each sample coloured by its most active latent, with the
    latents' decoder rows projected into the plane as arrows (one panel per plane).

    points : [n_panels, n_samples, 2] samples in each plane's coordinates.
    codes : [n_samples, n_latents] or None (points drawn grey).
    directions : [n_panels, n_latents, 2] decoder rows in each plane's coordinates.
    latent_ids : [n_panels, k] the latents drawn in each panel (k <= 20).
    """
    from matplotlib import colormaps

    palette = np.array(colormaps[LATENT_COLOURS].colors)  # [20, 3] RGB
    n_panels = len(points)
    n_rows, n_cols = int(np.ceil(n_panels / 4)), min(n_panels, 4)
    width, height = 4.2 * n_cols, 4.2 * n_rows + 0.4
    # Margins by hand (inches; gaps hold the next panel's axis labels and title): constrained
    # layout was 45% of this figure's drawing.
    left, right, bottom, top, gap_x, gap_y = 0.7, 0.15, 0.55, 0.75, 0.75, 0.95
    panel_x = (width - left - right - (n_cols - 1) * gap_x) / n_cols
    panel_y = (height - bottom - top - (n_rows - 1) * gap_y) / n_rows
    fig = new_figure(width, height, layout=None)
    axes = fig.subplots(n_rows, n_cols, squeeze=False, gridspec_kw={
        "left": left / width, "right": 1 - right / width, "bottom": bottom / height, "top": 1 - top / height,
        "wspace": gap_x / panel_x, "hspace": gap_y / panel_y,
    }).ravel()
    for panel, ax in enumerate(axes):
        if panel >= n_panels:
            ax.set_axis_off()
            continue
        xy, ids = points[panel], latent_ids[panel]
        colour = np.full((len(xy), 3), 0.8)  # grey: no drawn latent is on
        if codes is not None and len(ids):
            sub = codes[:, ids].astype(np.float32)
            on = sub.max(axis=1) > 0
            colour[on] = palette[sub.argmax(axis=1)[on] % len(palette)]
        ax.scatter(xy[:, 0], xy[:, 1], c=colour, s=6, linewidths=0)
        radius = np.abs(xy).max() or 1.0
        arrows = directions[panel][ids]
        if len(arrows):  # a panel may have no latent to draw (none points into this plane)
            arrows = arrows / max(np.linalg.norm(arrows, axis=1).max(), 1e-12) * radius
        for j, (latent, (dx, dy)) in enumerate(zip(ids, arrows)):
            ax.annotate("", (dx, dy), (0, 0), arrowprops={"arrowstyle": "->", "color": palette[j % len(palette)], "lw": 1.5})
            ax.text(dx * 1.08, dy * 1.08, str(latent), fontsize=7, color=palette[j % len(palette)], ha="center")
        ax.set_aspect("equal")
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        ax.set_title(titles[panel], fontsize=10)
    fig.suptitle(suptitle + ("" if codes is not None else " (no codes saved: arrows only)"))
    return fig
