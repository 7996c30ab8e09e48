"""Unverified leaderboard entries: a dictionary trained elsewhere, scored with `structure-bench
score`, is submitted as an entry that is shown apart ("not re-run", with its file's sha256), never
ranked, cannot be verified, and cannot be turned into (or forged from) a verified entry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import structure_bench as sb
from structure_bench.cli import main
from structure_bench.identity import file_sha256
from structure_bench.leaderboard import build_board, check_board, read_submission, write_board
from structure_bench.leaderboard.submission import SubmissionRejected, document_digest
from structure_bench.leaderboard.tables import unranked_rows
from structure_bench.results import write_json

TASK = "tms-v1"


def _dictionary(path: Path, n_latents: int, seed: int) -> Path:
    """A relu dictionary of n_latents random unit directions on the task's site (tied encoder)."""
    d = sb.make(TASK).activations("hidden", "test").shape[1]
    rng = np.random.default_rng(seed)
    W_dec = rng.normal(size=(n_latents, d)).astype(np.float32)
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    save_file({"W_enc": W_dec.T.copy(), "b_enc": np.zeros(n_latents, np.float32), "W_dec": W_dec,
               "b_dec": np.zeros(d, np.float32)}, str(path), metadata={"activation": "relu"})
    return path


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A results directory holding two scored dictionaries (widths 16 and 24, seed 0 each)."""
    root = tmp_path_factory.mktemp("unverified")
    files = [_dictionary(root / f"sae{n}.safetensors", n, n) for n in (16, 24)]
    for path in files:
        assert main(["score", TASK, "--dictionary", str(path), "--out", str(root / "scored")]) == 0
    return root / "scored", files


def _submit(scored, board: Path) -> Path:
    results, _ = scored
    assert main(["submit", str(results), "--method", "external", "--name", "my-gpu-sae", "--board", str(board)]) == 0
    return board / "submissions" / "my-gpu-sae.json"


def _rewrite(path: Path, change) -> None:
    """Edit a submission and recompute its digest, as a forger would."""
    document = json.loads(path.read_text())
    change(document)
    write_json(path, {**document, "sha256": document_digest(document)})


def test_a_scored_dictionary_is_an_unverified_entry_shown_apart_with_its_digest(tmp_path, scored, capsys) -> None:
    board_dir = tmp_path / "board"
    path = _submit(scored, board_dir)
    assert "unverified entry" in capsys.readouterr().out
    document = read_submission(path)
    assert document["unverified"] is True and document["tasks"].keys() == {TASK}  # its own task, not the suite
    assert len(document["records"]) == 2 and document["seeds"] == [0]  # any cells, one seed
    board = write_board(board_dir)
    assert board.entries["my-gpu-sae"].status == "unverified"
    assert len(board.ranking) == 0 and unranked_rows(board) == [] and len(board.per_task) == 0
    readme = (board_dir / "README.md").read_text()
    assert "## Unverified: trained elsewhere, not re-run" in readme and "NOT RE-RUN" in readme
    for dictionary in scored[1]:
        assert file_sha256(dictionary)[:16] in readme
        assert file_sha256(dictionary)[:16] in (board_dir / "index.html").read_text()
    assert "w16-k" in readme and "w24-k" in readme
    assert check_board(board_dir) == []


def test_an_unverified_entry_cannot_be_verified_and_says_so_in_one_line(tmp_path, scored, capsys) -> None:
    board_dir = tmp_path / "board"
    _submit(scored, board_dir)
    capsys.readouterr()
    assert main(["verify", "my-gpu-sae", "--board", str(board_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trained elsewhere" in err and "not re-run" in err
    assert not (board_dir / "verified" / "my-gpu-sae.json").exists()


def test_an_edited_unverified_entry_is_refused(tmp_path, scored) -> None:
    board_dir = tmp_path / "board"
    path = _submit(scored, board_dir)
    document = json.loads(path.read_text())
    document["records"][0]["metrics"]["fvu"] = 0.0  # better numbers, digest not recomputed
    path.write_text(json.dumps(document))
    with pytest.raises(SubmissionRejected, match="edited after submission"):
        read_submission(path)
    assert build_board(board_dir).entries["my-gpu-sae"].status == "refused"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # Claiming the verified path for a dictionary trained elsewhere.
        (lambda d: d.pop("unverified"), "trained elsewhere: it can only be an unverified entry"),
        # A record that does not say which file it scored.
        (lambda d: d["records"][0]["provenance"].pop("source"), "does not say which file it scored"),
        # The same file twice at one cell.
        (lambda d: d["records"].append(d["records"][0]), "is scored 2 times"),
    ],
)
def test_a_forged_unverified_entry_is_refused(tmp_path, scored, change, message) -> None:
    path = _submit(scored, tmp_path / "board")
    _rewrite(path, change)
    with pytest.raises(SubmissionRejected, match=message):
        read_submission(path)


def test_a_method_we_can_import_cannot_be_an_unverified_entry(tmp_path) -> None:
    """A built-in fit keeps the verified path: marking its submission unverified is refused."""
    results = tmp_path / "run"
    assert main(["run", "--tasks", TASK, "--methods", "random", "--seeds", "0", "1", "2", "--out", str(results), "--quiet"]) == 0
    assert main(["submit", str(results), "--method", "random", "--tasks", TASK, "--board", str(tmp_path / "board")]) == 0
    path = tmp_path / "board" / "submissions" / "random.json"
    assert "unverified" not in read_submission(path)
    _rewrite(path, lambda d: d.update(unverified=True))
    with pytest.raises(SubmissionRejected, match="can be re-run: only dictionaries trained elsewhere"):
        read_submission(path)
