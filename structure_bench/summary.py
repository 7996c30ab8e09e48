"""Tables from result records: per-cell summaries, calibration, seed stability, the profile view."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.kinds import kind_of
from structure_bench.methods import calibration_role
from structure_bench.results import ID_COLUMNS

CONFIG = ["task", "site", "method", "n_latents", "l0_target"]


def metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ID_COLUMNS]


def seed_mcc(frame: pd.DataFrame, out: str | Path) -> pd.Series:
    """Mean Hungarian-matched |cos| between the decoders of every pair of seeds, per config."""
    from structure_bench.metrics import seed_mcc as decoder_seed_mcc

    values = {}
    for config, group in frame[(frame.status == "ok") & frame.decoder_file.notna()].groupby(CONFIG):
        paths = [Path(out) / name for name in group.decoder_file if (Path(out) / name).exists()]
        pairs = list(itertools.combinations(paths, 2))
        if pairs:
            values[config] = float(np.mean([decoder_seed_mcc(np.load(a), np.load(b)) for a, b in pairs]))
    index = pd.MultiIndex.from_arrays([list(level) for level in zip(*values)] or [[]] * len(CONFIG), names=CONFIG)
    return pd.Series(list(values.values()), index=index, name="seed_mcc", dtype=float)


def summarise(frame: pd.DataFrame, out: str | Path | None = None) -> pd.DataFrame:
    """One row per config: seeds run and failed, means over seeds of the headline metrics (dead
    fraction included), the share of seeds whose training converged (NaN for direct solvers), the
    main score normalised between the random (0) and oracle (1) methods of the same cell, and,
    given the run directory, the seed stability of the decoders."""
    if frame.empty:
        return pd.DataFrame()
    ok = frame[frame.status == "ok"]
    counts = frame.groupby(CONFIG).agg(seeds=("seed", "nunique"), failed=("status", lambda s: int((s == "failed").sum())))
    headline = [c for c in ("main_score", "fvu", "l0", "dead_fraction", "spliced_accuracy") if c in ok.columns]
    means = ok.groupby(CONFIG)[headline].mean()
    converged = pd.to_numeric(ok["converged"], errors="coerce").groupby([ok[c] for c in CONFIG]).mean()
    table = counts.join(means).join(converged.rename("converged"))
    table.insert(0, "main_score_name", frame.groupby(CONFIG)["main_score_name"].first())
    table["main_score_norm"] = normalised(table["main_score"])
    if out is not None:
        table = table.join(seed_mcc(frame, out))
    ordered = ["main_score_name", "main_score", "main_score_norm"] + [c for c in table.columns if c not in ("main_score_name", "main_score", "main_score_norm")]
    return table[ordered].reset_index()


def normalised(scores: pd.Series) -> pd.Series:
    """(s - s_random) / (s_oracle - s_random) within each (task, site, n_latents, l0_target) cell,
    where oracle and random are the methods declaring those calibration roles."""
    from structure_bench.metrics import normalise

    frame = scores.rename("score").reset_index()
    cell = ["task", "site", "n_latents", "l0_target"]
    # The references are found by the role their class declares (Method.calibration_role).
    frame["role"] = frame.method.map({m: calibration_role(m) for m in frame.method.unique()})
    reference = frame[frame.role.notna()].pivot_table(index=cell, columns="role", values="score")
    merged = frame.merge(reference, left_on=cell, right_index=True, how="left")
    values = [
        normalise(row.score, getattr(row, "random", np.nan), getattr(row, "oracle", np.nan))
        for row in merged.itertuples()
    ]
    return pd.Series(values, index=scores.index, name="main_score_norm")


def profile_columns(frame: pd.DataFrame, structures: dict) -> list[str]:
    """Headline metric columns for each candidate structure (its kind's ``headline``): what do the
    latents align with?"""
    columns = []
    for name, structure in structures.items():
        wanted = kind_of(structure).headline(structure)
        columns += [f"{name}/{m}" for m in wanted if f"{name}/{m}" in frame.columns]
    return columns + [c for c in ("spliced_accuracy", "fvu", "l0") if c in frame.columns]


def profile(frame: pd.DataFrame, task_id: str, site: str | None = None) -> pd.DataFrame:
    """For one task: per method and cell, the mean over seeds of how its latents align with each
    candidate structure (directions' MCC, subspaces' purity/coverage, eta^2 of each variable)."""
    from structure_bench.registry import load_task

    task = load_task(task_id)
    site = site or task.metadata.default_site
    rows = frame[(frame.task == task_id) & (frame.site == site) & (frame.status == "ok")]
    columns = profile_columns(rows, task.structures(site, "test"))
    return rows.groupby(["method", "n_latents", "l0_target"])[columns].mean().reset_index()


def latent_view(frame: pd.DataFrame, task_id: str, site: str | None = None) -> pd.DataFrame:
    """For one task: per method and cell (means over seeds), what its latents are: the share of the
    code variance in each latent class (``metrics.latents``), the curve measures where the site has
    curves, its FVU against the FVU of OMP codes for its own decoder at the cell's L0
    (``amortisation_gap``), and ``reference_fvu``: the lowest FVU any reference (a method that uses
    the truth: the oracle and the hypothesis references) reached in the cell at an L0 within the
    cell's target, an achievable bound, not the best possible. Empty when the records have no per-latent measurements."""
    from structure_bench.methods import get_method
    from structure_bench.metrics.latents import CLASSES

    rows = frame[(frame.task == task_id) & (frame.status == "ok")]
    if site is not None:
        rows = rows[rows.site == site]
    shares = [f"latents/variance_share[{c}]" for c in CLASSES]
    if rows.empty or not set(shares) <= set(rows.columns) or rows[shares].isna().all().all():
        return pd.DataFrame()
    curve = [c for c in ("latents/r2_curve", "latents/tuning_width", "latents/one_per_frequency") if c in rows.columns]
    columns = shares + curve + [c for c in ("fvu", "fvu_omp", "amortisation_gap", "l0") if c in rows.columns]
    table = rows.groupby(["method", "n_latents", "l0_target"])[columns].mean().reset_index()

    def is_reference(method: str) -> bool:
        try:
            cls = get_method(method)
        except StructureBenchError:  # a method that is gone here references nothing
            return False
        return bool(getattr(cls, "uses_ground_truth", False))

    references = table[table.method.map(is_reference) & (table.l0 <= table.l0_target + 1e-9)]
    best = references.groupby(["n_latents", "l0_target"])["fvu"].min().rename("reference_fvu")
    table = table.merge(best, left_on=["n_latents", "l0_target"], right_index=True, how="left")
    return table.rename(columns={c: c.removeprefix("latents/").replace("variance_share", "var") for c in columns})
