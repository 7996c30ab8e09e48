"""leaderboard/index.html: one self-contained page (inline CSS, JS and SVG; no external URLs).

Tables sort when a header is clicked; ``index.html#sort=TABLE:COLUMN:asc|desc`` sorts on load
(the render test uses it). Each task gets main-score-versus-L0 and FVU-versus-L0 scatter plots,
one point per submission and cell (means over seeds).
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from structure_bench.leaderboard.model import Board
from structure_bench.leaderboard.tables import (
    BUDGET_NOTE,
    NO_BUDGET_ENTRY,
    NO_RANKED_ENTRY,
    RANK_NOTE,
    RANKING_HEADER,
    REFERENCE_HEADER,
    REFERENCE_NOTE,
    TASK_HEADER,
    UNRANKED_HEADER,
    UNRANKED_NOTE,
    UNVERIFIED_HEADER,
    UNVERIFIED_NOTE,
    cells_text,
    ranking_rows,
    reference_rows,
    separability_note,
    task_rows,
    unranked_rows,
    unverified_rows,
)
from structure_bench.leaderboard.scores import LEVEL

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
WIDTH, HEIGHT, MARGIN = 420, 280, (20, 20, 46, 58)  # top, right, bottom, left

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }
td.text { text-align: left; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th.asc::after { content: " \\25B2"; } th.desc::after { content: " \\25BC"; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.legend span { display: inline-block; margin-right: 1em; font-size: 0.85em; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.3em; border-radius: 50%; }
svg text { font-size: 11px; fill: #333; }
"""

SCRIPT = """
function sortTable(table, column, direction) {
  const body = table.tBodies[0];
  const key = row => {
    const cell = row.cells[column];
    const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    const number = parseFloat(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const order = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
    return direction === "asc" ? order : -order;
  });
  rows.forEach(row => body.appendChild(row));
  Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
    th.classList.remove("asc", "desc");
    if (i === column) th.classList.add(direction);
  });
  table.dataset.sorted = column + ":" + direction;
}
document.querySelectorAll("table.sortable").forEach(table => {
  Array.from(table.tHead.rows[0].cells).forEach((th, column) => th.addEventListener("click", () => {
    sortTable(table, column, th.classList.contains("asc") ? "desc" : "asc");
  }));
});
const request = /#sort=([\\w.-]+):(\\d+):(asc|desc)/.exec(location.hash);
if (request) {
  const table = document.getElementById(request[1]);
  if (table) sortTable(table, parseInt(request[2]), request[3]);
}
"""


def _cell(text: str, value: float | str | None = None) -> str:
    """A table cell; ``value`` is what it sorts by (numeric cells), text cells align left."""
    attribute = ' class="text"' if value is None else f' data-value="{html.escape(str(value))}"'
    return f"<td{attribute}>{html.escape(text)}</td>"


def _table(table_id: str, header: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]
    return [float(t) for t in np.linspace(low, high, 5)]


