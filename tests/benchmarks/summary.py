"""A readable summary of a pytest-benchmark JSON file: `python tests/benchmarks/summary.py benchmarks.json`.

Prints one line per benchmark (best and mean seconds, and its extra_info) and the top-k SAE
throughput ratios (ours over the naive loop and over SAELens), which only mean something within
one run.
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
    throughput: dict[tuple[str, str], int] = {}
    for bench in results["benchmarks"]:
        stats, extra = bench["stats"], bench.get("extra_info", {})
        notes = "; ".join(f"{k}={v}" for k, v in extra.items())
        lines.append(f"| {bench['name']} | {stats['min']:.3f} | {stats['mean']:.3f} | {notes} |")
        if "samples_per_s" in extra:
            # The id joins the implementation's name and the batch size, e.g. "ours-256".
            parts = bench["param"].split("-")
            batch = next(p for p in parts if p.isdigit())
            name = next(p for p in parts if not p.isdigit())
            throughput[(name, batch)] = extra["samples_per_s"]
    for (name, batch), ours in sorted(throughput.items()):
        if name != "ours":
            continue
        lines.append("")
        for other in ("naive", "saelens"):
            if (other, batch) in throughput:
                theirs = throughput[(other, batch)]
                lines.append(f"Top-k SAE training, batch {batch}: ours / {other} = {ours / theirs:.2f}x "
                             f"({ours} vs {theirs} samples/s)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summarise(json.loads(Path(sys.argv[1]).read_text())), end="")
