"""The leaderboard: submit checks a run, verify re-runs it on hidden instances, the board ranks the
re-runs and the pages are generated and render. Each attack on the board is reproduced and refused."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import toy_leaderboard_methods
import toy_task  # noqa: F401  (registers toy-v1)

import structure_bench as sb
from structure_bench.cache import entry_dir
from structure_bench.cli import main
from structure_bench.errors import StructureBenchError
from structure_bench.leaderboard import SubmissionRejected, build_board, check_board, read_submission, submit, verify, write_board
from structure_bench.leaderboard.readme import markdown_text
from structure_bench.leaderboard.scores import budget_ranking, inseparable_pairs, l0_ratios, overall_ranking
from structure_bench.leaderboard.submission import document_digest
from structure_bench.leaderboard.verify import trusted_method_class, verification_path
from structure_bench import plugins
from structure_bench.methods import registry as method_registry
from structure_bench.results import record_paths
from structure_bench.planning import plan
from structure_bench.runner import run

GOOD = "toy_leaderboard_methods:RepeatedDirections"
OTHER = "toy_leaderboard_methods:NoisyDirections"
CHEATS = ("toy_leaderboard_methods:ReadsTruth", "toy_leaderboard_methods:ShipsAnswer")
ORACLE_LIKE = "toy_leaderboard_methods:NoisyTruth"
TRUSTED = [toy_leaderboard_methods.__file__, toy_task.__file__]  # what a verifier vouches for
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def answer_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The public toy-v1's answer, as a cheating method would ship it."""
    path = tmp_path_factory.mktemp("answer") / "answer.npy"
    np.save(path, sb.make("toy-v1").primary_structure().vectors)
    os.environ[toy_leaderboard_methods.ANSWER_ENV] = str(path)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, answer_file: Path) -> dict[str, Path]:
    """Finished 3-seed runs of the toy methods on toy-v1 (never modified: tests copy them)."""
    root = tmp_path_factory.mktemp("runs")
    for spec in (GOOD, OTHER, ORACLE_LIKE, *CHEATS):
        run(plan(["toy-v1"], [spec], seeds=[0, 1, 2]), root / spec, progress=False)
    return {spec: root / spec for spec in (GOOD, OTHER, ORACLE_LIKE, *CHEATS)}


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


def _verify(name: str, board: Path, tmp_path: Path) -> pd.DataFrame:
    """Verify with secrets from a seeded generator, so that each test's outcome is reproducible."""
    return verify(name, board, out=tmp_path / f"rerun-{name}", progress=False, method_files=TRUSTED, rng=random.Random(0))


def _cached(hidden: list) -> list[Path]:
    """The activation-cache entries that these hidden instances (and fresh ones' reseeded bases) left."""
    entries = [entry_dir(task) for task in hidden] + [entry_dir(task.base) for task in hidden if task.reseeded]
    return [entry for entry in entries if entry.exists()]


def _statuses(board: Path) -> dict[str, str]:
    return {name: entry.status for name, entry in build_board(board).entries.items()}


