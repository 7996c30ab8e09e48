"""The report's first block: per (task, site), one sentence per method saying what it found.

The sentences are made from numbers, never typed: ``answer_numbers`` gathers, per method at the
showcase cell, the summary (main score, FVU, L0, dead latents), the profile (what the latents
align with) and the latent view (share of the code variance per latent class, OMP codes on the
method's own decoder); ``finding_sentence`` turns one row of it into words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from structure_bench.metrics.latents import CLASSES, home_structure
from structure_bench.structures import Directions, Structure
from structure_bench.task import Cell

SHOWN_SHARE = 0.05  # a latent class (or the dead latents) enters the sentence from this share up
SUMMARY_COLUMNS = ("l0_target", "main_score", "main_score_norm", "fvu", "l0", "dead_fraction")
LATENT_COLUMNS = tuple(f"var[{name}]" for name in CLASSES) + ("fvu_omp",)
# How ``shown_numbers`` names the columns (main_score: by the task's main score).
SHOWN_NAMES = {"main_score_norm": "normalised", "fvu": "FVU", "l0": "L0", "dead_fraction": "dead",
               "best_profile": "highest other profile score", "best_profile_score": "its value", "fvu_omp": "OMP codes' FVU"}


def class_phrases(structures: Mapping[str, Structure]) -> dict[str, str]:
    """What a latent of each class is, in words naming the site's structures (the classes of
    ``metrics.latents``): e.g. "latents mixed across parts of frequencies". A class that says
    nothing on the site (pure, tile, mixture without a home structure; aligned without directions)
    has no phrase, nor has dead (a dead latent holds no variance: the summary counts them)."""
    phrases = {"dense": "dense latents (firing on over half the inputs)"}
    directions = next((s for s in structures.values() if isinstance(s, Directions)), None)
    if directions is not None:
        phrases["aligned"] = f"latents aligned with one of the {directions.name} directions"
    home = home_structure(structures)
    if home is not None:
        phrases |= {
            "tile": f"curve tiles (each narrowly tuned within one part of {home.name})",
            "pure": f"latents pure in one part of {home.name}",
            "mixture": f"latents mixed across parts of {home.name}",
        }
    return phrases


def answer_numbers(
    summary: pd.DataFrame, profiles: pd.DataFrame, latents: pd.DataFrame, score_columns: Sequence[str], cell: Cell
) -> pd.DataFrame:
    """The numbers behind the sentences: one row per method at ``cell``, sorted by method.

    summary, profiles, latents : rows of ``summary.summarise``, ``summary.profile`` and
    ``summary.latent_view`` for one (task, site); latents may be empty (no per-latent measurements).
    score_columns : the profile's 0-1 score columns; ``best_profile`` and ``best_profile_score``
    name the highest of them other than the main score.
    Columns: method, ``SUMMARY_COLUMNS``, best_profile, best_profile_score, then the
    ``LATENT_COLUMNS`` the latent view has.
    """

    def at_cell(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame.n_latents == cell.n_latents) & (frame.l0_target == cell.l0_target)].set_index("method")

    table = at_cell(summary)[list(SUMMARY_COLUMNS)]
    main_score = summary.main_score_name.iloc[0]
    others = [c for c in score_columns if c != main_score]
    scores = at_cell(profiles)[others].astype(float).dropna(how="all")
    table = table.join(pd.DataFrame({"best_profile": scores.idxmax(axis=1), "best_profile_score": scores.max(axis=1)}))
    if not latents.empty:
        table = table.join(at_cell(latents)[[c for c in LATENT_COLUMNS if c in latents.columns]])
    return table.sort_index().reset_index()


def finding_sentence(row: pd.Series, main_score: str, phrases: Mapping[str, str]) -> str:
    """What one method found, in one sentence, from its row of ``answer_numbers``: the latent
    classes holding at least ``SHOWN_SHARE`` of its code variance (largest first, in the words of
    ``class_phrases``), the share of dead latents (when at least ``SHOWN_SHARE``), its main score
    (normalised: random 0, oracle 1), the highest other profile score, and its FVU at its achieved
    L0 (with that of OMP codes on its own decoder at the cell's L0 target). A number that was not
    measured (NaN, or a missing column) is left out; a method with none has no successful fit.

    e.g. "topk-sae: 100% of the code variance in latents mixed across parts of frequencies; 73% of
    the latents dead; frequencies/subspace_f 0.436 (normalised 0.44); highest other profile
    score frequencies/purity 0.58; FVU 0.133 at L0 3 (OMP codes on its decoder at L0 3: 0.098)."
    """

    def known(name: str) -> bool:
        return name in row.index and pd.notna(row[name])

    clauses = []
    shares = sorted(((float(row[f"var[{name}]"]), name) for name in phrases if known(f"var[{name}]")), reverse=True)
    held = [(share, phrases[name]) for share, name in shares if share >= SHOWN_SHARE]
    if held:
        clauses.append(f"{held[0][0]:.0%} of the code variance in {held[0][1]}"
                       + "".join(f", {share:.0%} in {phrase}" for share, phrase in held[1:]))
    if known("dead_fraction") and row.dead_fraction >= SHOWN_SHARE:
        clauses.append(f"{row.dead_fraction:.0%} of the latents dead")
    if known("main_score"):
        clauses.append(f"{main_score} {row.main_score:.3f}"
                       + (f" (normalised {row.main_score_norm:.2f})" if known("main_score_norm") else ""))
    if known("best_profile_score"):
        clauses.append(f"highest other profile score {row.best_profile} {row.best_profile_score:.2f}")
    if known("fvu"):
        clauses.append(f"FVU {row.fvu:.3f}" + (f" at L0 {row.l0:.3g}" if known("l0") else "")
                       + (f" (OMP codes on its decoder at L0 {row.l0_target:.3g}: {row.fvu_omp:.3f})" if known("fvu_omp") else ""))
    return f"{row.method}: " + ("; ".join(clauses) or "no successful fit at this cell") + "."


def shown_numbers(numbers: pd.DataFrame, main_score: str) -> pd.DataFrame:
    """``numbers`` (an ``answer_numbers`` table) for display: columns named as ``SHOWN_NAMES``
    (main_score by the task's main score), without l0_target (the answer names its cell) and the
    latent classes no method uses (all zero or NaN)."""
    unused = [c for c in numbers.columns if c.startswith("var[") and not np.nan_to_num(numbers[c].to_numpy(float)).any()]
    return numbers.drop(columns=["l0_target", *unused]).rename(columns=SHOWN_NAMES | {"main_score": main_score})
