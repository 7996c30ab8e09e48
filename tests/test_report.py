"""The HTML report: produced by `run --plots` and `report`, self-contained, one figure per (task, method)."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import mini_pizza  # noqa: F401  (registers mini-pizza-v1)
import numpy as np
import pandas as pd
import pytest
import toy_task  # noqa: F401  (registers toy-v1)

from structure_bench.cli import main
from structure_bench.registry import list_tasks
from structure_bench.report import write_report
from structure_bench.planning import plan
from structure_bench.results import CODES_DIR
from structure_bench.runner import run
from structure_bench.structures import Directions, Subspaces
from structure_bench.task import Cell

pytest.importorskip("matplotlib")

METHODS = ["toy_task:LeastSquares", "mini_pizza:NonNegative"]
PIZZA_KINDS = ("pizza-ab", "pizza-cd", "pizza-phases")


class ReportParser(HTMLParser):
    """Collects every src/href, the (kind, section, method) of every <figure>, the page's outline
    in order (("answers", None) where the answers block opens, ("answer", section) for each of its
    subsections, ("contents", None), ("section", anchor) for each section's heading), and per
    answer its sentences (<li>) and the kinds of its figures."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.figures: Counter[tuple[str, str, str | None]] = Counter()
        self.text: list[str] = []
        self.outline: list[tuple[str, str | None]] = []
        self.answers: dict[str, dict[str, list[str]]] = {}
        self.answer: dict[str, list[str]] | None = None  # the answer being read
        self.in_item = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.links += [value or "" for name, value in attrs if name in ("src", "href")]
        if tag == "figure":
            self.figures[(found["data-kind"], found["data-section"], found.get("data-method"))] += 1
            if self.answer is not None:
                self.answer["figures"].append(found["data-kind"])
        elif tag == "section" and found.get("id") == "answers":
            self.outline.append(("answers", None))
        elif tag == "section" and found.get("class") == "answer":
            self.outline.append(("answer", found["data-section"]))
            self.answer = self.answers[found["data-section"]] = {"sentences": [], "figures": []}
        elif tag == "nav":
            self.outline.append(("contents", None))
        elif tag == "h2" and found.get("id"):
            self.outline.append(("section", found["id"]))
        elif tag == "li" and self.answer is not None:
            self.answer["sentences"].append("")
            self.in_item = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.answer = None
        elif tag == "li":
            self.in_item = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.in_item:
            self.answer["sentences"][-1] += data


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
        assert link.startswith(("data:image/webp;base64,", "#")), link[:60]
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


def test_finding_sentence_says_the_numbers_of_the_showcase_cell() -> None:
    from structure_bench.report.answers import answer_numbers, class_phrases, finding_sentence, shown_numbers

    cell = Cell(256, 3)
    ids = {"method": ["sae", "sae", "pca", "failed"], "n_latents": [256, 64, 256, 256], "l0_target": 3}
    summary = pd.DataFrame(ids | {
        "task": "t", "site": "hidden", "main_score_name": "frequencies/subspace_f", "main_score": [0.436, 0.9, 0.2, np.nan],
        "main_score_norm": [0.44, 0.91, np.nan, np.nan], "fvu": [0.143, 0.5, 0.3, np.nan], "l0": [3.0, 3.0, 256.0, np.nan],
        "dead_fraction": [0.25, 0.0, 0.0, np.nan],
    })
    profiles = pd.DataFrame(ids | {"neurons/mcc": [0.12, 0.95, 0.3, np.nan], "frequencies/purity": [0.58, 0.1, 0.2, np.nan],
                                   "frequencies/subspace_f": [0.436, 0.9, 0.2, np.nan]})
    shares = {"dead": [0, 0, 0], "aligned": [0, 1, 0], "dense": [0.03, 0, 1], "tile": [0, 0, 0], "pure": [0.26, 0, 0],
              "mixture": [0.71, 0, 0]}
    latents = pd.DataFrame({"method": ["sae", "sae", "pca"], "n_latents": [256, 64, 256], "l0_target": 3}
                           | {f"var[{name}]": values for name, values in shares.items()} | {"fvu_omp": [0.098, 0.4, np.nan]})
    eye = np.eye(4)
    phrases = class_phrases({"neurons": Directions("neurons", eye), "frequencies": Subspaces("frequencies", [eye[:2], eye[2:]])})
    numbers = answer_numbers(summary, profiles, latents, ["neurons/mcc", "frequencies/purity", "frequencies/subspace_f"], cell)
    assert list(numbers.method) == ["failed", "pca", "sae"]
    failed, pca, sae = (finding_sentence(row, "frequencies/subspace_f", phrases) for _, row in numbers.iterrows())

    assert sae == (
        "sae: 71% of the code variance in latents mixed across parts of frequencies, 26% in latents pure in one part "
        "of frequencies; 25% of the latents dead; frequencies/subspace_f 0.436 (normalised 0.44); highest other "
        "profile score frequencies/purity 0.58; FVU 0.143 at L0 3 (OMP codes on its decoder at L0 3: 0.098)."
    )
    assert "3%" not in sae and "0.95" not in sae  # a class under 5% and the other cell's numbers stay out
    assert pca.startswith("pca: 100% of the code variance in dense latents")
    assert "normalised" not in pca and "OMP" not in pca and "dead" not in pca  # NaN and zero are left out
    assert failed == "failed: no successful fit at this cell."
    shown = shown_numbers(numbers, "frequencies/subspace_f")
    assert "frequencies/subspace_f" in shown.columns and "l0_target" not in shown.columns
    assert {"var[dense]", "var[pure]", "var[mixture]"} <= set(shown.columns)
    assert not {"var[dead]", "var[aligned]", "var[tile]"} & set(shown.columns)


def test_the_page_answers_first_one_subsection_per_task_and_site(tmp_path: Path) -> None:
    methods = ["oracle", "toy_task:LeastSquares"]
    run(plan(["toy-v1", "mini-pizza-v1"], methods, seeds=[0]), tmp_path, progress=False, save_codes=True)
    report = parse(write_report(tmp_path))
    assert [kind for kind, _ in report.outline] == ["answers", "answer", "answer", "contents", "section", "section"]
    assert set(report.answers) == {"toy-v1 / hidden", "mini-pizza-v1 / hidden"}
    for section, answer in report.answers.items():
        assert [sentence.split(": ")[0] for sentence in answer["sentences"]] == methods
        assert all("FVU" in sentence for sentence in answer["sentences"])
        assert answer["figures"] == ["latent-classes"]
        assert report.figures[("latent-classes", section, None)] == 1  # drawn once: the section links to it
    pizza = report.answers["mini-pizza-v1 / hidden"]["sentences"]
    assert "of the code variance in latents aligned with one of the neurons directions" in pizza[0]
