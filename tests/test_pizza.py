"""pizza-v1 and pizza-ideal-v1: accuracy, fitted ground truth, diagnostics, model, cache."""

from __future__ import annotations

import numpy as np
import pytest

from structure_bench.cache import CacheWarning, entry_dir
from structure_bench.errors import UnknownTaskError
from structure_bench.registry import make
from structure_bench_tasks.pizza.fourier import fit_neurons



@pytest.fixture(scope="module")
def pizza():
    return make("pizza-v1")


@pytest.fixture(scope="module")
def pizza_figures(pizza):
    return pizza.validate()


@pytest.fixture(scope="module")
def ideal():
    return make("pizza-ideal-v1")


def test_pizza_is_accurate_on_all_pairs(pizza_figures):
    assert pizza_figures["accuracy"] >= 0.99


def test_pizza_neurons_are_mostly_fitted(pizza_figures):
    assert pizza_figures["fitted_variance_share"] >= 0.9
    assert pizza_figures["neurons_fitted"] >= 20
    assert 2 <= len(pizza_figures["key_frequencies"]) <= 10


def test_pizza_diagnostics_say_pizza(pizza_figures):
    # Each pizza against its clock counterpart: tests/test_modular_addition.py.
    assert pizza_figures["gradient_symmetricity"] > 0.9
    assert pizza_figures["logit_scale_correlation"] > 0.3
    assert pizza_figures["circularity"] > 0.9


def test_pizza_structures_match_the_fit(pizza, pizza_figures):
    structures = pizza.structures("hidden")
    labels = structures["neurons"].labels
    assigned = labels.assigned.to_numpy()
    frequencies = structures["frequencies"]
    assert frequencies.size == assigned.sum()
    assert frequencies.labels == [f"k={k}" for k in pizza_figures["key_frequencies"]]
    # Each frequency subspace is spanned by standard-basis vectors of its own neurons.
    for label, basis in zip(frequencies.labels, frequencies.bases):
        k = int(label[2:])
        support = np.flatnonzero(np.abs(basis).sum(axis=0) > 1e-9)
        assert set(support) == set(np.flatnonzero(assigned & (labels.k.to_numpy() == k)))


@pytest.mark.parametrize("site", ["hidden", "embed"])
def test_forward_on_clean_activations_reproduces_the_model(pizza, site):
    X = pizza.activations(site, "test")
    logits = pizza.forward(X, site, "test")
    clean = pizza._internals["logits"][pizza.arrays.test_idx]
    np.testing.assert_allclose(logits, clean, atol=1e-4 * np.abs(clean).max())
    assert np.array_equal(logits.argmax(axis=1), pizza.targets("test"))


def test_ideal_is_exact(ideal):
    figures = ideal.validate()
    assert figures["accuracy"] == 1.0
    assert figures["distance_irrelevance"] < 0.05
    fits = fit_neurons(ideal._internals["pre"], ideal.p)
    table = ideal.neuron_table
    assert np.array_equal(fits.k, table.k)
    np.testing.assert_allclose(np.exp(1j * fits.phi), np.exp(1j * table.phi), atol=1e-9)
    np.testing.assert_allclose(fits.r2, 1.0, atol=1e-9)
    np.testing.assert_allclose(fits.amplitude, 1.0, atol=1e-9)


def test_ideal_forward_and_structures(ideal):
    X = ideal.activations("embed", "all")
    assert np.array_equal(ideal.forward(X, "embed", "all").argmax(axis=1), ideal.targets("all"))
    bases = ideal.structures("embed")["fourier"].bases
    assert [b.shape[0] for b in bases] == [2, 2, 2]
    frequencies = ideal.structures("hidden")["frequencies"]
    assert [b.shape[0] for b in frequencies.bases] == [32, 32, 32]


def test_fresh_builds_share_a_fingerprint(monkeypatch, tmp_path):
    fingerprints = []
    for name in ("one", "two"):
        monkeypatch.setenv("STRUCTURE_BENCH_CACHE", str(tmp_path / name))
        fingerprints.append(make("pizza-v1").fingerprint)
    assert fingerprints[0] == fingerprints[1]


def test_corrupted_cache_is_rebuilt_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("STRUCTURE_BENCH_CACHE", str(tmp_path))
    expected = make("pizza-ideal-v1").fingerprint
    task = make("pizza-ideal-v1")
    (entry_dir(task) / "arrays.npz").write_bytes(b"not an npz file")
    with pytest.warns(CacheWarning, match="corrupt"):
        assert task.fingerprint == expected


def test_unknown_ids_give_one_line_errors():
    with pytest.raises(UnknownTaskError, match="did you mean 'pizza-v1'") as unknown:
        make("piza-v1")
    with pytest.raises(UnknownTaskError, match="no version v7") as version:
        make("pizza-v7")
    for error in (unknown, version):
        assert "\n" not in str(error.value)


def test_training_is_deterministic():
    """Two short runs of the shipped training script from the same seed give identical weights."""
    import torch

    from structure_bench_tasks.pizza.model import ModelConfig
    from structure_bench_tasks.pizza.train import TrainConfig, train

    runs = [train(ModelConfig(d_model=16), TrainConfig(steps=20))[0].state_dict() for _ in range(2)]
    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])


def test_a_saved_checkpoint_has_a_plain_files_mode(tmp_path):
    # safetensors itself writes 0600; a shipped checkpoint must be readable like any file.
    from structure_bench.results import file_mode
    from structure_bench_tasks.pizza.model import ModAddTransformer, ModelConfig, save_checkpoint

    path = tmp_path / "model.safetensors"
    save_checkpoint(ModAddTransformer(ModelConfig(d_model=8)), path, {})
    assert path.stat().st_mode & 0o777 == file_mode()
