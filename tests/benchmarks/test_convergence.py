"""Are the iterative baselines converged? Every cell of the default suite, each iterative baseline
at its default stopping rule against a run four times as long (the same method and seed).

The long run of an SAE trains exactly 4x the steps the default run took (``tol=-1``: the rule
never holds, and the anneal is the last tenth, as in the default run); NMF and ICA run 4x the
iterations (sparse coding: its pursuit-and-least-squares iterations) with tolerance 0, so they stop
earlier only where a whole window brings no improvement at all. Target (issue 19): every cell
within 0.01 main score and 5% relative FVU of its long run. extra_info has the largest gaps and
every cell outside the target; ``summary.py`` prints them.

Slow (about 5x the suite's fitting time): runs only under ``make benchmark``. Set
STRUCTURE_BENCH_CONVERGENCE_FROM to a finished ``structure-bench run`` folder (``make bench``'s
results/default) or to ``leaderboard`` (the committed board's seed-0 records) to take the default
runs from it instead of refitting them. STRUCTURE_BENCH_METHODS (comma-separated) narrows the
methods, as STRUCTURE_BENCH_TASKS narrows the tasks. STRUCTURE_BENCH_SAE_PARAMS (a JSON object,
e.g. '{"resample": true}') sets SAE parameters for both runs of every SAE cell, so a training
choice is measured the same way (its default runs are refitted, never read from a folder).
STRUCTURE_BENCH_CELLS (comma-separated labels as in the rows, "pizza-v2 topk-sae w512-k20") keeps
only those cells. STRUCTURE_BENCH_CONVERGENCE_FACTORS (comma-separated, default "4") sets how many
times as long the long runs are: the gaps and the target are against the first, and every row's
``scores`` has main score, FVU and dead fraction at each length (is the 4x run itself converged?
"4,16"; ``summary.py`` tabulates them). STRUCTURE_BENCH_CONVERGENCE_TWIN (a relative change, e.g.
"1e-6") also fits, at every SAE cell, a twin of the default run and of the first long run (the same
length) with the learning rate changed by that share: two runs that differ in their last bits, so
a gap the twins also show is not one a stopping rule could close (``summary.py`` counts them).
"""

import json
import os

import pytest

import structure_bench as sb

from sweep import Fit, applies, label, records_from, run_fits, suite_cells

SAES = ("relu-sae", "topk-sae", "batchtopk-sae", "matryoshka-sae")
ITERATIVE = (*SAES, "sparse-coding", "nmf", "ica")
MAIN_GAP, FVU_GAP = 0.01, 0.05


def longer_params(method: str, training: dict, factor: int) -> dict:
    """The parameters of the run ``factor`` times as long as a default run that ended with ``training``."""
    if method in SAES:
        return {"max_steps": factor * training["steps"], "tol": -1.0}
    return {"max_iter": factor * max(training["steps"], 1), "tol": 0.0}


def gaps(default: dict, long: dict) -> tuple[float, float]:
    """(|main score difference|, relative FVU gap (default - long) / long) of two records."""
    main = abs(default["metrics"][default["main_score"]] - long["metrics"][long["main_score"]])
    fvu_default, fvu_long = default["metrics"]["fvu"], long["metrics"]["fvu"]
    return main, (fvu_default - fvu_long) / max(fvu_long, 1e-6)


def outside(main: float, fvu: float) -> bool:
    """Whether gaps (``gaps``) are beyond the target: 0.01 main score or 5% relative FVU."""
    return main > MAIN_GAP or abs(fvu) > FVU_GAP


def beyond_target(default: dict, long: dict) -> bool:
    """Whether two records are further apart than the target."""
    return outside(*gaps(default, long))


def scores(record: dict) -> list[float]:
    """[main score, FVU, dead fraction] of a record, rounded for the rows."""
    metrics = record["metrics"]
    return [round(metrics[record["main_score"]], 4), round(metrics["fvu"], 5), round(metrics.get("dead_fraction", float("nan")), 3)]


