"""The leaderboard: submit checks a run, verify re-runs it, the pages are generated and render."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import toy_task  # noqa: F401  (registers toy-v1)

from structure_bench.cli import main
from structure_bench.leaderboard import SubmissionRejected, read_submission, submit, verify, write_board
from structure_bench.leaderboard.scores import budget_ranking, inseparable_pairs, l0_ratios, overall_ranking
from structure_bench.results import record_paths
from structure_bench.runner import plan, run

GOOD = "toy_leaderboard_methods:NoisyTruth"
OTHER = "toy_task:LeastSquares"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Finished 3-seed runs of two toy methods on toy-v1 (never modified: tests copy them)."""
    root = tmp_path_factory.mktemp("runs")
    for spec in (GOOD, OTHER):
        run(plan(["toy-v1"], [spec], seeds=[0, 1, 2]), root / spec, progress=False)
    return {spec: root / spec for spec in (GOOD, OTHER)}


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def _edit_records(run_dir: Path, edit: Callable[[dict], dict | None]) -> None:
    """Apply ``edit`` to every record file; a None result deletes the file."""
    for path in record_paths(run_dir):
        record = edit(json.loads(path.read_text()))
        if record is None:
            path.unlink()
        else:
            path.write_text(json.dumps(record))


def test_a_valid_run_is_submitted_verified_and_published(runs: dict[str, Path], tmp_path: Path) -> None:
    board = tmp_path / "board"
    assert main(["submit", str(runs[GOOD]), "--method", GOOD, "--tasks", "toy-v1", "--board", str(board)]) == 0
    document = read_submission(board / "submissions" / "NoisyTruth.json")
    assert document["method"]["import_spec"] == GOOD and document["seeds"] == [0, 1, 2]
    assert len(document["records"]) == 2 * 3 and document["package_version"]
    table = verify("NoisyTruth", board, out=tmp_path / "rerun", progress=False)
    assert table.passed.all() and (table.rerun != table.main_score).all()  # fresh seeds, same scores within band
    assert main(["leaderboard", "--board", str(board)]) == 0
    readme = (board / "README.md").read_text()
    assert re.search(r"\| 1 \| NoisyTruth \| `toy_leaderboard_methods:NoisyTruth` \| 1\.00 \| 1 \| [\d.]+ \| yes \|", readme)
    assert "## toy-v1" in readme and "95% interval" in readme
    page = (board / "index.html").read_text()
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?:", page)  # self-contained


@pytest.mark.parametrize(
    ("problem", "edit", "message"),
    [
        ("malformed file", None, r"w12-k2__s1\.json: unreadable result record"),
        ("missing cell", lambda r: None if r["cell"]["n_latents"] == 12 else r, r"missing cell: toy-v1 w12-k2 \(no records\)"),
        ("too few seeds", lambda r: None if r["seed"] == 2 else r, r"only 2 seed\(s\)"),
        ("NaN", lambda r: {**r, "metrics": {**r["metrics"], "features/mcc": None}}, r"non-finite metrics \(NaN/inf\): features/mcc"),
        ("wrong fingerprint", lambda r: {**r, "task_fingerprint": "0" * 64}, r"task fingerprint 000000000000… differs"),
        ("wrong main score", lambda r: {**r, "main_score": "fvu"}, r"main score is 'fvu' but the task's is 'features/mcc'"),
        ("other method", lambda r: {**r, "method": "random", "method_spec": "x:Random"}, r"record is of method 'random'"),
    ],
)
def test_submit_refuses_a_broken_run_naming_the_problem(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str, edit: Callable | None, message: str
) -> None:
    run_dir = _copy(runs[GOOD], tmp_path)
    if edit is None:
        next(p for p in record_paths(run_dir) if p.name.endswith("w12-k2__s1.json")).write_text("{not json")
    else:
        _edit_records(run_dir, edit)
    with pytest.raises(SubmissionRejected, match=message):
        submit(run_dir, GOOD, ["toy-v1"], board=tmp_path / "board")
    assert not (tmp_path / "board").exists()
    assert main(["submit", str(run_dir), "--method", GOOD, "--tasks", "toy-v1", "--board", str(tmp_path / "board")]) == 2
    assert re.search(message, capsys.readouterr().err), problem


def test_scores_raised_before_submission_pass_the_schema_but_fail_verify(runs: dict[str, Path], tmp_path: Path) -> None:
    run_dir = _copy(runs[GOOD], tmp_path)
    _edit_records(run_dir, lambda r: {**r, "metrics": {**r["metrics"], "features/mcc": r["metrics"]["features/mcc"] + 0.1}})
    board = tmp_path / "board"
    submit(run_dir, GOOD, ["toy-v1"], board=board)  # internally consistent, so accepted
    with pytest.raises(SubmissionRejected, match=r"toy-v1: submitted main score .* but the re-run on fresh seeds gives"):
        verify("NoisyTruth", board, out=tmp_path / "rerun", progress=False)
    write_board(board)
    readme = (board / "README.md").read_text()
    assert re.search(r"\| 1 \| NoisyTruth \| `toy_leaderboard_methods:NoisyTruth` \| 1\.00 \| 1 \| [\d.]+ \| FAILED \|", readme)


