"""structure-bench score: a dictionary trained elsewhere, read from each format, scores exactly
what the same dictionary scores in process; bad files fail in one line."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import structure_bench as sb
from structure_bench.cli import main
from structure_bench.external import load_dictionary
from structure_bench.identity import file_sha256
from structure_bench.planning import plan
from structure_bench.task import Cell
from structure_bench.unit import compute_unit, fit_and_score

TASK, SITE, CELL = "tms-v1", "hidden", Cell(16, 2)


@pytest.fixture(scope="module")
def fitted():
    """An in-process top-k SAE fit and its record's metrics."""
    task = sb.make(TASK)
    return fit_and_score(task, SITE, "topk-sae", CELL, seed=0, params={"max_steps": 400})


def _weights(fitted) -> dict[str, np.ndarray]:
    """The fit in SAELens's orientation (W_enc [d, L]); our SAE codes x / scale_, so the external
    form folds the scale into the biases: codes and reconstruction are the same."""
    sae = fitted.method
    s = sae.scale_
    return {
        "W_enc": sae.W_enc.detach().numpy().T.copy(), "b_enc": (s * sae.b_enc.detach()).numpy(),
        "W_dec": sae.W_dec.detach().numpy().copy(), "b_dec": (s * sae.b_dec.detach()).numpy(),
    }


def _save_safetensors(path: Path, fitted, identity: str | None = None) -> Path:
    metadata = {"activation": "topk", "k": str(CELL.l0_target)} | ({"task_identity": identity} if identity else {})
    save_file(_weights(fitted), str(path), metadata=metadata)
    return path


def _save_saelens(path: Path, fitted) -> Path:
    path.mkdir()
    save_file(_weights(fitted), str(path / "sae_weights.safetensors"))
    cfg = {"architecture": "topk", "k": CELL.l0_target, "d_in": 10, "d_sae": 16,
           "apply_b_dec_to_input": True, "normalize_activations": "none"}
    (path / "cfg.json").write_text(json.dumps(cfg))
    return path


def _save_dictionary_learning(path: Path, fitted) -> Path:
    w = {k: torch.from_numpy(v) for k, v in _weights(fitted).items()}
    state = {"encoder.weight": w["W_enc"].T.contiguous(), "encoder.bias": w["b_enc"],
             "decoder.weight": w["W_dec"].T.contiguous(), "b_dec": w["b_dec"], "k": torch.tensor(CELL.l0_target)}
    torch.save(state, path)
    return path


def _score(tmp_path: Path, dictionary: Path, *extra: str) -> dict:
    out = tmp_path / "scored"
    assert main(["score", TASK, "--dictionary", str(dictionary), "--out", str(out), *extra]) == 0
    (record,) = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    return record


@pytest.mark.parametrize("save", [_save_safetensors, _save_saelens, _save_dictionary_learning])
def test_each_format_scores_what_the_in_process_fit_scores(tmp_path, fitted, save, capsys) -> None:
    name = {"_save_safetensors": "sae.safetensors", "_save_saelens": "sae", "_save_dictionary_learning": "ae.pt"}[save.__name__]
    path = save(tmp_path / name, fitted)
    X = sb.make(TASK).activations(SITE, "test")
    np.testing.assert_allclose(load_dictionary(path).encode(X), fitted.method.encode(X), atol=1e-5)
    record = _score(tmp_path, path)
    assert record["status"] == "ok" and record["method"] == "external"
    assert record["cell"]["n_latents"] == 16 and record["cell"]["l0_target"] == 2
    source = record["provenance"]["source"]
    assert source["format"] == {"sae.safetensors": "safetensors", "sae": "saelens", "ae.pt": "dictionary_learning"}[name]
    assert source["sha256"] and source["path"] == str(path.resolve())
    expected = fitted.metrics
    assert record["metrics"].keys() == expected.keys()
    for key, value in expected.items():
        assert record["metrics"][key] == pytest.approx(value, abs=1e-4), key
    assert "code variance by latent class" in capsys.readouterr().out


def test_a_dictionary_declaring_another_identity_is_scored_with_a_warning(tmp_path, fitted, capsys) -> None:
    path = _save_safetensors(tmp_path / "sae.safetensors", fitted, identity="0" * 64)
    assert _score(tmp_path, path)["status"] == "ok"
    assert "declares task identity 000000000000" in capsys.readouterr().err


