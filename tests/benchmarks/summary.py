"""A readable summary of a pytest-benchmark JSON file: `python tests/benchmarks/summary.py benchmarks.json`.

Prints one line per benchmark (best and mean seconds, and its extra_info), the top-k SAE
throughput ratios (ours over the naive loop and over SAELens, measured round by round in one run),
the convergence benchmark's largest gaps and the SAELens comparison's table. Beside each
convergence gap it counts the cells whose main-score gap is within the range of the committed
board's three seeds at that cell (``leaderboard/submissions``): how the gap compares with seed noise.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from functools import cache
from pathlib import Path

from structure_bench import Cell
from sweep import label
from test_convergence import FVU_GAP, MAIN_GAP, outside

BOARD = Path(__file__).resolve().parents[2] / "leaderboard" / "submissions"


def summarise(results: dict) -> str:
    """Markdown text from pytest-benchmark's JSON ``results``."""
    lines = [f"Machine: {results['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
             f"{results['machine_info'].get('cpu', {}).get('count', '?')} cores; {results['datetime']}", "",
             "| benchmark | best s | mean s | notes |", "|---|---|---|---|"]
    ratios: list[str] = []
    for bench in results["benchmarks"]:
        stats, extra = bench["stats"], bench.get("extra_info", {})
        if "largest_main_gap" in extra:
            ratios += _convergence(extra)
            extra = {k: v for k, v in extra.items() if k not in ("rows", "outside_target")}
        if "cells" in extra and isinstance(extra["cells"], dict):
            ratios += _comparison(extra["cells"])
            extra = {k: v for k, v in extra.items() if k != "cells"}
        notes = "; ".join(f"{k}={v}" for k, v in extra.items())
        lines.append(f"| {bench['name']} | {stats['min']:.3f} | {stats['mean']:.3f} | {notes} |")
        throughput = extra.get("samples_per_s")
        if not isinstance(throughput, dict):
            continue
        for key, ratio in extra.items():
            name, _, other = key.partition("_over_")
            if name in throughput and other in throughput:
                ratios.append(f"Top-k SAE training, {extra['shape']}: {name} / {other} = {ratio['median']:.2f}x "
                              f"(median of rounds, range {ratio['min']:.2f}-{ratio['max']:.2f}; best rounds "
                              f"{throughput[name]} vs {throughput[other]} samples/s)")
    lines += [""] + ratios if ratios else []
    return "\n".join(lines) + "\n"


def _convergence(extra: dict) -> list[str]:
    main, fvu = extra["largest_main_gap"], extra["largest_fvu_gap"]
    rows = extra.get("rows", [])
    lengths = extra.get("lengths", ["1x", "4x"])
    return [
        f"Convergence ({extra['cells']} cells, default rule against a {lengths[1]}-longer run): largest main-score gap "
        f"{main['main_gap']:.4f} ({main['cell']}), largest relative FVU gap {fvu['fvu_gap']:+.2%} ({fvu['cell']}); "
        f"{len(extra['outside_target'])} cells outside 0.01 / 5%, {len(extra['not_converged'])} stopped by the cap.",
        "", "| method | cells | largest main gap | FVU gap range (default - long) / long | outside 0.01 / 5% "
        "| main gap within the board's seed range | fit s default / long |",
        "|---|---|---|---|---|---|---|",
    ] + [_convergence_row(method, [r for r in rows if r["method"] == method])
         for method in dict.fromkeys(r["method"] for r in rows)] + [
        "", "Cells outside the target: " + (", ".join(
            f"{r['cell']} (main {r['main_gap']:.3f}, FVU {r['fvu_gap']:+.1%})" for r in extra["outside_target"]) or "none"),
    ] + (_lengths(rows, lengths) if len(lengths) > 2 else []) + _twins([r for r in rows if r.get("twin")], lengths[:2])


