"""Structure kinds, the task registry and the verified activation cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import toy_task

import structure_bench as sb
from structure_bench.cache import CacheWarning, cache_root, entry_dir
from structure_bench.registry import parse_task_id


# -- structures -----------------------------------------------------------------------------

def test_directions_are_normalised_and_shape_checked() -> None:
    d = sb.Directions("f", np.array([[3.0, 4.0], [0.0, 2.0]]), coefficients=np.ones((5, 2)))
    assert np.allclose(np.linalg.norm(d.vectors, axis=1), 1) and np.allclose(d.vectors[0], [0.6, 0.8])
    assert d.take(np.array([0, 2])).coefficients.shape == (2, 2)
    with pytest.raises(ValueError, match="columns"):
        sb.Directions("f", np.eye(2), coefficients=np.ones((5, 3)))
    with pytest.raises(ValueError, match="zero vector"):
        sb.Directions("f", np.zeros((1, 2)))
    with pytest.raises(ValueError, match="NaN"):
        sb.Directions("f", np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="labels"):
        sb.Directions("f", np.eye(2), labels=pd.DataFrame({"k": [1, 2, 3]}))


def test_subspaces_are_orthonormalised() -> None:
    s = sb.Subspaces("g", [np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 5.0]])])
    assert s.size == 3 and s.labels == ["0", "1"]
    for basis in s.bases:
        assert np.allclose(basis @ basis.T, np.eye(len(basis)))
    # The span is preserved: projecting the original rows onto the basis loses nothing.
    original = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert np.allclose(original @ s.bases[0].T @ s.bases[0], original)
    # Orthonormal input comes back unchanged (signs included), so a basis can carry orientation.
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))[0][:2]
    assert np.allclose(sb.Subspaces("r", [rotation]).bases[0], rotation)
    with pytest.raises(ValueError, match="rank-deficient"):
        sb.Subspaces("g", [np.array([[1.0, 0.0], [2.0, 0.0]])])
    with pytest.raises(ValueError, match="labels"):
        sb.Subspaces("g", [np.eye(2)], labels=["a", "b"])


def test_variables_kinds_must_match_columns() -> None:
    values = pd.DataFrame({"c": [0, 1, 2], "theta": [0.0, 1.0, 2.0]})
    v = sb.Variables("inputs", values, {"c": "discrete", "theta": "circular"})
    assert list(v.take(np.array([2])).values.c) == [2]
    with pytest.raises(ValueError, match="do not match"):
        sb.Variables("inputs", values, {"c": "discrete"})
    with pytest.raises(ValueError, match="unknown kind"):
        sb.Variables("inputs", values, {"c": "discrete", "theta": "angle"})


# -- registry -------------------------------------------------------------------------------

def test_task_ids_are_versioned() -> None:
    assert parse_task_id("pizza-v1") == (None, "pizza", 1)
    assert parse_task_id("pkg.mod:pizza-ideal-v12") == ("pkg.mod", "pizza-ideal", 12)
    for bad in ("pizza", "pizza-1", "pizza-vX", "-v1"):
        with pytest.raises(sb.StructureBenchError, match="malformed task id"):
            parse_task_id(bad)


def test_unknown_ids_and_versions_get_helpful_errors() -> None:
    with pytest.raises(sb.UnknownTaskError, match="unknown task 'tooy-v1'; did you mean 'toy-v1'"):
        sb.make("tooy-v1")
    with pytest.raises(sb.StructureBenchError, match="malformed task id 'toy-vl'.*did you mean 'toy-v1'"):
        sb.make("toy-vl")
    with pytest.raises(sb.UnknownTaskError, match="has no version v3; registered: toy-v1"):
        sb.make("toy-v3")
    with pytest.raises(sb.StructureBenchError, match="already registered"):
        sb.register_task("toy-v1", entry_point=toy_task.ToyTask, seed=1)  # another task under a taken id


def test_make_imports_a_module_prefix_and_passes_kwargs() -> None:
    task = sb.make("toy_task:toy-v1", n_samples=200)
    assert task.id == "toy-v1" and "toy-v1" in sb.list_tasks()
    assert task.activations(split="all").shape == (200, 8)
    assert len(task.activations(split="train")) + len(task.activations(split="test")) == 200


def test_splits_and_structures_line_up() -> None:
    task = sb.make("toy-v1")
    X = task.activations("hidden", "test")
    features = task.structures("hidden", "test")["features"]
    # The toy task is noise-free: the truth's coefficients rebuild the split's activations.
    assert np.allclose(features.coefficients @ features.vectors, X, atol=1e-5)
    assert task.primary_structure().name == "features"
    with pytest.raises(sb.StructureBenchError, match="no site 'embed'"):
        task.activations("embed")


# -- cache ----------------------------------------------------------------------------------

def test_cache_location_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRUCTURE_BENCH_CACHE", str(tmp_path / "elsewhere"))
    assert cache_root() == tmp_path / "elsewhere"
    task = sb.make("toy-v1")
    task.activations()
    assert (entry_dir(task) / "manifest.json").exists() and entry_dir(task).parent == tmp_path / "elsewhere"
    monkeypatch.delenv("STRUCTURE_BENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "structure_bench"


def test_fresh_builds_are_bit_identical(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fingerprints = []
    for name in ("one", "two"):
        monkeypatch.setenv("STRUCTURE_BENCH_CACHE", str(tmp_path / name))
        fingerprints.append(sb.make("toy-v1").fingerprint)
    assert fingerprints[0] == fingerprints[1]
    # A cached load verifies and returns the same fingerprint.
    assert sb.make("toy-v1").fingerprint == fingerprints[1]


def test_corrupt_cache_is_rebuilt_with_a_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRUCTURE_BENCH_CACHE", str(tmp_path))
    good = sb.make("toy-v1")
    expected = good.fingerprint
    npz = entry_dir(good) / "arrays.npz"
    raw = bytearray(npz.read_bytes())
    raw[1000] ^= 0xFF  # inside the first array's data
    npz.write_bytes(bytes(raw))
    with pytest.warns(CacheWarning, match="corrupt"):
        assert sb.make("toy-v1").fingerprint == expected
    npz.write_bytes(npz.read_bytes()[: len(raw) // 2])  # truncated
    with pytest.warns(CacheWarning, match="corrupt"):
        assert sb.make("toy-v1").fingerprint == expected
    (entry_dir(good) / "manifest.json").write_text("{not json")
    with pytest.warns(CacheWarning, match="corrupt"):
        assert sb.make("toy-v1").fingerprint == expected


def test_stale_cache_is_rebuilt_with_a_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRUCTURE_BENCH_CACHE", str(tmp_path))
    task = sb.make("toy-v1")
    expected = task.fingerprint
    manifest = entry_dir(task) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"source_hash": "', '"source_hash": "0'))
    with pytest.warns(CacheWarning, match="stale"):
        assert sb.make("toy-v1").fingerprint == expected


def test_check_method_flags_a_broken_method() -> None:
    sb.check_method(toy_task.LeastSquares)
    with pytest.raises(sb.MethodError, match="NaN"):
        sb.check_method(toy_task.ReturnsNaN)
