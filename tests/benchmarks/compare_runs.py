"""Two runs of the same cells, cell by cell: `python tests/benchmarks/compare_runs.py NEW OLD`.

NEW and OLD are ``structure-bench run`` folders (the same methods, cells and seeds, fitted under
two training choices). Prints one Markdown row per method: cells, steps (old -> new), unit work,
the mean main score (old -> new, and how many cells rise and fall by more than 0.01), the median
and largest change of the main score, the range and median of the relative FVU change,
how many changes are within the committed board's seed range at that cell (``summary.seed_ranges``),
and how many move by more than the convergence target (0.01 main score or 5% relative FVU).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from structure_bench import Cell, load_results
from summary import seed_ranges
from test_convergence import FVU_GAP, MAIN_GAP

KEY = ["task", "site", "method", "n_latents", "l0_target", "seed"]


def compare(new_dir: str | Path, old_dir: str | Path) -> str:
    """The Markdown table of NEW's records against OLD's at the cells both have."""
    new, old = (load_results(d) for d in (new_dir, old_dir))
    both = new.merge(old, on=KEY, suffixes=("", "_old"))
    if both.empty:
        raise SystemExit(f"no cell is in both {new_dir} and {old_dir}")
    both["main_change"] = both.main_score - both.main_score_old
    both["fvu_change"] = (both.fvu - both.fvu_old) / both.fvu_old.clip(lower=1e-6)
    spread = seed_ranges()
    lines = [
        "| method | cells | steps old -> new | unit work s old -> new | mean main score old -> new (up / down > 0.01) "
        "| main-score change: median / largest | FVU change: range (median) | within seed range | moved > 0.01 / 5% |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, rows in both.groupby("method", sort=False):
        size = abs(rows.main_change)
        labels = [f"{t} {method} {Cell(int(n), int(k)).name}" for t, n, k in zip(rows.task, rows.n_latents, rows.l0_target)]
        known = [(change, spread[label]) for change, label in zip(size, labels) if label in spread]
        moved = ((size > MAIN_GAP) | (abs(rows.fvu_change) > FVU_GAP)).sum()
        lines.append(
            f"| {method} | {len(rows)} | {int(rows.train_steps_old.sum())} -> {int(rows.train_steps.sum())} | "
            f"{rows.wall_time_s_old.sum():.0f} -> {rows.wall_time_s.sum():.0f} | "
            f"{rows.main_score_old.mean():.3f} -> {rows.main_score.mean():.3f} ({(rows.main_change > MAIN_GAP).sum()} / "
            f"{(rows.main_change < -MAIN_GAP).sum()}) | "
            f"{statistics.median(size):.3f} / {size.max():.3f} | {rows.fvu_change.min():+.1%} to "
            f"{rows.fvu_change.max():+.1%} ({statistics.median(rows.fvu_change):+.1%}) | "
            f"{sum(change <= width for change, width in known)} of {len(known)} | {moved} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python tests/benchmarks/compare_runs.py NEW_RUN_DIR OLD_RUN_DIR")
    print(compare(*sys.argv[1:]), end="")
