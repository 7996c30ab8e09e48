"""A run fails loudly and checks its input before it spends time: exit status, one-line errors
before any fit, the codes' declared sign, readable files, lenient loading of malformed files,
resume after a method's code changed, and the README's own commands."""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import toy_task  # noqa: F401  (registers toy-v1)

import structure_bench as sb
from structure_bench.cli import main
from structure_bench.errors import MethodError
from structure_bench.results import MalformedRecordWarning, load_records, record_paths, validate_record
from structure_bench.planning import plan
from structure_bench.runner import run
from structure_bench.summary import summarise

TASK = "toy-v1"
GOOD = "toy_task:LeastSquares"


def _run(out: Path, *args: str) -> int:
    return main(["run", "--quiet", "--tasks", TASK, "--out", str(out), *args])


# -- exit status --------------------------------------------------------------------------------

def test_a_run_with_failed_fits_exits_1_after_the_failure_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, "--methods", GOOD, "toy_task:Raises", "--no-calibration") == 1
    captured = capsys.readouterr()
    assert "2 failed fits:" in captured.out and "optimiser diverged" in captured.out
    assert "2 of 4 fits failed" in captured.err and "--allow-failures" in captured.err
    # Resumed, nothing left to fit: the earlier failures still fail the run ...
    assert _run(tmp_path, "--methods", GOOD, "toy_task:Raises", "--no-calibration") == 1
    # ... unless the user says failures are expected.
    assert _run(tmp_path, "--methods", GOOD, "toy_task:Raises", "--no-calibration", "--allow-failures") == 0
    assert _run(tmp_path / "clean", "--methods", GOOD, "--no-calibration") == 0


def test_run_adds_the_calibration_methods_so_normalised_scores_exist(tmp_path: Path) -> None:
    assert _run(tmp_path, "--methods", GOOD) == 0
    assert {r["method"] for r in load_records(tmp_path)} == {GOOD, "oracle", "random"}
    summary = summarise(sb.load_results(tmp_path), tmp_path)
    assert summary.main_score_norm.notna().all()


# -- everything that can be checked before fitting ----------------------------------------------

