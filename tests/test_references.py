"""Hypothesis references (baselines/references.py) and k-means score what their construction
implies on tasks whose structure is exact."""

import numpy as np
import pytest

import structure_bench as sb
from structure_bench.planning import plan
from structure_bench.methods import check_method
from structure_bench_baselines.clustering import KMeansMethod

IDEAL = "pizza-ideal-v2"  # every neuron exactly ReLU(A (cos(w a + phi) + cos(w b + phi))), 3 key frequencies


@pytest.fixture(scope="module")
def ideal_records() -> dict:
    return {m: sb.evaluate(m, IDEAL, sb.Cell(48, 3), seed=0) for m in ("curve-tiles", "subspace-pca", "oracle-topk")}


def test_curve_tiles_rebuild_the_ideal_pizza_with_one_atom_per_frequency(ideal_records):
    """Derived: a frequency's activations are s F(psi), so the atom at psi = j (the mean there,
    E[s | j] F(j)) times the least-squares scale s / E[s | j] is the sample itself: FVU 0 at L0 =
    one per frequency, every live atom a narrow tile of its own frequency."""
    record = ideal_records["curve-tiles"]
    metrics = record["metrics"]
    task = sb.make(IDEAL)
    keys = len(task.structures(task.metadata.default_site, "test")["frequencies"].bases)
    assert record["status"] == "ok" and record["params"]["n_latents"] == keys * 2 * 59
    assert metrics["fvu"] < 1e-6 and metrics["l0"] == pytest.approx(keys)
    assert metrics["latents/one_per_frequency"] == 1.0
    assert metrics["latents/variance_share[tile]"] == pytest.approx(1.0)
    assert metrics["latents/r2_curve"] == pytest.approx(1.0, abs=1e-9)


def test_subspace_pca_is_dense_and_exact_inside_the_frequencies(ideal_records):
    """It keeps all but 0.1% of each part's variance, and the ideal pizza has nothing outside them."""
    metrics = ideal_records["subspace-pca"]["metrics"]
    assert metrics["fvu"] < 1e-3
    assert metrics["latents/share[dense]"] == 1.0 and metrics["frequencies/purity"] > 0.999


def test_oracle_topk_keeps_exactly_k_neurons(ideal_records):
    metrics = ideal_records["oracle-topk"]["metrics"]
    assert metrics["l0"] == pytest.approx(3.0) and metrics["latents/share[aligned]"] == 1.0
    assert metrics["neurons/mcc"] > 0.999


def test_references_leave_out_sites_without_their_structure():
    """curve-tiles needs curve points and subspace-pca a Subspaces truth: a sweep leaves them out
    (with a warning) where the site has none, instead of failing there."""
    with pytest.warns(UserWarning, match="curve-tiles left out on superposition-v1"):
        units = plan(["superposition-v1", IDEAL], ["curve-tiles"], [0])
    assert {u.task for u in units} == {IDEAL}
    with pytest.warns(UserWarning, match="subspace-pca left out on superposition-v1"):
        assert not plan(["superposition-v1"], ["subspace-pca"], [0])


def test_kmeans_meets_the_protocol_and_finds_separated_clusters():
    check_method(KMeansMethod)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 8)) * 10
    X = np.repeat(centres, 40, axis=0) + rng.normal(scale=0.01, size=(200, 8))
    method = KMeansMethod(n_latents=5, seed=0).fit(X)
    codes = method.encode(X)
    assert (codes.sum(axis=1) == 1).all() and codes.any(axis=0).all()
    np.testing.assert_allclose(method.decode(codes), np.repeat(centres, 40, axis=0), atol=0.01)
    assert method.training_["converged"] and method.training_["final_loss"] < 1e-5
    # Fewer distinct samples than latents: one centroid per distinct sample, the other latents never fire.
    few = KMeansMethod(n_latents=9, seed=0).fit(centres)
    assert few.model_.n_clusters == 5 and np.count_nonzero(few.encode(X).any(axis=0)) == 5