def _bad(tmp_path: Path, fitted, **change) -> Path:
    weights = _weights(fitted) | change
    path = tmp_path / "bad.safetensors"
    save_file(weights, str(path), metadata={"activation": "topk", "k": "2"})
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"W_enc": np.zeros((7, 16), np.float32)}, r"W_enc has shape \(7, 16\), expected \(10, 16\) for this site"),
        ({"b_dec": np.full(10, np.nan, np.float32)}, "b_dec has 10 NaN/inf values"),
    ],
)
def test_bad_weights_fail_in_one_line(tmp_path, fitted, change, message, capsys) -> None:
    path = _bad(tmp_path, fitted, **change)
    assert main(["score", TASK, "--dictionary", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "o" / "records").exists() or not list((tmp_path / "o" / "records").glob("*.json"))


def test_unknown_activation_pickle_and_wrong_kind_of_file_fail_in_one_line(tmp_path, fitted) -> None:
    path = _save_safetensors(tmp_path / "sae.safetensors", fitted)
    with pytest.raises(sb.StructureBenchError, match="file's activation is topk, not relu"):
        load_dictionary(path, activation="relu")
    save_file(_weights(fitted), str(tmp_path / "plain.safetensors"), metadata={"activation": "gelu"})
    with pytest.raises(sb.StructureBenchError, match="unknown activation 'gelu'"):
        load_dictionary(tmp_path / "plain.safetensors").check(10)
    save_file(_weights(fitted), str(tmp_path / "bare.safetensors"))
    with pytest.raises(sb.StructureBenchError, match="say its activation"):
        load_dictionary(tmp_path / "bare.safetensors")
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"encoder.weight": _Evil()}))
    with pytest.raises(sb.StructureBenchError, match="holds pickled objects"):
        load_dictionary(tmp_path / "evil.pt")
    (tmp_path / "noise.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(sb.StructureBenchError, match="not a readable safetensors file"):
        load_dictionary(tmp_path / "noise.safetensors")


class _Evil:
    """An object whose unpickling would run code: weights_only loading must refuse it."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_changed_file_is_not_scored_under_its_old_digest(tmp_path, fitted) -> None:
    path = _save_safetensors(tmp_path / "sae.safetensors", fitted)
    digest = load_dictionary(path).source["sha256"]
    _bad(tmp_path, fitted, b_enc=np.zeros(16, np.float32)).replace(path)
    params = {"dictionary": str(path), "sha256": digest}
    unit = next(iter(plan([TASK], ["external"], [0], site=SITE, params={"external": params}, cells=[CELL])))
    record = compute_unit(unit).record
    assert record["status"] == "failed" and "the file changed since it was chosen" in record["error"]


def test_a_saelens_sae_trained_on_exported_activations_scores_through_its_directory(tmp_path) -> None:
    """Export -> train with SAELens on the exported array -> save_model -> score the directory."""
    pytest.importorskip("sae_lens")
    assert main(["export", TASK, "--out", str(tmp_path / "data")]) == 0
    X = np.load(tmp_path / "data" / "train.npy")
    method = sb.get_method("saelens")(n_latents=16, l0_target=2, seed=0, architecture="topk", n_steps=600)
    method.fit(X)
    method.sae_.save_model(str(tmp_path / "sl"))
    record = _score(tmp_path, tmp_path / "sl")
    assert record["status"] == "ok" and record["provenance"]["source"]["format"] == "saelens"
    X_test = np.load(tmp_path / "data" / "test.npy")
    np.testing.assert_allclose(load_dictionary(tmp_path / "sl").encode(X_test), method.encode(X_test), atol=1e-4)
    assert record["metrics"]["fvu"] < 0.5


def _save_codes(tmp_path: Path, fitted, codes: np.ndarray | None = None) -> tuple[Path, Path]:
    """The fit's test-split codes as .npy and its decoder as safetensors."""
    X = sb.make(TASK).activations(SITE, "test")
    np.save(tmp_path / "codes.npy", fitted.method.encode(X) if codes is None else codes)
    save_file({"W_dec": fitted.method.decoder_.astype(np.float32), "b_dec": fitted.method.decoder_bias_.astype(np.float32)},
              str(tmp_path / "decoder.safetensors"))
    return tmp_path / "codes.npy", tmp_path / "decoder.safetensors"


def test_codes_and_a_decoder_score_what_the_in_process_fit_scores(tmp_path, fitted) -> None:
    codes, decoder = _save_codes(tmp_path, fitted)
    out = tmp_path / "scored"
    assert main(["score", TASK, "--codes", str(codes), "--decoder", str(decoder), "--out", str(out)]) == 0
    (record,) = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert record["method"] == "external-codes" and record["cell"]["l0_target"] == 2  # the codes' mean L0
    assert record["provenance"]["source"]["decoder"]["sha256"] == file_sha256(decoder)
    for key, value in fitted.metrics.items():
        assert record["metrics"][key] == pytest.approx(value, abs=1e-4), key


def test_codes_of_the_wrong_shape_or_without_a_decoder_fail_in_one_line(tmp_path, fitted, capsys) -> None:
    codes, decoder = _save_codes(tmp_path, fitted, codes=np.zeros((5, 16)))
    assert main(["score", TASK, "--codes", str(codes), "--decoder", str(decoder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(r"codes have shape \(5, 16\), expected \(\d+, 16\)", err), err
    assert main(["score", TASK, "--codes", str(codes), "--out", str(tmp_path / "o")]) == 2
    assert "--codes and --decoder go together" in capsys.readouterr().err


def test_the_readme_bring_your_own_sae_section_runs_as_written(tmp_path, monkeypatch) -> None:
    """Export, both training scripts and score, from the README's own code blocks."""
    pytest.importorskip("sae_lens")
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Bring your own SAE\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(bash|python)\n(.*?)```", section, re.S)
    scripts = {name: code for (kind, code), name in zip([b for b in blocks if b[0] == "python"],
                                                        ["train_topk.py", "train_saelens.py"])}
    commands = [line.split("#")[0].split() for line in blocks[0][1].splitlines()]
    monkeypatch.chdir(tmp_path)
    assert commands[0][:2] == ["structure-bench", "export"] and main(commands[0][1:]) == 0
    for name, code in scripts.items():
        (tmp_path / name).write_text(code)
        subprocess.run([sys.executable, name], check=True, capture_output=True)
    scored = {}
    for dictionary in ("sae.safetensors", "saelens-sae"):
        assert main(["score", "tms-v1", "--dictionary", dictionary, "--out", "scored"]) == 0
    for path in (tmp_path / "scored" / "records").glob("*.json"):
        record = json.loads(path.read_text())
        scored[record["provenance"]["source"]["format"]] = record["metrics"]
    assert commands[2][:2] == ["structure-bench", "score"] and set(scored) == {"safetensors", "saelens"}
    assert scored["safetensors"]["features/mcc"] > 0.9 and scored["saelens"]["features/mcc"] > 0.9