def _twins(rows: list[dict], lengths: list[str]) -> list[str]:
    """Each method's cells whose runs and their twins (the same runs, the learning rate changed in
    its last bits) are further apart than the target, and the cells outside the target by more than
    the twins' gaps add up to: gaps that rounding alone does not make."""
    if not rows:
        return []
    short, long = lengths
    head = (f"| method | cells | {short} and twin outside 0.01 / 5% | {long} and twin outside | median main gap to twin "
            f"{short} / {long} | largest to twin {long} | outside the target | of them beyond the twins' gaps |")
    lines = ["", f"Twins: {len(rows)} cells.", "", head, "|---|---|---|---|---|---|---|---|"]
    beyond = [r for r in rows if r["outside"] and beyond_twins(r)]
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        apart = {n: sum(outside(r["twin"][n]["main_gap"], r["twin"][n]["fvu_gap"]) for r in mine) for n in lengths}
        median = {n: statistics.median(r["twin"][n]["main_gap"] for r in mine) for n in lengths}
        largest = max(mine, key=lambda r: r["twin"][long]["main_gap"])
        lines.append(
            f"| {method} | {len(mine)} | {apart[short]} | {apart[long]} | {median[short]:.4f} / {median[long]:.4f} "
            f"| {largest['twin'][long]['main_gap']:.3f} ({largest['cell']}) | {sum(r['outside'] for r in mine)} "
            f"| {sum(r['method'] == method for r in beyond)} |"
        )
    return lines + ["", "Outside the target beyond the twins' gaps: " + (", ".join(
        f"{r['cell']} (main {r['main_gap']:.3f}, FVU {r['fvu_gap']:+.1%}; twins' main {r['twin'][short]['main_gap']:.3f} "
        f"+ {r['twin'][long]['main_gap']:.3f})" for r in beyond) or "none")]


def beyond_twins(row: dict) -> bool:
    """Whether a convergence row's gap to its long run is beyond the target by more than its two
    twins' gaps add up to (in main score or in FVU): a gap rounding alone does not explain."""
    one, other = row["twin"].values()
    main = row["main_gap"] > MAIN_GAP and row["main_gap"] > one["main_gap"] + other["main_gap"]
    fvu = abs(row["fvu_gap"]) > FVU_GAP and abs(row["fvu_gap"]) > abs(one["fvu_gap"]) + abs(other["fvu_gap"])
    return main or fvu


def _lengths(rows: list[dict], lengths: list[str]) -> list[str]:
    """Each cell's scores at every run length, and how many of the first long runs are within the
    target of the longest."""
    held = sum(r["long_settled"] for r in rows)
    slash = " / ".join(lengths)
    return [
        "", f"{held} of {len(rows)} cells: the {lengths[1]} run within 0.01 main score and 5% FVU of the {lengths[-1]} run.",
        "", f"| cell | main {slash} | FVU {slash} | dead {slash} |", "|---|---|---|---|",
    ] + [
        f"| {r['cell']} | " + " | ".join(
            " / ".join(f"{r['scores'][n][i]:{fmt}}" for n in lengths) for i, fmt in enumerate((".3f", ".4f", ".2f"))
        ) + " |"
        for r in rows
    ]


def _convergence_row(method: str, rows: list[dict]) -> str:
    """One method's line of the convergence table from its cells' rows."""
    outside = sum(r["outside"] for r in rows)
    known = [(r["main_gap"], seed_ranges()[r["cell"]]) for r in rows if r["cell"] in seed_ranges()]
    within = f"{sum(gap <= spread for gap, spread in known)} of {len(known)}" if known else "no board"
    return (
        f"| {method} | {len(rows)} | {max(r['main_gap'] for r in rows):.4f} | {min(r['fvu_gap'] for r in rows):+.1%} to "
        f"{max(r['fvu_gap'] for r in rows):+.1%} | {outside} | {within} | {sum(r['fit_s'] for r in rows):.0f} / "
        f"{sum(r['long_fit_s'] for r in rows):.0f} |"
    )


@cache
def seed_ranges() -> dict[str, float]:
    """Max minus min main score over the committed board's seeds, by convergence cell label
    ("task method wN-kK"); empty without a board."""
    scores: dict[str, list[float]] = defaultdict(list)
    for path in BOARD.glob("*.json"):
        for record in json.loads(path.read_text())["records"]:
            if record["status"] == "ok":
                scores[label(record["task"], record["method"], Cell(**record["cell"]))].append(
                    record["metrics"][record["main_score"]]
                )
    return {name: max(values) - min(values) for name, values in scores.items() if len(values) > 1}


def _comparison(cells: dict) -> list[str]:
    lines = ["", "| cell | FVU ours / SAELens | dead ours / SAELens | main ours / SAELens | fit s ours / SAELens | speed-up |",
             "|---|---|---|---|---|---|"]
    for name, row in cells.items():
        ours, theirs = row["ours"], row["saelens"]
        lines.append(
            f"| {name} | {ours['fvu']:.4f} / {theirs['fvu']:.4f} | {ours['dead_fraction']:.3f} / {theirs['dead_fraction']:.3f} "
            f"| {ours['main']:.4f} / {theirs['main']:.4f} | {ours['fit_s']:.1f} / {theirs['fit_s']:.1f} | {row['speedup']:.2f}x |"
        )
    return lines


if __name__ == "__main__":
    print(summarise(json.loads(Path(sys.argv[1]).read_text())), end="")
