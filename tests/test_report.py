"""The HTML report: produced by `run --plots` and `report`, self-contained, one figure per (task, method)."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import mini_pizza  # noqa: F401  (registers mini-pizza-v1)
import numpy as np
import pytest
import toy_task  # noqa: F401  (registers toy-v1)

from structure_bench.cli import main
from structure_bench.registry import list_tasks
from structure_bench.report import write_report
from structure_bench.planning import plan
from structure_bench.results import CODES_DIR
from structure_bench.runner import run
from structure_bench.task import Cell

pytest.importorskip("matplotlib")

METHODS = ["toy_task:LeastSquares", "mini_pizza:NonNegative"]
PIZZA_KINDS = ("pizza-ab", "pizza-cd", "pizza-phases")


class ReportParser(HTMLParser):
    """Collects every src/href and the (kind, section, method) of every <figure>."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.figures: Counter[tuple[str, str, str | None]] = Counter()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]
        if tag == "figure":
            self.figures[(found["data-kind"], found["data-section"], found.get("data-method"))] += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> ReportParser:
    parser = ReportParser()
    parser.feed(path.read_text())
    return parser


def test_run_with_plots_writes_a_self_contained_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["run", "--quiet", "--plots", "--out", str(out), "--seeds", "0", "1", "--methods", *METHODS]
    # NonNegative's NMF cannot fit 12 latents on toy-v1's 8 dims: a failed fit, so exit status 1
    # (the report lists it); --allow-failures keeps the status 0.
    assert main([*common, "--tasks", "toy-v1"]) == 1
    assert main([*common, "--tasks", "toy-v1", "--allow-failures"]) == 0
    assert main([*common, "--tasks", "mini-pizza-v1"]) == 0
    # codes are saved for the first seed of each config only
    codes = sorted(p.name for p in (out / CODES_DIR).glob("*.npy"))
    assert codes and all(name.endswith("__s0.npy") for name in codes)
    report = parse(out / "report.html")

    assert report.links, "the report has images"
    for link in report.links:
        assert link.startswith(("data:image/png;base64,", "#")), link[:60]
    assert "http://" not in (out / "report.html").read_text() and "https://" not in (out / "report.html").read_text()

    for section in ("toy-v1 / hidden", "mini-pizza-v1 / hidden"):
        for method in METHODS:
            assert report.figures[("similarity", section, method)] == 1
        assert report.figures[("frontier", section, None)] == 1
        assert report.figures[("profile", section, None)] == 1
    for method in METHODS:
        for kind in PIZZA_KINDS:
            assert report.figures[(kind, "mini-pizza-v1 / hidden", method)] == 1
        assert report.figures[("pizza-ab", "toy-v1 / hidden", method)] == 0


def test_report_without_codes_has_fewer_figures_and_says_why(tmp_path: Path) -> None:
    run(plan(["mini-pizza-v1"], ["mini_pizza:NonNegative"], seeds=[0]), tmp_path, progress=False)
    html = tmp_path / "elsewhere" / "pizza.html"
    assert main(["report", str(tmp_path), "--out", str(html)]) == 0
    report = parse(html)
    section, method = "mini-pizza-v1 / hidden", "mini_pizza:NonNegative"
    assert report.figures[("similarity", section, method)] == 1
    assert report.figures[("pizza-phases", section, method)] == 1  # drawn from the decoder alone
    assert report.figures[("pizza-ab", section, method)] == 0
    assert "codes not saved for mini_pizza:NonNegative" in "".join(report.text)


def test_report_drawn_by_two_workers_is_the_serial_report(tmp_path: Path) -> None:
    run(plan(["toy-v1", "mini-pizza-v1"], ["oracle"], seeds=[0]), tmp_path, progress=False, save_codes=True)
    serial = write_report(tmp_path, tmp_path / "serial.html").read_text()
    assert write_report(tmp_path, tmp_path / "parallel.html", jobs=2).read_text() == serial


def test_circles_are_drawn_where_the_truth_is_two_dimensional_subspaces(tmp_path: Path) -> None:
    run(plan(["mini-pizza-v1"], ["toy_task:LeastSquares"], seeds=[0], site="embed"), tmp_path, progress=False, save_codes=True)
    report = parse(write_report(tmp_path))
    assert report.figures[("circles", "mini-pizza-v1 / embed", "toy_task:LeastSquares")] == 1


def test_report_of_an_empty_directory_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "records").mkdir()
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


@pytest.mark.skipif("pizza-ideal-v1" not in list_tasks(), reason="pizza-ideal-v1 not registered yet")
def test_pizza_ideal_report_has_the_pizza_figures(tmp_path: Path) -> None:
    from structure_bench.methods import list_methods

    method = "pca" if "pca" in set(list_methods()["name"]) else "toy_task:LeastSquares"
    cell = plan(["pizza-ideal-v1"], [method], seeds=[0])[0].cell
    run(plan(["pizza-ideal-v1"], [method], seeds=[0], cells=[Cell(cell.n_latents, cell.l0_target)]), tmp_path,
        progress=False, save_codes=True)
    report = parse(write_report(tmp_path))
    for kind in ("similarity", *PIZZA_KINDS):
        assert report.figures[(kind, "pizza-ideal-v1 / hidden", method)] == 1, kind
    assert np.load(next((tmp_path / CODES_DIR).glob("*.npy"))).dtype == np.float16


def test_plane_panel_without_latents_is_drawn() -> None:
    # On the default suite a circle plane can have no latent pointing into it: draw the data alone.
    from structure_bench.report.figures import latents_on_plane

    points = np.random.default_rng(0).normal(size=(1, 50, 2))
    figure = latents_on_plane(
        points, None, np.zeros((1, 4, 2)), [np.array([], dtype=int)], ["plane 0"], ("x", "y"), "no latents"
    )
    assert len(figure.axes) == 1