def scatter_svg(points: pd.DataFrame, x: str, y: str, x_label: str, y_label: str, colours: dict[str, str]) -> str:
    """An SVG scatter of ``points`` (columns submission, label, x, y); log x when x spans > 10x."""
    points = points[np.isfinite(points[x]) & np.isfinite(points[y])]
    if points.empty:
        return ""
    x_low, x_high = float(points[x].min()), float(points[x].max())
    log = x_low > 0 and x_high / x_low > 10
    if log:
        x_low, x_high = 10 ** math.floor(math.log10(x_low)), 10 ** math.ceil(math.log10(x_high))
    else:
        x_pad = 0.05 * (x_high - x_low) or 1.0
        x_low, x_high = x_low - x_pad, x_high + x_pad
    y_low, y_high = float(points[y].min()), float(points[y].max())
    pad = 0.05 * (y_high - y_low) or 0.05
    y_low, y_high = y_low - pad, y_high + pad
    top, right, bottom, left = MARGIN
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom

    def px(value: float) -> float:
        share = (math.log10(value) - math.log10(x_low)) / (math.log10(x_high) - math.log10(x_low)) if log else (value - x_low) / (x_high - x_low)
        return left + share * plot_w

    def py(value: float) -> float:
        return top + (1 - (value - y_low) / (y_high - y_low)) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for tick in _ticks(x_low, x_high, log):
        parts.append(f'<text x="{px(tick):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{tick:.3g}</text>')
    for tick in _ticks(y_low, y_high, False):
        parts.append(f'<text x="{left - 4}" y="{py(tick) + 4:.1f}" text-anchor="end">{tick:.3g}</text>')
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{py(tick):.1f}" y2="{py(tick):.1f}" stroke="#eee"/>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">{html.escape(x_label)}{" (log)" if log else ""}</text>')
    parts.append(f'<text transform="translate(12 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">{html.escape(y_label)}</text>')
    for row in points.itertuples():
        tip = f"{row.submission} {row.label}: L0 {getattr(row, x):.3g}, {y_label} {getattr(row, y):.4g}"
        parts.append(
            f'<circle cx="{px(getattr(row, x)):.1f}" cy="{py(getattr(row, y)):.1f}" r="4.5" fill="{colours[row.submission]}" '
            f'fill-opacity="0.8"><title>{html.escape(tip)}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _text_table(table_id: str, header: list[str], rows: list[list[str]], numeric: set[int]) -> str:
    """A sortable table of text cells; the columns in ``numeric`` sort as numbers."""
    body = [
        "<tr>" + "".join(_cell(text, text if i in numeric else None) for i, text in enumerate(cells)) + "</tr>"
        for cells in rows
    ]
    return _table(table_id, header, body)


def _note(text: str) -> str:
    return f"<p class='note'>{html.escape(text)}</p>"


def _ranking_table(board: Board, ranking: pd.DataFrame, table_id: str, empty: str) -> str:
    if not len(ranking):
        return _note(empty)
    # rank, mean task rank, tasks, L0 / target, mean FVU sort as numbers
    return _text_table(table_id, RANKING_HEADER, ranking_rows(board, ranking), {0, 3, 4, 5, 6}) + _note(separability_note(ranking))


def _overall_section(board: Board) -> str:
    parts = [
        "<h2>Overall</h2>", _note(RANK_NOTE), _ranking_table(board, board.ranking, "overall", NO_RANKED_ENTRY),
        "<h2>Within the budget</h2>", _note(BUDGET_NOTE), _ranking_table(board, board.budget_ranking, "budget", NO_BUDGET_ENTRY),
    ]
    if reference_rows(board):
        parts += ["<h2>References (unranked)</h2>", _note(REFERENCE_NOTE), _text_table("references", REFERENCE_HEADER, reference_rows(board), {2, 3, 4})]
    if unverified_rows(board):
        parts += [
            "<h2>Unverified: trained elsewhere, not re-run</h2>", _note(UNVERIFIED_NOTE),
            _text_table("unverified", UNVERIFIED_HEADER, unverified_rows(board), {4, 5}),
        ]
    if unranked_rows(board):
        parts += ["<h2>Not ranked</h2>", _note(UNRANKED_NOTE), _text_table("unranked", UNRANKED_HEADER, unranked_rows(board), set())]
    return "".join(parts)


def _task_section(board: Board, task_id: str, colours: dict[str, str]) -> str:
    entry = board.tasks[task_id]
    direction = "higher" if entry["higher_is_better"] else "lower"
    rows = []
    for (mark, name, *_), r in task_rows(board, task_id):
        rows.append(
            "<tr>" + _cell(mark, mark) + _cell(name) + _cell(f"{r.main_score:.4f}", r.main_score)
            + _cell(f"{r.low:.4f} to {r.high:.4f}", r.half_width) + _cell(f"{r.l0:.2f}", r.l0)
            + _cell(f"{r.fvu:.4f}", r.fvu) + _cell(str(r.seeds), r.seeds) + "</tr>"
        )
    table_id = "task-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in task_id)
    table = _table(table_id, TASK_HEADER, rows)
    cells = board.per_cell[board.per_cell.task == task_id].assign(
        label=lambda f: "w" + f.n_latents.astype(str) + "-k" + f.l0_target.astype(str)
    )
    present = sorted(cells.submission.unique())
    legend = "".join(
        f'<span><i class="swatch" style="background:{colours[name]}"></i>{html.escape(name)}</span>' for name in present
    )
    plots = scatter_svg(cells, "l0", "main_score", "L0 (achieved)", entry["main_score"], colours) + scatter_svg(
        cells, "l0", "fvu", "L0 (achieved)", "FVU", colours
    )
    return (
        f"<h2 id='{table_id}-section'>{html.escape(task_id)}</h2>"
        f"<p class='note'>Main score <code>{html.escape(entry['main_score'])}</code> ({direction} is better) at site "
        f"<code>{html.escape(entry['site'])}</code>; cells {html.escape(cells_text(entry))}; "
        f"task identity <code>{html.escape(entry['identity'][:12])}</code>"
        + (f"; FVU bound within the budget {board.fvu_bound[task_id]:.4f}" if task_id in board.fvu_bound else "")
        + ". Plots: one point per submission and cell (verified re-runs), means over seeds.</p>"
        + table + f"<div class='legend'>{legend}</div><div class='plots'>{plots}</div>"
    )


def render_html(board: Board) -> str:
    """The whole page as one string."""
    names = sorted(board.per_cell.submission.unique())
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
    sections = [_overall_section(board)] + [_task_section(board, t, colours) for t in board.tasks]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>structure_bench leaderboard</title>"
        f"<style>{STYLE}</style></head><body><h1>structure_bench leaderboard</h1>"
        f"<p class='note'>Generated by <code>structure-bench leaderboard</code> from {len(board.entries)} submission "
        "file(s) and their verifications; do not edit by hand. A task's main score is, per seed, the mean over its "
        f"cells; shown with a {LEVEL:.0%} t-interval over seeds. Click a column header to sort.</p>"
        + "".join(sections) + f"<script>{SCRIPT}</script></body></html>\n"
    )
