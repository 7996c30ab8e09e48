"""A readable summary of a pytest-benchmark JSON file: `python tests/benchmarks/summary.py benchmarks.json`.

Prints one line per benchmark (best and mean seconds, and its extra_info) and the top-k SAE
throughput ratios (ours over the naive loop and over SAELens, measured round by round in one run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def summarise(results: dict) -> str:
    """Markdown text from pytest-benchmark's JSON ``results``."""
    lines = [f"Machine: {results['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
             f"{results['machine_info'].get('cpu', {}).get('count', '?')} cores; {results['datetime']}", "",
             "| benchmark | best s | mean s | notes |", "|---|---|---|---|"]
    ratios: list[str] = []
    for bench in results["benchmarks"]:
        stats, extra = bench["stats"], bench.get("extra_info", {})
        notes = "; ".join(f"{k}={v}" for k, v in extra.items())
        lines.append(f"| {bench['name']} | {stats['min']:.3f} | {stats['mean']:.3f} | {notes} |")
        throughput = extra.get("samples_per_s")
        for other in ("naive", "saelens"):
            if isinstance(throughput, dict) and f"ours_over_{other}" in extra:
                ratio = extra[f"ours_over_{other}"]
                ratios.append(f"Top-k SAE training, batch {bench['param']}: ours / {other} = {ratio['median']:.2f}x "
                              f"(median of rounds, range {ratio['min']:.2f}-{ratio['max']:.2f}; best rounds "
                              f"{throughput['ours']} vs {throughput[other]} samples/s)")
    lines += [""] + ratios if ratios else []
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summarise(json.loads(Path(sys.argv[1]).read_text())), end="")
