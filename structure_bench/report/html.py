"""Assemble a self-contained HTML report: inline CSS, PNGs embedded as data: URIs, no links out."""

from __future__ import annotations

import base64
import html
import io
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from structure_bench.report.figures import FigureSpec

PNG_DPI = 90
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1500px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 2.5em; border-bottom: 1px solid #aaa; }
table { border-collapse: collapse; font-size: 12px; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; } th { background: #f2f2f2; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; } .note { background: #fff7e0; padding: 0.5em 1em; }
nav li { margin: 2px 0; }
"""


@dataclass
class Section:
    """One (task, site) of the report: notes, tables (caption -> DataFrame), and figures, each
    rendered to HTML (an embedded PNG) as it is added so that no Figure stays in memory."""

    title: str
    notes: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return re.sub(r"[^A-Za-z0-9_-]+", "-", self.title).strip("-")

    def add_figure(self, spec: FigureSpec, method: str | None = None) -> None:
        """Add a figure of one method, or (method None) one across methods."""
        self.figures.append(figure_html(self.title, method, spec))


def png_data_uri(spec: FigureSpec) -> str:
    """The figure as a base64 PNG data: URI."""
    buffer = io.BytesIO()
    spec.figure.savefig(buffer, format="png", dpi=PNG_DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, float_format=lambda v: f"{v:.3f}", na_rep="")


def figure_html(section_title: str, method: str | None, spec: FigureSpec) -> str:
    """A <figure> tagged with its kind, section and method (the tests count them)."""
    attributes = f'data-kind="{html.escape(spec.kind)}" data-section="{html.escape(section_title)}"'
    if method is not None:
        attributes += f' data-method="{html.escape(method)}"'
    caption = (f"{method}: " if method else "") + spec.caption
    return (
        f"<figure {attributes}><img src=\"{png_data_uri(spec)}\" alt=\"{html.escape(caption)}\">"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def section_html(section: Section) -> str:
    parts = [f'<h2 id="{section.anchor}">{html.escape(section.title)}</h2>']
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in section.notes]
    for caption, frame in section.tables.items():
        parts += [f"<h3>{html.escape(caption)}</h3>", table_html(frame)]
    parts += section.figures
    return "\n".join(parts)


def render_page(title: str, intro: list[str], sections: list[Section]) -> str:
    """The whole page: title, introduction, a table of contents, then each section."""
    contents = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    body = "\n".join(section_html(section) for section in sections)
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in intro)
    return (
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{paragraphs}"
        f"<nav><h2>Contents</h2><ul>{contents}</ul></nav>\n{body}\n</body></html>\n"
    )
