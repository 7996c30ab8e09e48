"""The HTML report of a results directory: tables and figures of what the latents found.

``write_report(results_dir)`` reads the records, decoders and (when ``run --plots`` saved them)
the codes of every sample, and writes one self-contained HTML file. It opens with what each
method found, per (task, site): a sentence per method from its latent classes and profile
(``report/answers.py``), the one figure that shows it and the numbers behind them. Then per
(task, site): the summary and profile tables, metric-versus-L0 and -width frontiers, the profile
as bars, and per method (at one showcase cell, first seed) the latents against the ground truth,
plus the figures of the task's kind: latents over the (a, b) and (c, a - b) grids of
modular-arithmetic tasks, decoders against neuron phases where neurons carry a frequency and phase
(the pizzas), latents on true circles (2-D subspaces) and on the manifold task's curve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.report.answers import answer_numbers, class_phrases, finding_sentence, shown_numbers
from structure_bench.report.curves import circle_figures, curve_figures
from structure_bench.report.figures import (
    FigureSpec,
    class_bars,
    frontier,
    method_colours,
    profile_bars,
    require_matplotlib,
    similarity_figure,
)
from structure_bench.report.html import Answer, Section, render_page
from structure_bench.report.pizza import pizza_figures
from structure_bench.results import CODES_DIR, load_results, write_text
from structure_bench.registry import load_task
from structure_bench.summary import latent_view, profile, profile_columns, summarise
from structure_bench.task import Cell, Task

REPORT_NAME = "report.html"
# Each takes (task, site, decoder, codes or None, title) and returns the figures that apply
# to the task (none when its inputs or structures are not of the kind the figure draws).
TASK_FIGURES: tuple[Callable[[Task, str, np.ndarray, "np.ndarray | None", str], list[FigureSpec]], ...] = (
    pizza_figures, circle_figures, curve_figures,
)
NOT_SCORES = ("fvu", "l0")  # profile columns that are not on a 0-1 scale
# The figure of a section's answer: the first of these kinds it has (latent classes show best what
# the latents are; the profile what they align with; the frontier is always drawn).
ANSWER_FIGURES = ("latent-classes", "profile", "frontier")


def showcase_cell(rows: pd.DataFrame, task: Task, site: str) -> Cell:
    """The cell the per-method figures are drawn at: the one most methods finished, ties going to
    the width closest to the size of the primary structure."""
    ok = rows[(rows.status == "ok") & rows.decoder_file.notna()]
    try:
        size = task.primary_structure(site).size
    except StructureBenchError:
        size = int(ok.n_latents.median())
    counts = ok.groupby(["n_latents", "l0_target"]).method.nunique()
    best = max(counts.index, key=lambda cell: (counts[cell], -abs(np.log(cell[0] / max(size, 1))), -cell[1]))
    return Cell(int(best[0]), int(best[1]))


def add_method_figures(
    section: Section, results_dir: Path, rows: pd.DataFrame, task: Task, site: str, cell: Cell
) -> list[str]:
    """Add, per method at ``cell`` (lowest ok seed), the similarity heatmap and the family's
    figures. Returns the methods whose codes were not saved."""
    without_codes = []
    truth = task.primary_structure(site, "all")
    at_cell = rows[(rows.status == "ok") & rows.decoder_file.notna()
                   & (rows.n_latents == cell.n_latents) & (rows.l0_target == cell.l0_target)]
    for method, runs in at_cell.sort_values("seed").groupby("method", sort=True):
        record = runs.iloc[0]
        decoder_path = results_dir / record.decoder_file
        if not decoder_path.exists():
            continue
        decoder = np.load(decoder_path).astype(np.float64)
        codes_path = results_dir / CODES_DIR / decoder_path.name
        codes = np.load(codes_path) if codes_path.exists() else None
        if codes is None:
            without_codes.append(method)
        title = f"{task.id}/{site} · {method} · {cell.name} · seed {record.seed}"
        specs = [similarity_figure(truth, decoder, title)]
        for figures in TASK_FIGURES:
            specs += figures(task, site, decoder, codes, title)
        for spec in specs:
            if spec is not None:
                section.add_figure(spec, method)
    return without_codes


def task_section(results_dir: Path, frame: pd.DataFrame, summary: pd.DataFrame, task_id: str, site: str) -> Section:
    """Tables and figures of one (task, site), and its answer: what each method found at the
    showcase cell (without a successful fit or the task, the reason why)."""
    rows = frame[(frame.task == task_id) & (frame.site == site)]
    table = summary[(summary.task == task_id) & (summary.site == site)]
    main_score = table.main_score_name.iloc[0]
    section = Section(f"{task_id} / {site}")
    section.tables[f"summary: main score {main_score} (norm: random 0, oracle 1)"] = table.drop(
        columns=["task", "site", "main_score_name"]
    )
    colours = method_colours(sorted(frame.method.unique()))
    section.add_figure(FigureSpec(
        "frontier", "main score and FVU against achieved L0, and main score against width (means over seeds)",
        frontier(table, colours, f"{task_id}/{site}: frontiers across methods", main_score),
    ))
    try:
        task = load_task(task_id)
    except StructureBenchError as exc:
        section.notes.append(f"figures from the ground truth skipped: {exc}")
        section.set_answer(Answer(None, section.notes[-1:], pd.DataFrame()), ANSWER_FIGURES)
        return section
    if set(rows.task_identity) != {task.identity}:
        section.notes.append(
            f"some records were made on another version of {task_id} than it is now (identity differs): "
            "the figures draw the current task's inputs and ground truth"
        )
    if not ((rows.status == "ok") & rows.decoder_file.notna()).any():
        section.notes.append("no successful fit: no per-method figures")
        section.set_answer(Answer(None, section.notes[-1:], pd.DataFrame()), ANSWER_FIGURES)
        return section
    profiles = profile(frame, task_id, site)
    section.tables["profile: what do the latents align with? (means over seeds)"] = profiles
    cell = showcase_cell(rows, task, site)
    structures = task.structures(site, "test")
    columns = [c for c in profile_columns(profiles, structures) if c not in NOT_SCORES]
    at_cell = profiles[(profiles.n_latents == cell.n_latents) & (profiles.l0_target == cell.l0_target)]
    section.add_figure(FigureSpec(
        "profile", f"eta^2 of each candidate variable, purity of each structure, MCC and task metrics at {cell.name}",
        profile_bars(at_cell, columns, colours, f"{task_id}/{site} at {cell.name}: profile per method"),
    ))
    latents = latent_view(frame, task_id, site)
    if not latents.empty:
        section.tables["what each latent is: share of code variance per class, curve measures, FVU against OMP codes "
                       "for the method's own decoder and the best reference within the cell's L0 (metrics/latents.py)"] = latents
        at_cell = latents[(latents.n_latents == cell.n_latents) & (latents.l0_target == cell.l0_target)]
        section.add_figure(FigureSpec(
            "latent-classes", f"share of each method's code variance per latent class at {cell.name}",
            class_bars(at_cell, f"{task_id}/{site} at {cell.name}: what the latents are"),
        ))
    numbers = answer_numbers(table, profiles, latents, columns, cell)
    phrases = class_phrases(structures)
    sentences = [finding_sentence(row, main_score, phrases) for _, row in numbers.iterrows()]
    section.set_answer(Answer(cell, sentences, shown_numbers(numbers, main_score)), ANSWER_FIGURES)
    without_codes = add_method_figures(section, results_dir, rows, task, site, cell)
    if without_codes:
        section.notes.append(
            f"codes not saved for {', '.join(without_codes)}: per-latent figures over the inputs are missing; "
            "re-run into a fresh directory with `structure-bench run --plots` to draw them"
        )
    return section


def single_threaded_section(results_dir: Path, frame: pd.DataFrame, summary: pd.DataFrame, task_id: str, site: str) -> Section:
    """``task_section`` with one BLAS thread, for a worker of a pool that fills the cores: BLAS
    threads on top spin against the other workers (the manifold plane's 8000 x 32 SVD: 5 ms on
    one thread, up to 1.7 s with two threads a worker on two cores)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return task_section(results_dir, frame, summary, task_id, site)


