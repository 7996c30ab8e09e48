"""The trained tasks tms-v1 and group-v1: shipped checkpoints, ground truth, model and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import structure_bench as sb
from structure_bench_tasks.group import analysis
from structure_bench_tasks.group.model import GroupMLP, load_weights
from structure_bench_tasks.group.symmetric import ORDER, irreps, multiplication_table
from structure_bench_tasks.group.train import TrainConfig as GroupConfig
from structure_bench_tasks.group.train import train as train_group
from structure_bench_tasks.tms.train import TrainConfig as TmsConfig
from structure_bench_tasks.tms.train import train as train_tms


def check_tms_figures(figures: dict) -> None:
    """What makes the toy model a superposition task (shared by shipped and retrained checks)."""
    assert figures["n_represented"] > figures["n_hidden"] * 2  # in superposition, >= 2 features per dim
    assert figures["loss"] < 0.5 * figures["loss_without_superposition"]
    assert figures["dimensions_per_feature"] < 0.5
    assert figures["max_cosine"] < 0.5  # non-antipodal features interfere only mildly


def check_group_figures(figures: dict) -> None:
    """What makes the network a GCR network (shared by shipped and retrained checks)."""
    assert figures["accuracy_all_pairs"] == 1.0
    assert "standard" in figures["key_irreps"]
    assert figures["accuracy_key_neurons_only"] == 1.0
    assert figures["neurons_share_ge_0.9"] >= 0.85
    assert figures["hidden_variance_in_key_neurons"] >= 0.8
    assert figures["logit_variance_in_key_irreps"] >= 0.7


# -- S4 and its irreps ------------------------------------------------------------------------

def test_irreps_are_homomorphisms_with_orthonormal_characters():
    table = multiplication_table()
    characters = np.stack([rho.character for rho in irreps()])
    np.testing.assert_allclose(characters @ characters.T / ORDER, np.eye(len(irreps())), atol=1e-12)
    assert sum(rho.dim**2 for rho in irreps()) == ORDER
    for rho in irreps():
        products = np.einsum("xij,yjk->xyik", rho.matrices, rho.matrices)
        np.testing.assert_allclose(products, rho.matrices[table], atol=1e-12)


def test_irrep_projectors_decompose_functions_on_the_group():
    projectors = [rho.projector() for rho in irreps()]
    np.testing.assert_allclose(sum(projectors), np.eye(ORDER), atol=1e-12)
    np.testing.assert_allclose(projectors[2] @ projectors[3], 0.0, atol=1e-12)
    np.testing.assert_allclose(projectors[3] @ projectors[3], projectors[3], atol=1e-12)


def test_logit_shares_recover_a_planted_character():
    x, y, _ = analysis.all_pairs()
    g = multiplication_table()[multiplication_table()[x, y][:, None], [analysis.inverse(z) for z in range(ORDER)]]
    shares = analysis.logit_shares(irreps()[3].character[g] + 0.5 * irreps()[1].character[g])
    # Characters are orthonormal over the triples: variances 1 and 0.25.
    assert shares["standard"] == pytest.approx(1 / 1.25)
    assert shares["sign"] == pytest.approx(0.25 / 1.25)
    assert shares["2d"] == pytest.approx(0.0, abs=1e-12)


# -- group-v1 ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def group():
    return sb.make("group-v1")


def test_group_shipped_model_passes_validation(group):
    figures = group.validate()
    check_group_figures(figures)
    assert figures["key_irreps"] == ["sign", "2d", "standard"]


def test_group_forward_reproduces_the_model(group):
    for site in ("hidden", "embed"):
        logits = group.forward(group.activations(site, "test"), site, "test")
        assert (logits.argmax(1) == group.targets("test")).all()
    model = GroupMLP(ORDER, GroupConfig().d_embed, GroupConfig().d_hidden).double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in load_weights().items()})
    inputs = group.inputs("all")
    with torch.no_grad():
        expected = model(torch.tensor(inputs["x"].to_numpy()), torch.tensor(inputs["y"].to_numpy()))
    np.testing.assert_allclose(group.forward(group.activations("hidden", "all"), "hidden", "all"),
                               expected.numpy(), rtol=1e-4, atol=1e-3)


def test_group_ground_truth_is_consistent(group):
    irreps_hidden = group.structures("hidden")["irreps"]
    assert irreps_hidden.labels == ["sign", "2d", "standard"]
    assert [b.shape[0] for b in irreps_hidden.bases] == [7, 20, 64]
    assert irreps_hidden.size == 91 == group.metadata.grid[1].n_latents
    # Neuron subspaces are disjoint sets of coordinate axes.
    stacked = np.concatenate(irreps_hidden.bases)
    np.testing.assert_allclose(stacked @ stacked.T, np.eye(len(stacked)), atol=1e-12)
    # The sign irrep's embedding directions carry a function of sign(x) and sign(y) only.
    embed_sign = group.structures("embed", "all")["irreps"].bases[0]
    X = group.activations("embed", "all").astype(np.float64)
    projected = X @ embed_sign.T
    signs = irreps()[1].character
    inputs = group.inputs("all")
    keys = signs[inputs["x"]] * 2 + signs[inputs["y"]]
    spread = max(projected[keys == k].std(0).max() for k in np.unique(keys))
    assert spread < 0.05 * projected.std()
    assert set(group.structures("hidden")["inputs"].values.columns) == {"x", "y", "z"}
    np.testing.assert_array_equal(group.targets("all"), multiplication_table()[inputs["x"], inputs["y"]])


# -- tms-v1 -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tms():
    return sb.make("tms-v1")


def test_tms_shipped_model_passes_validation(tms):
    figures = tms.validate()
    check_tms_figures(figures)
    assert figures["n_represented"] == 25 == tms.metadata.grid[1].n_latents


def test_tms_ground_truth_reconstructs_the_activations(tms):
    features = tms.primary_structure(split="test")
    norms = features.labels["norm"].to_numpy()
    rebuilt = (features.coefficients * norms) @ features.vectors
    X = tms.activations("hidden", "test")
    # The unrepresented features have ||W_i|| ~ 0.01: what they add is tiny.
    assert np.abs(rebuilt - X).max() < 0.05
    assert ((features.coefficients > 0).sum(1).mean()) == pytest.approx(1.24, abs=0.05)
    assert not tms.has_model("hidden")


# -- determinism --------------------------------------------------------------------------------

@pytest.mark.parametrize("task_id", ["tms-v1", "group-v1"])
def test_builds_are_identical_across_caches(task_id, tmp_path, monkeypatch):
    fingerprints = []
    for name in ("a", "b"):
        monkeypatch.setenv("STRUCTURE_BENCH_CACHE", str(tmp_path / name))
        fingerprints.append(sb.make(task_id).fingerprint)
    assert fingerprints[0] == fingerprints[1]


# -- retraining (slow) ------------------------------------------------------------------------

def _validate_retrained(task_id: str, model: torch.nn.Module, tmp_path) -> dict:
    """The task's validation figures recomputed with ``model`` in place of the shipped checkpoint."""
    path = tmp_path / "checkpoint.safetensors"
    save_file(model.weights(), str(path))
    task = sb.make(task_id)
    task.checkpoint = path
    return task.validate()


@pytest.mark.slow
def test_retrained_tms_passes_validation(tmp_path):
    torch.set_num_threads(1)
    check_tms_figures(_validate_retrained("tms-v1", train_tms(TmsConfig()), tmp_path))


@pytest.mark.slow
def test_retrained_group_passes_validation(tmp_path):
    torch.set_num_threads(1)
    check_group_figures(_validate_retrained("group-v1", train_group(GroupConfig()), tmp_path))
