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
    throughput = {}
    for bench in results["benchmarks"]:
        stats, extra = bench["stats"], bench.get("extra_info", {})
        notes = "; ".join(f"{k}={v}" for k, v in extra.items())
        lines.append(f"| {bench['name']} | {stats['min']:.3f} | {stats['mean']:.3f} | {notes} |")
        if "samples_per_s" in extra:
            throughput[bench["param"]] = extra["samples_per_s"]
    if "ours" in throughput:
        lines.append("")
        for other in ("naive", "saelens"):
            if other in throughput:
                ratio = throughput["ours"] / throughput[other]
                lines.append(f"Top-k SAE training: ours / {other} = {ratio:.2f}x "
                             f"({throughput['ours']} vs {throughput[other]} samples/s)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(summarise(json.loads(Path(sys.argv[1]).read_text())), end="")
