"""The synthetic tasks: determinism, ground truth that rebuilds the activations, validation figures."""

import numpy as np
import pytest

import structure_bench as sb
from structure_bench.metrics import evaluate
from structure_bench.structures import Directions, Subspaces, Variables

SMALL = {"n_samples": 1500}
TASK_IDS = ["superposition-v1", "circles-v1", "manifold-v1", "hierarchy-v1"]


@pytest.fixture(scope="module", params=TASK_IDS)
def task(request):
    return sb.make(request.param, **SMALL)


def test_two_builds_into_separate_caches_are_identical(tmp_path, monkeypatch):
    for task_id in TASK_IDS:
        fingerprints = []
        for cache in ("a", "b"):
            monkeypatch.setenv("STRUCTURE_BENCH_CACHE", str(tmp_path / task_id / cache))
            fingerprints.append(sb.make(task_id, **SMALL).fingerprint)
        assert fingerprints[0] == fingerprints[1], task_id
    assert sb.make("superposition-v1", **SMALL, seed=1).fingerprint != fingerprints[0]


def test_metadata_names_a_primary_structure_and_a_main_score_it_can_compute(task):
    structures = task.structures()
    assert task.metadata.default_site == "hidden"
    assert task.metadata.primary in structures
    assert task.metadata.main_score.split("/")[0] in structures
    assert len(task.metadata.grid) == 3 and all(cell.l0_target >= 1 for cell in task.metadata.grid)
    assert task.card_text.startswith("# " + task.id)


def test_splits_are_disjoint_and_cover_every_sample(task):
    train, test = task.arrays.train_idx, task.arrays.test_idx
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.union1d(train, test), np.arange(SMALL["n_samples"]))
    assert len(task.inputs("test")) == len(test)


def test_activations_are_the_truth_plus_small_noise(task):
    X = task.activations(split="all").astype(np.float64)
    residual = X - task.clean_activations()
    noise_std = task.kwargs["noise_std"]
    assert residual.std() == pytest.approx(noise_std, rel=0.05)
    assert abs(residual.mean()) < 5 * noise_std / np.sqrt(residual.size)
    assert task.validate()["variance_explained_by_truth"] > 0.99


def test_structures_agree_with_each_other(task):
    structures = task.structures(split="all")
    for structure in structures.values():
        if isinstance(structure, Directions):
            assert np.all(structure.coefficients >= 0)
            assert structure.coefficients.shape == (SMALL["n_samples"], structure.size)
    subspaces = [s for s in structures.values() if isinstance(s, Subspaces)]
    variables = [s for s in structures.values() if isinstance(s, Variables)]
    for subspace, variable in zip(subspaces, variables):
        # A variable is defined exactly where its subspace's feature is on; the last subspace is
        # the span of the linear features.
        assert subspace.labels[-1] == "linear"
        assert np.array_equal(subspace.membership[:, :-1] > 0, variable.values.notna().to_numpy())


def test_oracle_codes_score_perfectly_on_the_primary_structure(task):
    """The true dictionary with the true codes: main score at its best on the test split."""
    structures = task.structures(split="test")
    X = task.activations(split="test")
    clean = task.clean_activations()[task.arrays.test_idx]
    if task.id == "superposition-v1" or task.id == "hierarchy-v1":
        truth = structures["features"]
        decoder, Z = truth.vectors, truth.coefficients
    else:
        # Coordinates of the clean signal in every true direction and subspace axis.
        linear = structures["linear"]
        bases = np.concatenate(structures[task.metadata.primary].bases[:-1])  # without the linear span
        decoder = np.concatenate([bases, linear.vectors])
        Z = np.linalg.lstsq(decoder.T, clean.T, rcond=None)[0].T
    scores = evaluate(X, Z, Z @ decoder, decoder, np.zeros(X.shape[1]), structures)
    assert scores["fvu"] < 0.01
    assert scores[task.metadata.main_score] > 0.99
    assert all(np.isfinite(v) for k, v in scores.items() if "eta2" in k)


def test_superposition_figures():
    task = sb.make("superposition-v1", **SMALL)
    figures = task.validate()
    assert figures["true_l0"] == pytest.approx(task.rates.sum(), rel=0.1)
    assert figures["features_per_dimension"] > 1  # truly in superposition
    assert figures["max_firing_correlation"] > 0.05  # blocks fire together
    assert figures["min_train_firings"] >= 15


def test_hierarchy_figures_obey_the_hierarchy():
    figures = sb.make("hierarchy-v1", **SMALL).validate()
    assert figures["orphan_children"] == 0
    assert figures["max_children_on_together"] == 1
    assert figures["child_given_parent"] == pytest.approx(0.8, abs=0.05)


def test_circle_angles_take_the_calendar_values():
    task = sb.make("circles-v1", **SMALL)
    figures = task.validate()
    assert (figures["distinct_angles0"], figures["distinct_angles1"]) == (7, 12)
    assert figures["circle_rate_min"] == pytest.approx(0.2, abs=0.04)
    radius = task.structures(split="all")["circles"].membership[:, :-1]  # the last is the linear span
    assert np.all((radius == 0) | ((radius >= 0.8) & (radius <= 1.2)))


def test_manifold_curve_fills_its_subspace():
    figures = sb.make("manifold-v1", **SMALL).validate()
    assert figures["curve_pcs_for_99pct"] == 6
    assert figures["curve_length"] > np.pi  # long enough that tiling it takes many latents
    assert figures["curve_rate"] == pytest.approx(0.4, abs=0.04)


def test_topk_sae_recovers_the_superposed_features():
    """The positive control: a top-k SAE at width m and the true L0 finds >= 90% of the features."""
    task = sb.make("superposition-v1")
    cell = task.metadata.grid[1]
    sae = sb.get_method("topk-sae")(cell.n_latents, cell.l0_target, seed=0, progress=False)
    sae.fit(task.activations(split="train"))
    X = task.activations(split="test")
    Z = sae.encode(X)
    scores = evaluate(X, Z, sae.decode(Z), sae.decoder_, sae.decoder_bias_, task.structures())
    assert scores["features/recovered@0.9"] >= 0.9
    assert scores["features/mcc"] >= 0.9