@pytest.mark.slow
def test_convergence(benchmark) -> None:
    methods = [m for m in ITERATIVE if m in os.environ.get("STRUCTURE_BENCH_METHODS", ",".join(ITERATIVE)).split(",")]
    cells = [(task, cell, method) for task, cell in suite_cells() for method in methods if applies(method, task)]
    if os.environ.get("STRUCTURE_BENCH_CELLS"):
        wanted = set(os.environ["STRUCTURE_BENCH_CELLS"].split(","))
        labelled = {label(task, method, cell): (task, cell, method) for task, cell, method in cells}
        if unknown := wanted - labelled.keys():
            pytest.fail(f"STRUCTURE_BENCH_CELLS: no such cell in the narrowed suite: {', '.join(sorted(unknown))}")
        cells = [unit for name, unit in labelled.items() if name in wanted]
    factors = [int(f) for f in os.environ.get("STRUCTURE_BENCH_CONVERGENCE_FACTORS", "4").split(",")]
    lengths = [f"{factor}x" for factor in (1, *factors)]
    sae_params = json.loads(os.environ.get("STRUCTURE_BENCH_SAE_PARAMS", "{}"))
    if sae_params and os.environ.get("STRUCTURE_BENCH_CONVERGENCE_FROM"):
        pytest.fail("STRUCTURE_BENCH_SAE_PARAMS changes the default runs: they cannot come from STRUCTURE_BENCH_CONVERGENCE_FROM")
    have = records_from(os.environ.get("STRUCTURE_BENCH_CONVERGENCE_FROM"))
    twin = float(os.environ.get("STRUCTURE_BENCH_CONVERGENCE_TWIN", "0"))
    rows: list[dict] = []

    def run() -> None:
        defaults = [Fit(method, task, cell, sae_params if method in SAES else {}) for task, cell, method in cells]
        missing = [fit for fit in defaults if fit.key not in have]
        have.update(zip([fit.key for fit in missing], run_fits(missing)))
        records = [have[fit.key] for fit in defaults]
        fits = [
            Fit(f.method, f.task, f.cell, {**f.params, **longer_params(f.method, r["training"], factor)})
            for factor in factors for f, r in zip(defaults, records)
        ]
        twinned = [bool(twin) and fit.method in SAES for fit in defaults]
        twins = [
            Fit(f.method, f.task, f.cell, {**f.params, **length, "lr": r["params"]["lr"] * (1 + twin)})
            for f, r, has_twin in zip(defaults, records, twinned) if has_twin
            for length in ({}, longer_params(f.method, r["training"], factors[0]))
        ]
        done = run_fits(fits + twins)
        longs, twin_runs = done[: len(fits)], iter(done[len(fits) :])
        for i, (fit, default) in enumerate(zip(defaults, records, strict=True)):
            runs = longs[i :: len(defaults)]
            main, fvu = gaps(default, runs[0])
            if twinned[i]:
                pair = next(twin_runs), next(twin_runs)
                twin_gaps = {
                    length: dict(zip(("main_gap", "fvu_gap"), (round(g, 4) for g in gaps(one, other)), strict=True))
                    for length, one, other in zip(lengths[:2], (default, runs[0]), pair, strict=True)
                }
            else:
                twin_gaps = None
            rows.append({
                "cell": label(fit.task, fit.method, fit.cell), "method": fit.method,
                "main_gap": round(main, 4), "fvu_gap": round(fvu, 4),
                "steps": default["training"]["steps"], "converged": default["training"]["converged"],
                "fit_s": round(default["provenance"]["fit_time_s"], 2), "long_fit_s": round(runs[0]["provenance"]["fit_time_s"], 2),
                "outside": outside(main, fvu),
                "scores": dict(zip(lengths, map(scores, [default, *runs]), strict=True)),
                # Is the first long run within the target of the longest (converged by then)?
                "long_settled": not beyond_target(runs[0], runs[-1]),
                # The same runs with the learning rate changed in its last bits (None: not asked for).
                "twin": twin_gaps,
            })

    benchmark.pedantic(run, rounds=1, iterations=1)
    beyond = [r for r in rows if r["outside"]]
    benchmark.extra_info["cells"] = len(rows)
    benchmark.extra_info["lengths"] = lengths
    benchmark.extra_info["largest_main_gap"] = max(rows, key=lambda r: r["main_gap"])
    benchmark.extra_info["largest_fvu_gap"] = max(rows, key=lambda r: abs(r["fvu_gap"]))
    benchmark.extra_info["not_converged"] = [r["cell"] for r in rows if not r["converged"]]
    benchmark.extra_info["outside_target"] = beyond
    benchmark.extra_info["rows"] = rows
    assert rows