def test_a_valid_run_is_submitted_verified_on_hidden_instances_and_ranked(runs: dict[str, Path], tmp_path: Path) -> None:
    board = tmp_path / "board"
    assert main(["submit", str(runs[GOOD]), "--method", GOOD, "--tasks", "toy-v1", "--board", str(board)]) == 0
    document = read_submission(board / "submissions" / "RepeatedDirections.json")
    assert document["method"]["import_spec"] == GOOD and document["seeds"] == [0, 1, 2]
    assert len(document["records"]) == 2 * 3 and document["tasks"]["toy-v1"]["identity"] == sb.make("toy-v1").identity
    argv = ["verify", "RepeatedDirections", "--board", str(board), "--out", str(tmp_path / "rerun"), "--quiet"]
    assert main(argv + [f"--method-file={f}" for f in TRUSTED]) == 0
    verification = json.loads(verification_path(board, "RepeatedDirections").read_text())
    instances = verification["instances"]
    # Per claimed seed a permuted instance (compared with the claim) and a fresh one (ranked by).
    assert len(instances) == 6 and {i["task"] for i in instances.values()} == {"toy-v1"}
    assert sorted(i["fresh"] for i in instances.values()) == [False] * 3 + [True] * 3
    assert len({i["secret"] for i in instances.values()}) == 6 and not {i["seed"] for i in instances.values()} & {0, 1, 2}
    assert {r["task"] for r in verification["records"]} == set(instances) and len(verification["records"]) == 12
    # Single-use instances leave nothing in the activation cache; the public task's entry stays.
    built = [sb.make(hidden) for hidden in instances]
    assert entry_dir(sb.make("toy-v1")).is_dir() and sum(t.reseeded for t in built) == 3 and not _cached(built)
    assert main(["leaderboard", "--board", str(board)]) == 0
    readme = (board / "README.md").read_text()
    assert re.search(r"\| 1 \| RepeatedDirections \| toy\\_leaderboard\\_methods:RepeatedDirections \| 1\.00 \| 1 \| [\d.]+ \| [\d.]+ \|", readme)
    assert "## toy-v1" in readme and "95% interval" in readme and "## Not ranked" not in readme
    page = (board / "index.html").read_text()
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?:", page)  # self-contained
    assert main(["leaderboard", "--board", str(board), "--check"]) == 0


