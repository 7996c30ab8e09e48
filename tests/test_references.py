"""Hypothesis references (baselines/references.py) and k-means score what their construction
implies on tasks whose structure is exact."""

import numpy as np
import pandas as pd
import pytest

import structure_bench as sb
from structure_bench.errors import MethodError
from structure_bench.kinds.hierarchy import Hierarchy
from structure_bench.methods import check_method
from structure_bench.metrics.hierarchy import absorption_rate, matched_latents
from structure_bench.metrics.variables import N_BINS
from structure_bench.planning import plan
from structure_bench_baselines.clustering import KMeansMethod
from structure_bench_baselines.references import Absorbed, ElementTiles, Tiles

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


def _circle_case(angles: np.ndarray, on: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A unit circle in the plane (e0, e1), on where ``on``, plus an independent Gaussian along e2
    (std 0.5): the structures tiles reads, a Subspaces of the two parts and the circle's angle."""
    circle = on[:, None] * np.column_stack([np.cos(angles), np.sin(angles)])
    X = np.column_stack([circle, rng.normal(scale=0.5, size=len(angles))])
    eye = np.eye(3)
    structures = {
        "parts": sb.Subspaces("parts", [eye[:2], eye[2:]], ["circle", "other"]),
        "angles": sb.Variables("angles", pd.DataFrame({"angle": np.where(on, angles, np.nan)}), {"angle": "circular"}),
    }
    return X, structures


def _fit_tiles(X: np.ndarray, structures: dict) -> Tiles:
    size = Tiles.reference_size(X, None, structures)
    return Tiles(n_latents=size, l0_target=1).fit(X, structures=structures)


def test_arc_tiles_leave_the_residual_derived_for_their_bins():
    """Derived: with the angle uniform, the atom of each of the N_BINS = 24 bins points at the bin's
    centre, so an on sample at offset delta from it keeps sin^2(delta) of its unit radius:
    E[sin^2 delta] = (1 - sin(2h) / 2h) / 2 for h = pi / 24, 0.005692. Half the samples are on and
    the other part (variance 0.25) is coded exactly by its direction, so FVU = 0.5 x 0.005692 / 0.75
    and L0 = 0.5 (one tile per on sample) + 1 (the dense coordinate)."""
    rng = np.random.default_rng(0)
    n = 40000
    X, structures = _circle_case(rng.uniform(0, 2 * np.pi, n), rng.random(n) < 0.5, rng)
    method = _fit_tiles(X, structures)
    assert method.tiled_by_ == ["angle", None] and method.n_latents == N_BINS + 1
    codes = method.encode(X)
    fvu = ((method.decode(codes) - X) ** 2).sum() / ((X - X.mean(axis=0)) ** 2).sum()
    h = np.pi / N_BINS
    assert fvu == pytest.approx(0.5 * (1 - np.sin(2 * h) / (2 * h)) / 2 / 0.75, rel=0.03)
    on = ~np.isnan(structures["angles"].values["angle"].to_numpy())
    tiles_firing = (codes[:, :N_BINS] != 0).sum(axis=1)
    assert (tiles_firing == on).all() and (codes[:, :N_BINS] >= 0).all()


def test_tiles_on_a_circle_of_seven_days_are_exact():
    """Seven angles, seven atoms: each on sample is its atom, so the reconstruction is exact."""
    rng = np.random.default_rng(1)
    X, structures = _circle_case(2 * np.pi * rng.integers(0, 7, 5000) / 7, rng.random(5000) < 0.3, rng)
    method = _fit_tiles(X, structures)
    assert method.n_latents == 7 + 1
    assert np.abs(method.decode(method.encode(X)) - X).max() < 1e-9


def test_tiles_need_a_part_that_one_variable_determines():
    """An angle that the activations ignore tiles nothing: the sweep leaves tiles out, saying why."""
    rng = np.random.default_rng(2)
    X, structures = _circle_case(rng.uniform(0, 2 * np.pi, 4000), np.ones(4000, dtype=bool), rng)
    shuffled = structures["angles"].values.sample(frac=1.0, random_state=0).reset_index(drop=True)
    structures["angles"] = sb.Variables("angles", shuffled, {"angle": "circular"})
    reason = Tiles.not_applicable(X, structures)
    assert reason.startswith("no part is mostly a function of one circular or scalar variable")
    with pytest.raises(MethodError, match="tiles: no part"):
        Tiles(n_latents=3).fit(X, structures=structures)


def test_tiles_fire_once_per_circle_or_curve_that_is_on_and_once_per_linear_feature():
    """circles-v1 and manifold-v1: the circles (the curve) are tiled by their angles (position);
    the linear span keeps the true linear features, so L0 is the number of parts on plus the number
    of linear features on (the truth's L0 counts a circle twice, two coordinates)."""
    for task_id, tiled in (("circles-v1", ["angle0", "angle1", "angle2", "angle3", None]), ("manifold-v1", ["t", None])):
        task = sb.make(task_id)
        X, structures = task.activations("hidden", "train"), task.structures("hidden", "train")
        assert _fit_tiles(X, structures).tiled_by_ == tiled
        record = sb.evaluate("tiles", task_id, task.metadata.grid[0], seed=0)
        test = task.structures("hidden", "test")
        parts = next(s for s in test.values() if isinstance(s, sb.Subspaces))
        expected = (test["linear"].coefficients > 0).sum(axis=1).mean() + (parts.membership[:, :-1] > 0).sum(axis=1).mean()
        assert record["status"] == "ok" and record["metrics"]["fvu"] < 0.005
        assert record["metrics"]["l0"] == pytest.approx(expected, rel=0.02)


def test_element_tiles_leave_what_the_other_input_adds():
    """Derived: a part holding f(x) + g(y) on orthogonal axes, over every (x, y) pair once, with
    f and g centred and Var f = 0.6, Var g = 0.4. x explains 0.6 of it, so the part is tiled by x;
    the atom of x is f(x) (g averages to 0 over y), the best atom of a sample is its own x at scale 1,
    and g(y) is left: FVU = 0.4 exactly, one latent per sample."""
    rng = np.random.default_rng(0)
    f, g = rng.normal(size=(6, 2)), rng.normal(size=(5, 2))
    f, g = f - f.mean(axis=0), g - g.mean(axis=0)
    f *= np.sqrt(0.6 / (f**2).sum(axis=1).mean())
    g *= np.sqrt(0.4 / (g**2).sum(axis=1).mean())
    x, y = np.repeat(np.arange(6), 5), np.tile(np.arange(5), 6)
    X = np.column_stack([f[x], g[y]])
    structures = {
        "part": sb.Subspaces("part", [np.eye(4)], ["all"]),
        "inputs": sb.Variables("inputs", pd.DataFrame({"x": x, "y": y}), {"x": "discrete", "y": "discrete"}),
    }
    method = ElementTiles(n_latents=ElementTiles.reference_size(X, None, structures), l0_target=1).fit(X, structures=structures)
    assert method.tiled_by_ == ["x"] and method.n_latents == 6
    codes = method.encode(X)
    np.testing.assert_allclose(codes.sum(axis=1), 1.0, atol=1e-12)
    assert (np.count_nonzero(codes, axis=1) == 1).all()
    fvu = ((method.decode(codes) - X) ** 2).sum() / ((X - X.mean(axis=0)) ** 2).sum()
    assert fvu == pytest.approx(0.4, abs=1e-12)
    assert ElementTiles.not_applicable(X, {"part": structures["part"]}) == "it needs a discrete variable at the site"
    with pytest.warns(UserWarning, match="element-tiles left out on pizza-ideal-v2/hidden: curve-tiles tiles"):
        assert not plan([IDEAL], ["element-tiles"], [0])


def test_absorbed_codes_one_latent_per_family_and_absorb_at_the_derived_rate():
    """Derived on orthonormal features (a parent, its two children, a root), magnitudes U[0.5, 1.5]:
    with parent and child on, the child's atom (v_p + v_c) / sqrt 2 wins over the parent's exactly
    when a_c > (sqrt 2 - 1) a_p, so the absorption rate is 1 - P(a_c < (sqrt 2 - 1) a_p) =
    1 - 0.017766; one latent fires per family that is on (L0 = 0.5 + 0.3); the residual is
    (a_p - a_c)^2 / 2 where the child's atom wins and a_c^2 where the parent's does."""
    rng = np.random.default_rng(0)
    n = 60000
    parent = rng.random(n) < 0.5
    child = np.where(parent & (rng.random(n) < 0.8), rng.integers(1, 3, n), 0)
    on = np.column_stack([parent, child == 1, child == 2, rng.random(n) < 0.3])
    A = on * rng.uniform(0.5, 1.5, on.shape)
    labels = pd.DataFrame({"parent": [-1, 0, 0, -1]})
    truth = Hierarchy("features", np.eye(4), A, labels)
    method = Absorbed(n_latents=4, l0_target=2).fit(A, truth=truth, structures={})
    codes = method.encode(A)
    fires = codes != 0
    assert fires[:, 0].sum() + fires[:, 1:3].any(axis=1).sum() == parent.sum()  # never both in a family
    assert fires.sum(axis=1).mean() == pytest.approx(on[:, [0, 3]].sum(axis=1).mean())
    match = matched_latents(method.decoder_, fires, np.eye(4))
    r = np.sqrt(2) - 1
    assert absorption_rate(fires, A, labels["parent"].to_numpy(), match) == pytest.approx(1 - 0.017766, abs=0.003)
    a_p, a_c = np.meshgrid(*2 * [np.linspace(0.5, 1.5, 2001)[:-1] + 0.00025], indexing="ij")
    per_pair = np.where(a_c > r * a_p, (a_p - a_c) ** 2 / 2, a_c**2).mean()
    residual = ((method.decode(codes) - A) ** 2).sum(axis=1).mean()
    assert residual == pytest.approx((child > 0).mean() * per_pair, rel=0.03)


def test_absorbed_refuses_a_site_without_a_hierarchy_or_the_wrong_width():
    X = np.eye(4)
    assert Absorbed.not_applicable(X, {}) == "it needs a Hierarchy with parents at the site"
    with pytest.raises(MethodError, match="absorbed needs a Hierarchy with parents"):
        Absorbed(n_latents=4).fit(X, truth=sb.Directions("flat", np.eye(4), np.eye(4)), structures={})
    truth = Hierarchy("features", np.eye(4), np.eye(4), pd.DataFrame({"parent": [-1, 0, 0, -1]}))
    with pytest.raises(MethodError, match="n_latents=5 but the hierarchy has 4 features"):
        Absorbed(n_latents=5).fit(X, truth=truth, structures={})