@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", GOOD, "--param", "toy_task:LeastSqares.alpha=1"], r"parameters are given for method 'toy_task:LeastSqares', which is not run .* did you mean 'toy_task:LeastSquares'"),
        (["--methods", "topk-sae", "--param", "topk-sae.lrr=0.1"], r"topk-sae has no parameter 'lrr'; did you mean 'lr'\?"),
        (["--methods", "topk-sae", "--param", "topk-sae.max_steps=ten"], r"parameter 'max_steps' of topk-sae: expected an integer \(got 'ten'\)"),
        (["--methods", GOOD, "--param", f"{GOOD}.solver=qr"], r"expected one of 'lstsq', 'pinv'"),
        (["--methods", "topk-sae", "--param", "topk-sae.n_latents=64"], r"set by each cell.*--cells NxK or --widths/--l0"),
        # Values out of range: the method's validate_params, before any fit (not a failure per unit).
        (["--methods", "topk-sae", "--param", "topk-sae.stretch=0.5"], r"TopKSAE: stretch must be >= 1, got 0\.5$"),
        (["--methods", "relu-sae", "--param", "relu-sae.lr=0"], r"ReluSAE: lr must be > 0, got 0$"),
        (["--methods", "matryoshka-sae", "--param", "matryoshka-sae.anneal=1.0"], r"MatryoshkaSAE: anneal must be in \[0, 1\)"),
        (["--methods", "sparse-coding", "--param", "sparse-coding.patience=0"], r"max_iter and patience must be >= 1"),
        (["--methods", "ica", "--param", "ica.max_iter=0"], r"ICAMethod: max_iter must be >= 1, got 0$"),
        (["--methods", GOOD, "--seeds", "-1"], r"argument --seeds: -1: must be at least 0"),
        (["--methods", GOOD, "--cells", "8x16"], r"cell w8-k16: needs 1 <= l0_target <= n_latents"),
        (["--methods", GOOD, "--cells", "8by2"], r"'8by2' is not N_LATENTSxL0"),
        (["--methods", GOOD, "--widths", "8"], r"--widths and --l0 go together"),
        (["--methods", GOOD, "--site", "embed"], r"task toy-v1 has no site 'embed' \(its sites: hidden\)"),
        (["--methods", GOOD, "--jobs", "0"], r"argument --jobs: 0: must be at least 1"),
    ],
)
def test_bad_input_is_one_line_before_any_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert _run(tmp_path / "out", *args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and re.search(message, err), err
    assert not (tmp_path / "out").exists()  # nothing was fitted, nothing written


def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    assert _run(tmp_path / "file" / "out", "--methods", GOOD) == 2
    assert capsys.readouterr().err.strip() == f"structure-bench: error: Not a directory: {tmp_path / 'file' / 'out'}"


def test_a_full_disk_ends_the_run_in_one_line_and_keeps_every_finished_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from structure_bench import runner

    written = runner.write_unit

    def fills_up(out: Path, result: object) -> dict:
        if len(record_paths(out)) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return written(out, result)

    monkeypatch.setattr(runner, "write_unit", fills_up)
    assert _run(tmp_path, "--methods", GOOD, "--no-calibration", "--seeds", "0", "1") == 2
    assert capsys.readouterr().err.strip() == "structure-bench: error: No space left on device"
    kept = {path.name: path.read_text() for path in record_paths(tmp_path)}
    assert len(kept) == 2 and all(validate_record(json.loads(text), name) is None for name, text in kept.items())
    monkeypatch.setattr(runner, "write_unit", written)  # space freed: the run resumes, keeping those two
    assert _run(tmp_path, "--methods", GOOD, "--no-calibration", "--seeds", "0", "1") == 0
    assert len(record_paths(tmp_path)) == 4 and all(path.read_text() == kept[path.name] for path in record_paths(tmp_path) if path.name in kept)


def test_cells_and_widths_choose_the_grid(tmp_path: Path) -> None:
    assert _run(tmp_path / "cells", "--methods", GOOD, "--no-calibration", "--cells", "3x1", "9x2") == 0
    assert sorted((r["cell"]["n_latents"], r["cell"]["l0_target"]) for r in load_records(tmp_path / "cells")) == [(3, 1), (9, 2)]
    assert _run(tmp_path / "widths", "--methods", GOOD, "--no-calibration", "--widths", "4", "8", "--l0", "1", "2") == 0
    cells = sorted((r["cell"]["n_latents"], r["cell"]["l0_target"]) for r in load_records(tmp_path / "widths"))
    assert cells == [(4, 1), (4, 2), (8, 1), (8, 2)]


def test_plots_without_matplotlib_fail_before_fitting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    assert _run(tmp_path / "out", "--methods", GOOD, "--plots") == 2
    assert "pip install 'structure-bench[plots]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    run(plan([TASK], [GOOD], [0]), tmp_path / "done", progress=False)
    assert main(["report", str(tmp_path / "done")]) == 2
    assert "the report's figures need matplotlib: pip install 'structure-bench[plots]'" in capsys.readouterr().err


# -- the protocol's sign of codes ---------------------------------------------------------------

def test_negative_codes_from_a_method_that_declares_them_non_negative_are_caught(tmp_path: Path) -> None:
    with pytest.raises(MethodError, match=r"negative codes \(down to -[\d.]+\), but the method declares nonnegative_codes"):
        sb.check_method(toy_task.ClaimsNonnegativeCodes)
    sb.check_method(toy_task.LeastSquares)  # signed codes are fine where nothing is declared
    (record,) = run(plan([TASK], ["toy_task:ClaimsNonnegativeCodes"], [0], cells=[sb.Cell(6, 1)]), tmp_path, progress=False)
    assert record["status"] == "failed" and "declares nonnegative_codes" in record["error"]


def test_a_method_that_claims_to_ignore_l0_target_but_reads_it_is_caught() -> None:
    with pytest.raises(MethodError, match="declares reads_l0_target = False, but fits at l0_target 2 and 5 give different codes"):
        sb.check_method(toy_task.ClaimsToIgnoreL0Target)


# -- files others can read ----------------------------------------------------------------------

@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_result_and_board_files_get_the_mode_of_the_users_umask(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        run(plan([TASK], [GOOD], [0], cells=[sb.Cell(6, 1)]), tmp_path, progress=False)
    finally:
        os.umask(previous)
    (path,) = record_paths(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == mode


# -- malformed files are skipped and named, except by the strict check ---------------------------

def test_results_skips_and_names_a_malformed_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(plan([TASK], [GOOD], [0, 1], cells=[sb.Cell(6, 1)]), tmp_path, progress=False)
    broken = record_paths(tmp_path)[0]
    broken.write_text("{not json")
    assert main(["results", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert f"skipped {broken}: unreadable result record" in captured.err and captured.err.count("\n") == 1
    assert "=== toy-v1" in captured.out
    with pytest.warns(MalformedRecordWarning, match=broken.name):
        assert len(sb.load_results(tmp_path)) == 1
    with pytest.raises(sb.StructureBenchError, match="unreadable result record"):
        load_records(tmp_path, strict=True)


@pytest.mark.parametrize(
    ("column", "entry", "message"),
    [
        ("best_cos", "high", r"latents/best_cos/1: 'high' is not of type 'number', 'null'"),
        ("best_cos", True, r"latents/best_cos/1: True is not of type 'number', 'null'"),
        ("home", -2, r"latents/home/1: -2 is less than the minimum of -1"),
        ("home", 0.5, r"latents/home/1: 0.5 is not of type 'integer'"),
        ("class", "feature", r"latents/class/1: 'feature' is not one of"),
    ],
)
def test_a_bad_entry_in_a_per_latent_list_is_named(tmp_path: Path, column: str, entry: object, message: str) -> None:
    """The per-latent lists are checked in one pass when plainly valid; a bad entry still gets
    jsonschema's own message and position."""
    run(plan([TASK], [GOOD], [0], cells=[sb.Cell(6, 1)]), tmp_path, progress=False)
    record = load_records(tmp_path)[0]
    validate_record(record)
    record["latents"][column][1] = entry
    with pytest.raises(sb.StructureBenchError, match=message):
        validate_record(record)


def test_leaderboard_skips_a_malformed_submission_and_the_check_fails_on_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    board = tmp_path / "board"
    results = tmp_path / "run"
    # One folder, several methods: the submission takes the named method's records only.
    run(plan([TASK], [GOOD, "random"], [0, 1, 2]), results, progress=False)
    assert main(["submit", str(results), "--method", GOOD, "--tasks", TASK, "--board", str(board)]) == 0
    (board / "submissions" / "broken.json").write_text("{not json")
    assert main(["leaderboard", "--board", str(board)]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "broken.json: refused: unreadable submission file" in err and err.count("\n") == 1
    assert (board / "README.md").exists()
    assert main(["leaderboard", "--board", str(board), "--check"]) == 2
    assert "broken.json: refused" in capsys.readouterr().err


# -- resume notices a method whose code changed -------------------------------------------------

METHOD_SOURCE = """
import numpy as np
from structure_bench import Method


class Scaled(Method):
    def fit(self, X):
        rng = np.random.default_rng(self.seed)
        self.decoder_ = rng.normal(size=(self.n_latents, X.shape[1])) * {scale}
        return self

    def encode(self, X):
        return np.linalg.lstsq(self.decoder_.T, X.T, rcond=None)[0].T
"""


def test_resume_recomputes_records_of_a_method_whose_source_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "changing_method.py"
    module.write_text(METHOD_SOURCE.format(scale=1.0))
    monkeypatch.syspath_prepend(str(tmp_path))
    units = plan([TASK], ["changing_method:Scaled"], [0], cells=[sb.Cell(6, 1)])
    (first,) = run(units, tmp_path / "out", progress=False)
    assert first["provenance"]["method_source"].startswith("sha256:")
    assert run(units, tmp_path / "out", progress=False) == []  # unchanged code: resumed
    module.write_text(METHOD_SOURCE.format(scale=2.0))
    with pytest.warns(UserWarning, match=r"recomputing 1 records .* made by other code of changing_method:Scaled"):
        (again,) = run(units, tmp_path / "out", progress=False)
    assert again["provenance"]["method_source"] != first["provenance"]["method_source"]


def test_method_source_covers_the_shared_base_class() -> None:
    from structure_bench.methods import method_source

    topk, relu = sb.get_method("topk-sae"), sb.get_method("relu-sae")
    assert method_source(topk) == method_source(relu)  # same files: baselines/saes.py, sae.py, protocol.py
    assert method_source(topk) != method_source(sb.get_method("pca"))


# -- the README's commands ----------------------------------------------------------------------

def test_a_module_in_the_current_folder_runs_without_pythonpath(tmp_path: Path) -> None:
    (tmp_path / "mymodule.py").write_text(textwrap.dedent(METHOD_SOURCE.format(scale=1.0)).replace("Scaled", "MyDictionary"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [
        str(Path(sys.executable).with_name("structure-bench")), "run", "--quiet", "--tasks", "superposition-v1",
        "--methods", "mymodule:MyDictionary", "--no-calibration", "--cells", "16x2", "--out", "results/mine",
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (record,) = load_records(tmp_path / "results" / "mine")
    assert record["status"] == "ok" and record["method_spec"] == "mymodule:MyDictionary"


def test_every_spec_reference_in_the_readme_resolves() -> None:
    root = Path(__file__).resolve().parents[1]
    assert (root / "SPEC.md").is_file()
    spec = (root / "SPEC.md").read_text()
    cited = set(re.findall(r"SPEC(?:\.md\]\(SPEC\.md\)|\.md)? section (\d+)", (root / "README.md").read_text()))
    assert cited, "the README cites SPEC sections"
    for section in sorted(cited):
        assert re.search(rf"^## {section}[. ]", spec, re.MULTILINE), f"the README cites SPEC section {section}"