def write_report(results_dir: str | Path, out_html: str | Path | None = None, jobs: int = 1) -> Path:
    """Write the HTML report of ``results_dir`` (default: results_dir/report.html); returns its path.

    jobs : worker processes drawing the (task, site) sections at once (drawing is most of the time).
    """
    require_matplotlib("the report's figures")
    results_dir = Path(results_dir)
    out_html = Path(out_html) if out_html is not None else results_dir / REPORT_NAME
    frame = load_results(results_dir)
    if frame.empty:
        raise StructureBenchError(f"no results in {results_dir}: nothing to report")
    summary = summarise(frame, results_dir)
    work = [(results_dir, frame, summary, task_id, site) for (task_id, site), _ in frame.groupby(["task", "site"], sort=True)]
    if jobs > 1 and len(work) > 1:
        from structure_bench.executors import Registrations, spawn_pool

        registrations = Registrations.of(frame.task.unique())
        with spawn_pool(min(jobs, len(work)), registrations) as pool:  # sections come back in order
            sections = pool.starmap(single_threaded_section, work, chunksize=1)
    else:
        sections = [task_section(*args) for args in work]
    failed = frame[frame.status == "failed"]
    intro = [
        f"{len(frame)} records from {results_dir.resolve()}: {frame.task.nunique()} tasks, "
        f"{frame.method.nunique()} methods, {len(failed)} failed fits.",
        "Colours: viridis for activations and similarities (0 to 1), red-blue for signed decoder "
        "weights, one fixed colour per method in every cross-method plot (oracle black, random grey).",
    ] + [f"failed: {error}" for error in failed.error]
    page = render_page(f"structure_bench report: {results_dir.name}", intro, sections)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    write_text(out_html, page)  # atomic: a reader sees the old report or the new one, never half
    return out_html


__all__ = ["write_report"]
