"""structure-bench export: the arrays, inputs and manifest a trainer elsewhere reads."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

import structure_bench as sb
from structure_bench.cli import main
from structure_bench.export import export_task


def test_export_writes_the_splits_inputs_and_a_manifest_that_names_the_task(tmp_path, capsys):
    assert main(["export", "tms-v1", "--out", str(tmp_path / "tms")]) == 0
    assert "exported tms-v1/hidden" in capsys.readouterr().out
    out = tmp_path / "tms"
    task = sb.make("tms-v1")
    manifest = json.loads((out / "manifest.json").read_text())
    tensors = load_file(str(out / "activations.safetensors"))
    for split in ("train", "test"):
        expected = task.activations("hidden", split).astype(np.float32)
        np.testing.assert_array_equal(tensors[split], expected)
        np.testing.assert_array_equal(np.load(out / f"{split}.npy"), expected)
        assert manifest["splits"][split] == len(expected)
    assert manifest["task_identity"] == task.identity and manifest["site"] == "hidden" and manifest["d"] == 10
    inputs = pd.read_csv(out / "inputs.csv")
    assert list(inputs.split.value_counts().sort_index()) == [manifest["splits"]["test"], manifest["splits"]["train"]]
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest


def test_export_refuses_bad_input_in_one_line(tmp_path):
    with pytest.raises(sb.StructureBenchError, match="has no site 'nowhere'"):
        export_task("tms-v1", tmp_path / "x", site="nowhere")
    (tmp_path / "file").write_text("")
    with pytest.raises(sb.StructureBenchError, match="exists and is not a directory"):
        export_task("tms-v1", tmp_path / "file")
