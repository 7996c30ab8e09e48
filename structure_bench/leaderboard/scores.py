"""The leaderboard's statistics: per-seed task scores, seed intervals, ranks, a paired bootstrap.

A method's score on a task is, for each seed, the mean of its main score over the task's cells
(every cell is run with the same seeds); its task score is the mean of those per-seed scores with
a 95% t-interval over seeds. The overall rank is the mean over tasks of the per-task rank; a task
a submission has no score on (a method that needs non-negative activations skips signed sites)
counts as a tie for last place there, so leaving tasks out never raises a rank.

Dense methods (PCA, ICA, NMF) and the calibration references spend far more than a cell's target
L0, and on structure metrics that can outrank sparse dictionaries. So the board also ranks, by the
same rule, only the submissions within the budget: achieved L0 averaging at most ``L0_BUDGET``
times the cells' targets, and, task by task, reconstruction within ``FVU_MULTIPLE`` times the best
such submission's FVU there plus ``FVU_SLACK`` (a task whose FVU is over that bound counts as not
scored there, so as a tie for last place): a dictionary that matches structure but cannot rebuild
the activations (k-means with one-hot codes: FVU 0.5-0.65 where top-k SAEs reach 0.03) is not
ranked on that task.

Scores are rounded to ``DECIMALS`` places before they are ranked or resampled, so that last-bit
differences between machines cannot reorder ties or change the page.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from structure_bench.results import records_to_frame

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000
FLIP_THRESHOLD = 0.05
L0_BUDGET = 1.5
FVU_MULTIPLE = 2.0
FVU_SLACK = 0.02
DECIMALS = 10


def submissions_frame(submissions: list[dict[str, Any]]) -> pd.DataFrame:
    """All submissions' records as one tidy frame (see ``records_to_frame``), plus ``submission``."""
    frames = [records_to_frame(s["records"]).assign(submission=s["name"]) for s in submissions]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def seed_scores(frame: pd.DataFrame, by: str = "submission") -> pd.DataFrame:
    """Per (by, task, seed): main score, l0 and fvu averaged over the task's cells (``DECIMALS`` places)."""
    return frame.groupby([by, "task", "seed"])[["main_score", "l0", "fvu"]].mean().round(DECIMALS).reset_index()


def t_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, int]:
    """(half-width of the ``level`` t-interval of the mean of ``values`` [n], n); NaN below 2 values."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return float("nan"), n
    spread = values.std(ddof=1) / np.sqrt(n)
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * spread), n


def task_table(frame: pd.DataFrame, by: str = "submission") -> pd.DataFrame:
    """Per (by, task): main score mean, its 95% interval over seeds (low, high, half_width),
    seeds, and the means of l0 and fvu."""
    rows = []
    for (key, task), group in seed_scores(frame, by).groupby([by, "task"]):
        mean = float(group.main_score.mean())
        half_width, n = t_interval(group.main_score.to_numpy())
        rows.append(
            {
                by: key, "task": task, "main_score": mean, "low": mean - half_width, "high": mean + half_width,
                "half_width": half_width, "seeds": n, "l0": group.l0.mean(), "fvu": group.fvu.mean(),
            }
        )
    return pd.DataFrame(rows)


def _mean_ranks(better: np.ndarray) -> np.ndarray:
    """Mean over tasks (last axis) of the ranks (1 = best, ties averaged) along axis -2 of ``better``
    [..., S, T], whose entries are scores oriented so that higher is better; NaN (absent) ties last."""
    better = np.nan_to_num(better, nan=-np.inf)
    a = better[..., :, None, :]
    b = better[..., None, :, :]
    beaten_by = (b > a).sum(axis=-2) + 0.5 * ((b == a).sum(axis=-2) - 1)
    return (1.0 + beaten_by).sum(axis=-1) / max(better.shape[-1], 1)  # no tasks: no rows either


def overall_ranking(
    frame: pd.DataFrame, higher_is_better: dict[str, bool], seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> pd.DataFrame:
    """One row per submission, best first: mean task rank, tasks ranked on, and for each row the
    bootstrap probability that it and the row below swap order (``flip_with_next``).

    The paired bootstrap resamples tasks (the same draw for every submission) and, within each
    submission and task, its seeds; each resample re-ranks from the resampled means.
    """
    per_seed = seed_scores(frame)
    names = sorted(per_seed.submission.unique())
    tasks = sorted(per_seed.task.unique())
    sign = np.array([1.0 if higher_is_better[t] else -1.0 for t in tasks])
    rng = np.random.default_rng(seed)
    resampled = np.full((resamples, len(names), len(tasks)), np.nan)
    observed = np.full((len(names), len(tasks)), np.nan)
    for (name, task), group in per_seed.groupby(["submission", "task"]):
        s, t = names.index(name), tasks.index(task)
        scores = group.main_score.to_numpy() * sign[t]
        observed[s, t] = scores.mean()
        resampled[:, s, t] = scores[rng.integers(0, len(scores), size=(resamples, len(scores)))].mean(axis=1)
    task_draws = rng.integers(0, len(tasks), size=(resamples, len(tasks)))
    resampled = np.take_along_axis(resampled, task_draws[:, None, :], axis=2)
    mean_rank = _mean_ranks(observed)
    boot_rank = _mean_ranks(resampled)
    order = np.lexsort((names, mean_rank))
    flips = [
        float(np.mean(boot_rank[:, a] > boot_rank[:, b]) + 0.5 * np.mean(boot_rank[:, a] == boot_rank[:, b]))
        for a, b in zip(order[:-1], order[1:])
    ] + [np.nan] * bool(names)
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(names) + 1),
            "submission": [names[i] for i in order],
            "mean_task_rank": mean_rank[order],
            "tasks": (~np.isnan(observed[order])).sum(axis=1),
            "flip_with_next": flips,
        }
    )


def l0_ratios(frame: pd.DataFrame) -> pd.Series:
    """Per submission: the mean over its records of achieved L0 / the cell's l0_target."""
    return (frame.l0 / frame.l0_target).groupby(frame.submission).mean()