def test_an_interrupted_verify_leaves_no_hidden_instance_in_the_cache(
    runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = tmp_path / "board"
    submit(runs[GOOD], GOOD, ["toy-v1"], board=board)
    built: list[sb.Task] = []

    def interrupted(units: list, *args, **kwargs) -> None:
        built.extend(sb.make(task) for task in {unit.task for unit in units})
        assert all(task.arrays for task in built) and len(_cached(built)) == 9  # cached, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr("structure_bench.runner.run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _verify("RepeatedDirections", board, tmp_path)
    assert len(built) == 6 and not _cached(built)


def test_the_board_shows_the_re_run_not_the_claim(runs: dict[str, Path], tmp_path: Path) -> None:
    board = tmp_path / "board"
    submit(runs[GOOD], GOOD, ["toy-v1"], board=board)
    _verify("RepeatedDirections", board, tmp_path)
    built = build_board(board)
    claimed = pd.DataFrame(read_submission(board / "submissions" / "RepeatedDirections.json")["records"]).seed
    shown = built.entries["RepeatedDirections"].frame
    instances = json.loads(verification_path(board, "RepeatedDirections").read_text())["instances"]
    fresh_seeds = {i["seed"] for i in instances.values() if i["fresh"]}
    assert set(shown.seed) == fresh_seeds and set(shown.seed).isdisjoint(set(claimed)) and len(shown) == 6
    assert built.per_task.main_score.iloc[0] == pytest.approx(shown.main_score.mean())


@pytest.mark.parametrize(
    ("problem", "edit", "message"),
    [
        ("malformed file", None, r"w12-k2__s1\.json: unreadable result record"),
        ("missing cell", lambda r: None if r["cell"]["n_latents"] == 12 else r, r"missing cell: toy-v1 w12-k2 \(no records\)"),
        ("too few seeds", lambda r: None if r["seed"] == 2 else r, r"only 2 seed\(s\)"),
        ("NaN", lambda r: {**r, "metrics": {**r["metrics"], "features/mcc": None}}, r"non-finite metrics \(NaN/inf\): features/mcc"),
        ("out of range", lambda r: {**r, "metrics": {**r["metrics"], "features/mcc": 1e6}}, r"features/mcc = 1e\+06 is outside the range it can take, \[0, 1\]"),
        ("negative FVU", lambda r: {**r, "metrics": {**r["metrics"], "fvu": -0.5}}, r"fvu = -0.5 is outside the range"),
        ("L0 over the width", lambda r: {**r, "metrics": {**r["metrics"], "l0": 99.0}}, r"l0 = 99 is outside the range it can take, \[0, (6|12)\]"),
        ("wrong identity", lambda r: {**r, "task_identity": "0" * 64}, r"task identity 000000000000… differs"),
        ("wrong main score", lambda r: {**r, "main_score": "fvu"}, r"main score is 'fvu' but the task's is 'features/mcc'"),
        ("other method", lambda r: {**r, "method": "random", "method_spec": "x:Random"}, r"no records of \S+ for the suite \(toy-v1\) in \S+ \(it holds random\)"),
        ("one record of another class", lambda r: {**r, "method_spec": "x:Other"} if r["seed"] == 1 else r, r"several method classes"),
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


def _scale(metric: str, factor: float) -> Callable[[dict], dict]:
    return lambda r: {**r, "metrics": {**r["metrics"], metric: r["metrics"][metric] * factor}}


def _spread(r: dict) -> dict:
    """Seed scores 0, 1, 1: a claimed spread so wide that the claim's own interval covers anything."""
    return {**r, "metrics": {**r["metrics"], "features/mcc": 0.0 if r["seed"] == 0 else 1.0}}


@pytest.mark.parametrize(
    ("attack", "edit", "message"),
    [
        ("lowered main score", _scale("features/mcc", 0.9), "main score"),  # it scores 1: lower is all one can edit
        ("faked seed spread", _spread, "main score"),
        ("L0 edited into the budget", _scale("l0", 0.5), "l0"),
        ("FVU edited down", lambda r: {**r, "metrics": {**r["metrics"], "fvu": r["metrics"]["fvu"] * 0.3 + 0.05}}, "fvu"),
    ],
)
def test_edited_claims_pass_submit_but_fail_verify_and_are_not_ranked(
    runs: dict[str, Path], tmp_path: Path, attack: str, edit: Callable[[dict], dict], message: str
) -> None:
    run_dir = _copy(runs[GOOD], tmp_path)
    _edit_records(run_dir, edit)
    board = tmp_path / "board"
    submit(run_dir, GOOD, ["toy-v1"], board=board)  # internally consistent, so accepted
    with pytest.raises(SubmissionRejected, match=rf"toy-v1: submitted {message} .* but the re-run on hidden instances gives"):
        _verify("RepeatedDirections", board, tmp_path)
    built = write_board(board)
    assert built.entries["RepeatedDirections"].status == "FAILED", attack
    assert built.ranking.empty
    readme = (board / "README.md").read_text()
    assert re.search(r"## Not ranked.*\| RepeatedDirections \| toy\\_leaderboard\\_methods:RepeatedDirections \| FAILED \| toy-v1: submitted", readme, re.S)


def test_an_honest_method_with_a_noisy_score_verifies(runs: dict[str, Path], tmp_path: Path) -> None:
    """This method's scores vary from seed to seed; its honest claim must pass."""
    board = tmp_path / "board"
    submit(runs[OTHER], OTHER, ["toy-v1"], board=board)
    table = _verify("NoisyDirections", board, tmp_path)
    assert set(table.metric) == {"main_score", "l0", "fvu"} and table.passed.all()


@pytest.mark.parametrize("cheat", CHEATS)
def test_methods_that_read_the_public_truth_or_ship_the_answer_fail_on_hidden_instances(
    runs: dict[str, Path], tmp_path: Path, cheat: str
) -> None:
    board = tmp_path / "board"
    path = submit(runs[cheat], cheat, ["toy-v1"], board=board)
    assert read_submission(path)["records"][0]["metrics"]["features/mcc"] > 0.99  # perfect on the public task
    with pytest.raises(SubmissionRejected, match=r"toy-v1: submitted main score 1\.0000 but the re-run on hidden instances gives 0\.[0-8]"):
        _verify(path.stem, board, tmp_path)
    assert _statuses(board) == {path.stem: "FAILED"}
    # The failing task was re-run on three more permuted instances (the second stage), in vain.
    instances = json.loads(verification_path(board, path.stem).read_text())["instances"].values()
    assert sorted(i["fresh"] for i in instances) == [False] * 6 + [True] * 3


def test_a_method_that_declares_it_uses_the_truth_is_a_reference_never_ranked(runs: dict[str, Path], tmp_path: Path) -> None:
    board = tmp_path / "board"
    submit(runs[ORACLE_LIKE], ORACLE_LIKE, ["toy-v1"], board=board)
    submit(runs[OTHER], OTHER, ["toy-v1"], board=board)
    _verify("NoisyTruth", board, tmp_path)  # handed the hidden instance's truth: it reproduces
    _verify("NoisyDirections", board, tmp_path)
    built = write_board(board)
    assert built.entries["NoisyTruth"].status == "reference" and list(built.ranking.submission) == ["NoisyDirections"]
    readme = (board / "README.md").read_text()
    assert "## References (unranked)" in readme and re.search(r"\| ref \| NoisyTruth \| 0\.9", readme)
    assert re.search(r"\| 1 \| NoisyDirections \|", readme) and not re.search(r"\| \d \| NoisyTruth", readme)


def test_edited_submission_files_are_refused_and_listed_apart(runs: dict[str, Path], tmp_path: Path) -> None:
    board = tmp_path / "board"
    path = submit(runs[GOOD], GOOD, ["toy-v1"], board=board)
    original = json.loads(path.read_text())
    edits = {
        "metric": lambda d: d["records"][0]["metrics"].update({"features/mcc": 0.5}),
        "params": lambda d: d["method"]["params"].update({"alpha": 2.0}),
    }
    for what, edit in edits.items():
        document = json.loads(json.dumps(original))
        edit(document)
        path.write_text(json.dumps(document))
        with pytest.raises(SubmissionRejected, match="sha256 does not match the document"):
            _verify("RepeatedDirections", board, tmp_path)
        assert _statuses(board) == {"RepeatedDirections": "refused"}, what
    # Params edited and the digest recomputed: the records still say how they were run.
    document = json.loads(json.dumps(original))
    document["method"]["params"]["alpha"] = 2.0
    document["sha256"] = document_digest(document)
    path.write_text(json.dumps(document))
    with pytest.raises(SubmissionRejected, match="was run with other parameters or another class"):
        read_submission(path)
    path.write_text('{"name": "RepeatedDirections"}')
    with pytest.raises(SubmissionRejected, match=r"(?s)RepeatedDirections\.json: .*invalid at \(top level\): 'method' is a required"):
        _verify("RepeatedDirections", board, tmp_path)


def test_forged_verifications_and_hand_edited_pages_fail_the_check(runs: dict[str, Path], tmp_path: Path) -> None:
    board = tmp_path / "board"
    path = submit(runs[OTHER], OTHER, ["toy-v1"], board=board)
    document = read_submission(path)
    verified = verification_path(board, "NoisyDirections")
    verified.parent.mkdir(parents=True)
    verified.write_text(json.dumps({"name": "NoisyDirections", "passed": True, "records_sha256": document["sha256"]}))
    write_board(board)
    entry = build_board(board).entries["NoisyDirections"]
    assert entry.status == "FAILED" and entry.reason.startswith("broken verification")
    assert "| 1 | NoisyDirections" not in (board / "README.md").read_text()

    _verify("NoisyDirections", board, tmp_path)
    write_board(board)
    assert check_board(board) == []
    real = json.loads(verified.read_text())
    for record in real["records"]:
        record["metrics"]["features/mcc"] = 0.99  # the re-run "reproduced" a better score
    verified.write_text(json.dumps(real))
    assert check_board(board) and _statuses(board) == {"NoisyDirections": "FAILED"}
    assert main(["leaderboard", "--board", str(board), "--check"]) == 2

    write_board(board)
    readme = board / "README.md"
    readme.write_text(readme.read_text().replace("FAILED", "verified"))
    problems = check_board(board)
    assert any(re.search(r"README\.md: differs from line \d+", line) for line in problems), problems
    assert any(line.startswith("verification of NoisyDirections: broken verification") for line in problems), problems


def test_markup_in_a_submission_cannot_reach_the_pages(runs: dict[str, Path], tmp_path: Path) -> None:
    board = tmp_path / "board"
    path = submit(runs[OTHER], OTHER, ["toy-v1"], board=board)
    document = json.loads(path.read_text())
    document["method"]["spec"] = "x |\n| 1 | fake | <script>alert(1)</script> |"
    document["sha256"] = document_digest(document)
    path.write_text(json.dumps(document))
    built = write_board(board)
    assert built.entries["NoisyDirections"].status == "refused"
    readme, page = (board / "README.md").read_text(), (board / "index.html").read_text()
    assert "| fake |" not in readme and "<script>alert" not in page
    assert markdown_text("a|b\n| 1 | <b>x</b> `y`") == "a\\|b \\| 1 \\| \\<b\\>x\\</b\\> \\`y\\`"


@pytest.mark.parametrize("name", ["../../outside", "..", "a/b", "x\n| fake |"])
def test_verify_resolves_names_only_inside_submissions(tmp_path: Path, name: str) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    with pytest.raises(StructureBenchError, match="submission name .* must match"):
        verify(name, tmp_path / "board" / "leaderboard", progress=False)
    assert outside.read_text() == "{}"


def test_a_method_spec_is_checked_before_anything_is_imported() -> None:
    side_effect = Path(__file__).with_name("toy_side_effect.py")
    for spec in ("toy_side_effect:Evil", "os:system", "subprocess:Popen"):
        with pytest.raises(StructureBenchError, match="not part of an installed distribution"):
            trusted_method_class(spec, spec)
    assert "toy_side_effect" not in sys.modules and "TOY_SIDE_EFFECT_IMPORTED" not in os.environ
    with pytest.raises(StructureBenchError, match="defines no class 'Missing'"):
        trusted_method_class("toy_side_effect:Missing", "toy_side_effect:Missing", [side_effect])
    assert "toy_side_effect" not in sys.modules
    with pytest.raises(StructureBenchError, match="is not a structure_bench.Method subclass"):
        trusted_method_class("toy_side_effect:Evil", "toy_side_effect:Evil", [side_effect])
    with pytest.raises(StructureBenchError, match="defines no class 'ndarray'"):
        trusted_method_class("numpy:ndarray", "numpy:ndarray")  # installed, but not a class statement there
    assert trusted_method_class("topk-sae", "structure_bench_baselines.saes:TopKSAE").__name__ == "TopKSAE"
    with pytest.raises(StructureBenchError, match="is structure_bench_baselines.saes:TopKSAE here"):
        trusted_method_class("topk-sae", "toy_side_effect:Evil")
    with pytest.raises(StructureBenchError, match="not registered by an installed package"):
        trusted_method_class("no-such-method", "toy_side_effect:Evil")


def test_an_unvouched_method_file_is_recorded_as_a_failed_verification(runs: dict[str, Path], tmp_path: Path) -> None:
    board = tmp_path / "board"
    submit(runs[GOOD], GOOD, ["toy-v1"], board=board)
    with pytest.raises(SubmissionRejected, match="not re-run: method 'toy_leaderboard_methods:RepeatedDirections': module .* is not part of an installed"):
        verify("RepeatedDirections", board, out=tmp_path / "rerun", progress=False)
    assert _statuses(board) == {"RepeatedDirections": "FAILED"}


class _Shadow(sb.Method):
    pass


def test_registering_a_taken_name_is_an_error_unless_replacing(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StructureBenchError, match="method 'pca' is already registered to structure_bench_baselines.linear:PCAMethod"):
        sb.register_method("pca")(_Shadow)
    assert sb.get_method("pca").__name__ == "PCAMethod"
    monkeypatch.setattr(method_registry.METHODS, "local", dict(method_registry.METHODS.local))
    sb.register_method("pca", replace=True)(_Shadow)
    assert sb.get_method("pca") is _Shadow
    with pytest.raises(StructureBenchError, match="task 'toy-v1' is already registered"):
        sb.register_task("toy-v1", entry_point=toy_task.ToyTask, seed=1)  # another task under a taken id


def test_two_packages_claiming_one_method_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    claims = [
        EntryPoint("pca", "structure_bench_baselines.linear:PCAMethod", method_registry.METHOD_ENTRY_POINT_GROUP),
        EntryPoint("pca", "evil_package:PCA", method_registry.METHOD_ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(plugins, "entry_points", lambda group: claims)
    monkeypatch.setattr(method_registry.METHODS, "_entry_points", None)
    monkeypatch.setattr(method_registry.METHODS, "conflicts", {})
    monkeypatch.setattr(method_registry.METHODS, "local", {})
    with pytest.raises(StructureBenchError, match="method 'pca' is claimed by two installed packages"):
        sb.get_method("pca")


def _seed_frame(scores: dict[str, dict[str, list[float]]], fvu: dict[tuple[str, str], float] | None = None) -> pd.DataFrame:
    """submission -> task -> per-seed main scores, as the tidy frame ``overall_ranking`` takes;
    fvu : (submission, task) -> FVU (default 0.1)."""
    rows = [
        {"submission": name, "task": task, "seed": seed, "main_score": value, "l0": 1.0, "fvu": (fvu or {}).get((name, task), 0.1)}
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


def test_last_bit_differences_do_not_change_the_ranking() -> None:
    """Two entries with the same scores up to round-off tie on every machine."""
    frame = _seed_frame({"a": {"t1": [0.3, 0.6, 0.9]}, "b": {"t1": [0.1 + 0.2, 0.6, 0.9]}})  # 0.1 + 0.2 != 0.3
    assert frame.main_score[3] > frame.main_score[0]
    ranking = overall_ranking(frame, {"t1": True})
    assert list(ranking.mean_task_rank) == [1.5, 1.5] and inseparable_pairs(ranking) == [(1, 2)]


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


def test_poor_reconstruction_does_not_score_within_the_budget() -> None:
    """k-means with one-hot codes: the best structure score at L0 1 but FVU 0.55 where the SAEs
    reach 0.03. Within the budget it does not score on that task (a tie for last place)."""
    frame = _seed_frame(
        {
            "kmeans": {"t1": [0.95, 0.96, 0.94], "t2": [0.50, 0.52, 0.51]},
            "sae-a": {"t1": [0.85, 0.86, 0.84], "t2": [0.70, 0.71, 0.72]},
            "sae-b": {"t1": [0.80, 0.81, 0.82], "t2": [0.60, 0.61, 0.62]},
        },
        fvu={("kmeans", "t1"): 0.55, ("kmeans", "t2"): 0.07, ("sae-a", "t1"): 0.03, ("sae-a", "t2"): 0.03,
             ("sae-b", "t1"): 0.05, ("sae-b", "t2"): 0.05},
    ).assign(l0_target=1)
    higher = {"t1": True, "t2": True}
    assert list(overall_ranking(frame, higher).submission) == ["sae-a", "kmeans", "sae-b"]
    within = budget_ranking(frame, higher).set_index("submission")
    # The bound is 2 x 0.03 + 0.02 = 0.08 on both tasks: k-means is over it on t1 only.
    assert list(within.index) == ["sae-a", "sae-b", "kmeans"]
    assert within.tasks.to_dict() == {"sae-a": 2, "sae-b": 2, "kmeans": 1}
    assert within.loc["kmeans", "mean_task_rank"] == (3 + 3) / 2  # last on t1 (no score), last on t2


def _browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def test_page_renders_and_sorts_in_a_headless_browser(runs: dict[str, Path], tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless browser found (looked for {', '.join(BROWSERS)}); `apt-get install chromium`")
    board = tmp_path / "board"
    for spec in (GOOD, OTHER):
        _verify(submit(runs[spec], spec, ["toy-v1"], board=board).stem, board, tmp_path)
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
    order = re.findall(r'<td class="text">(RepeatedDirections|NoisyDirections)</td>', task_table.group(1))
    assert order == ["NoisyDirections", "RepeatedDirections"]  # the generator wrote RepeatedDirections (the better) first