def test_a_submission_file_edited_afterwards_is_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    board = tmp_path / "board"
    path = submit(runs[GOOD], GOOD, ["toy-v1"], board=board)
    document = json.loads(path.read_text())
    document["records"][0]["metrics"]["features/mcc"] = 0.5
    path.write_text(json.dumps(document))
    with pytest.raises(SubmissionRejected, match=r"(?s)NoisyTruth\.json: .*records were edited after submission"):
        write_board(board)
    path.write_text('{"name": "NoisyTruth"}')
    with pytest.raises(SubmissionRejected, match=r"(?s)NoisyTruth\.json: .*invalid at \(top level\): 'method' is a required"):
        verify("NoisyTruth", board, out=tmp_path / "rerun", progress=False)


def _seed_frame(scores: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """submission -> task -> per-seed main scores, as the tidy frame ``overall_ranking`` takes."""
    rows = [
        {"submission": name, "task": task, "seed": seed, "main_score": value, "l0": 1.0, "fvu": 0.1}
        for name, tasks in scores.items() for task, values in tasks.items() for seed, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_overall_rank_and_paired_bootstrap() -> None:
    frame = _seed_frame(
        {
            "strong": {"t1": [0.90, 0.91, 0.92], "t2": [0.10, 0.11, 0.12]},  # t2: lower is better
            "twin-a": {"t1": [0.50, 0.60, 0.70], "t2": [0.50, 0.55, 0.60]},
            "twin-b": {"t1": [0.52, 0.61, 0.69], "t2": [0.52, 0.56, 0.58]},
        }
    )
    ranking = overall_ranking(frame, {"t1": True, "t2": False})
    assert list(ranking.submission[:1]) == ["strong"] and ranking.mean_task_rank.iloc[0] == 1.0
    assert inseparable_pairs(ranking) == [(2, 3)]
    assert np.isnan(ranking.flip_with_next.iloc[-1])


def test_leaving_a_task_out_ties_for_last_place_there() -> None:
    """A method that skips the task it is worst at (e.g. by declaring it needs non-negative
    activations) must not outrank one that ran everything."""
    frame = _seed_frame(
        {
            "all-tasks": {"t1": [0.80, 0.81, 0.82], "t2": [0.80, 0.81, 0.82], "t3": [0.50, 0.51, 0.52], "t4": [0.5, 0.5, 0.5]},
            "skips-t3-t4": {"t1": [0.90, 0.91, 0.92], "t2": [0.90, 0.91, 0.92]},
            "other": {"t1": [0.60, 0.61, 0.62], "t2": [0.60, 0.61, 0.62], "t3": [0.10, 0.11, 0.12], "t4": [0.9, 0.9, 0.9]},
        }
    )
    ranking = overall_ranking(frame, dict.fromkeys(["t1", "t2", "t3", "t4"], True)).set_index("submission")
    # Ranked on its two tasks alone, skips-t3-t4 would be first (mean rank 1); t3 and t4 count as last.
    assert ranking.mean_task_rank.to_dict() == pytest.approx({"all-tasks": 7 / 4, "skips-t3-t4": 8 / 4, "other": 9 / 4})
    assert list(ranking.index) == ["all-tasks", "skips-t3-t4", "other"]
    assert ranking.loc["skips-t3-t4", "tasks"] == 2


def test_budget_ranking_leaves_out_dense_submissions() -> None:
    """A dense method (L0 ten times the target) tops the overall table but not the budget's."""
    frame = _seed_frame(
        {
            "dense": {"t1": [0.95, 0.96, 0.97]},
            "sparse-a": {"t1": [0.80, 0.81, 0.82]},
            "sparse-b": {"t1": [0.60, 0.61, 0.62]},
        }
    ).assign(l0_target=3)
    frame["l0"] = np.where(frame.submission == "dense", 30.0, np.where(frame.submission == "sparse-a", 3.3, 2.9))
    assert l0_ratios(frame).round(2).to_dict() == {"dense": 10.0, "sparse-a": 1.1, "sparse-b": 0.97}
    assert list(overall_ranking(frame, {"t1": True}).submission) == ["dense", "sparse-a", "sparse-b"]
    assert list(budget_ranking(frame, {"t1": True}).submission) == ["sparse-a", "sparse-b"]
    none = budget_ranking(frame, {"t1": True}, budget=0.5)
    assert none.empty and list(none.columns) == list(overall_ranking(frame, {"t1": True}).columns)


def _browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def test_page_renders_and_sorts_in_a_headless_browser(runs: dict[str, Path], tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless browser found (looked for {', '.join(BROWSERS)}); `apt-get install chromium`")
    board = tmp_path / "board"
    for spec in (GOOD, OTHER):
        submit(runs[spec], spec, ["toy-v1"], board=board)
    write_board(board)
    url = (board / "index.html").resolve().as_uri() + "#sort=task-toy-v1:2:asc"  # main score, ascending
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url,
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    assert '<table class="sortable" id="overall"' in dom and dom.count("<svg") == 2
    task_table = re.search(r'<table class="sortable" id="task-toy-v1" data-sorted="2:asc">(.*?)</table>', dom, re.S)
    assert task_table, "the script did not sort the task table"
    order = re.findall(r'<td class="text">(NoisyTruth|LeastSquares)</td>', task_table.group(1))
    assert order == ["LeastSquares", "NoisyTruth"]  # the generator wrote NoisyTruth (the better) first