def within_l0_budget(frame: pd.DataFrame, budget: float = L0_BUDGET) -> pd.DataFrame:
    """The rows of the submissions whose ``l0_ratios`` are at most ``budget``."""
    ratios = l0_ratios(frame)
    return frame[frame.submission.isin(ratios.index[ratios <= budget])]


def _bounds(sparse: pd.DataFrame) -> pd.Series:
    """Per task: ``FVU_MULTIPLE`` x the lowest mean FVU among ``sparse``'s submissions + ``FVU_SLACK``."""
    return FVU_MULTIPLE * sparse.groupby(["submission", "task"]).fvu.mean().groupby("task").min() + FVU_SLACK


def fvu_bounds(frame: pd.DataFrame, budget: float = L0_BUDGET) -> pd.Series:
    """Per task: the largest mean FVU within the budget, ``FVU_MULTIPLE`` x the lowest mean FVU of
    the submissions within the L0 budget plus ``FVU_SLACK``."""
    return _bounds(within_l0_budget(frame, budget))


def budget_frame(frame: pd.DataFrame, budget: float = L0_BUDGET) -> pd.DataFrame:
    """The rows of submissions within the L0 budget, less each (submission, task) whose mean FVU
    is over ``fvu_bounds``."""
    sparse = within_l0_budget(frame, budget)
    if sparse.empty:
        return sparse
    fvu = sparse.groupby(["submission", "task"]).fvu.transform("mean")
    bound = sparse.task.map(_bounds(sparse)).astype(float)
    return sparse[fvu.round(DECIMALS) <= bound.round(DECIMALS)]


def budget_ranking(
    frame: pd.DataFrame, higher_is_better: dict[str, bool], budget: float = L0_BUDGET
) -> pd.DataFrame:
    """``overall_ranking`` of ``budget_frame`` (no rows when no submission is within the budget)."""
    return overall_ranking(budget_frame(frame, budget), higher_is_better)


def inseparable_pairs(ranking: pd.DataFrame, threshold: float = FLIP_THRESHOLD) -> list[tuple[int, int]]:
    """Adjacent ranks (r, r + 1) whose order flips in more than ``threshold`` of resamples."""
    rows = ranking[ranking.flip_with_next > threshold]
    return [(int(r), int(r) + 1) for r in rows["rank"]]
