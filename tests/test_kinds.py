"""Structure kinds: the registry, each kind's storage and scoring, and the Curves kind on cases
with hand-derived answers."""

import math

import numpy as np
import pandas as pd
import pytest

from structure_bench.cache import flatten, unflatten
from structure_bench.errors import MethodError
from structure_bench.hidden import SignedPermutation
from structure_bench.identity import statistics
from structure_bench.kinds import Kind, kind_named, kind_of, metric_descriptions, register_kind
from structure_bench.kinds.curves import Curves, curve_eta2
from structure_bench.kinds.hierarchy import Hierarchy
from structure_bench.metrics import METRIC_DESCRIPTIONS, evaluate, metric_range
from structure_bench.metrics.variables import adjusted_eta2
from structure_bench.structures import Directions, Subspaces, Variables
from structure_bench.summary import profile_columns
from structure_bench.task import TaskArrays
from structure_bench_baselines.calibration import Oracle

rng = np.random.default_rng(0)
N, D = 240, 6
PARENTS = np.array([-1, 0, 0, -1, 3, 3])


def every_kind() -> dict[str, object]:
    """One structure of each kind over N samples in R^D (standard basis directions)."""
    G = np.eye(D)
    A = np.abs(rng.normal(size=(N, D))) * (rng.random((N, D)) < 0.5)
    return {
        "features": Directions("features", G, A, pd.DataFrame({"k": np.arange(D), "name": list("abcdef")})),
        "groups": Subspaces("groups", [G[:2], G[2:]], ["low", "high"], np.abs(rng.normal(size=(N, 2)))),
        "inputs": Variables("inputs", pd.DataFrame({"angle": rng.uniform(0, 6, N)}), {"angle": "circular"}),
        "tree": Hierarchy("tree", G, A, pd.DataFrame({"parent": PARENTS})),
        "curves": Curves("curves", rng.integers(0, 8, size=(N, 2)), ["k=1", "k=2"], rng.uniform(0, 2, (N, 2))),
    }


def task_arrays(structures: dict) -> TaskArrays:
    return TaskArrays(
        activations={"hidden": rng.normal(size=(N, D)).astype(np.float32)},
        inputs=pd.DataFrame({"a": np.arange(N)}),
        structures={"hidden": structures},
        train_idx=np.arange(N // 2),
        test_idx=np.arange(N // 2, N),
    )


def assert_same_structure(a, b) -> None:
    assert type(a) is type(b) and a.name == b.name
    for field in a.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y)
        elif isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            assert all(np.array_equal(u, v) for u, v in zip(x, y))
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y)
        else:
            assert x == y, field


# -- the registry ---------------------------------------------------------------------------

def test_every_structure_has_its_own_kind():
    structures = every_kind()
    kinds = {name: type(kind_of(s)).__name__ for name, s in structures.items()}
    assert kinds == {"features": "DirectionsKind", "groups": "SubspacesKind", "inputs": "VariablesKind",
                     "tree": "HierarchyKind", "curves": "CurvesKind"}
    assert all(kind_named(s.kind) is kind_of(s) for s in structures.values())


def test_an_unregistered_structure_or_tag_is_refused():
    with pytest.raises(TypeError, match="not a registered structure kind"):
        kind_of(np.eye(3))
    with pytest.raises(ValueError, match="no structure kind 'tensors'"):
        kind_named("tensors")


def test_a_second_kind_for_the_same_structure_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        @register_kind
        class OtherDirections(Kind[Directions]):
            structure = Directions


# -- what each kind provides ----------------------------------------------------------------

def test_every_kind_round_trips_through_the_cache_layout():
    structures = every_kind()
    flat, layout = flatten(task_arrays(structures))
    back = unflatten(flat, layout).structures["hidden"]
    for name, structure in structures.items():
        assert layout["structures"]["hidden"][name]["kind"] == structure.kind
        assert_same_structure(structure, back[name])


def test_reference_form_keeps_projectors_and_the_hierarchys_pinned_kind():
    summary = statistics(task_arrays(every_kind()))
    kinds = {name: meta["kind"] for name, meta in summary["layout"]["structures"]["hidden"].items()}
    assert kinds["tree"] == "directions"  # hierarchy-v1 was pinned as the directions it extends
    names = set(summary["arrays"])
    assert {"structures/hidden/groups/projector/0", "structures/hidden/curves/points"} <= names
    assert not any("/basis/" in name for name in names)


def test_oracle_dictionary_and_similarity_only_where_a_kind_has_geometry():
    structures = every_kind()
    for name in ("features", "tree", "groups"):
        structure = structures[name]
        dictionary = kind_of(structure).oracle_dictionary(structure)
        assert dictionary.shape == (structure.size, D)
        similarity = kind_of(structure).similarity(structure, dictionary)
        assert similarity.values.max() == pytest.approx(1.0) and len(similarity.parts) == len(similarity.values)
    for name in ("inputs", "curves"):
        structure = structures[name]
        assert kind_of(structure).oracle_dictionary(structure) is None
        assert kind_of(structure).similarity(structure, np.eye(D)) is None
        with pytest.raises(MethodError, match="oracle needs a truth whose kind has a dictionary"):
            Oracle(n_latents=D, l0_target=1, seed=0).fit(np.eye(D), truth=structure)


def test_a_map_of_the_units_moves_geometry_only():
    structures = every_kind()
    swap = SignedPermutation(np.array([1, 0, 2, 3, 4, 5]), -np.ones(D))
    moved = {name: swap.structure(s) for name, s in structures.items()}
    np.testing.assert_array_equal(moved["tree"].vectors[0], -np.eye(D)[1])
    assert type(moved["tree"]) is Hierarchy
    np.testing.assert_allclose(moved["groups"].bases[0], -np.eye(D)[[1, 0]], atol=1e-12)
    assert moved["curves"] is structures["curves"] and moved["inputs"] is structures["inputs"]


def test_headline_columns_and_task_list_words():
    structures = every_kind()
    frame = pd.DataFrame(columns=["features/mcc", "groups/purity", "inputs/eta2_angle", "tree/mmcs_learned",
                                  "curves/curve_eta2", "fvu"])
    assert profile_columns(frame, structures) == ["features/mcc", "groups/purity", "inputs/eta2_angle",
                                                  "tree/mmcs_learned", "curves/curve_eta2", "fvu"]
    words = {name: kind_of(s).describe(s) for name, s in structures.items()}
    assert words == {"features": "directions, 6", "groups": "subspaces, 6", "inputs": "variables",
                     "tree": "hierarchy, 6", "curves": "curves, 2"}


def test_every_metric_of_every_kind_is_described_and_in_its_range():
    structures = every_kind()
    Z = np.abs(rng.normal(size=(N, 8)))
    decoder = rng.normal(size=(8, D))
    described = METRIC_DESCRIPTIONS | metric_descriptions()
    for key, value in evaluate(Z @ decoder, Z, Z @ decoder, decoder, np.zeros(D), structures).items():
        metric = key.split("/")[-1]
        template = "eta2_<variable>" if metric.startswith("eta2_") else metric.split("[")[0] + (
            "[<label>]" if "[" in metric else "")
        assert template in described, key
        low, high = metric_range(key, 8)
        assert math.isnan(value) or low <= value <= high, (key, value)
        if "/" in key:
            assert (low, high) != (-np.inf, np.inf), f"{key} has no range"


# -- hierarchy ------------------------------------------------------------------------------

def test_only_a_hierarchy_is_scored_for_absorption():
    structures = every_kind()
    A = structures["tree"].coefficients
    plain = Directions("plain", np.eye(D), A, pd.DataFrame({"parent": PARENTS}))
    scores = evaluate(A, A, A, np.eye(D), np.zeros(D), {"tree": structures["tree"], "plain": plain})
    assert scores["tree/absorption_rate"] == 0.0 and scores["tree/hedging"] == pytest.approx(0.0, abs=1e-12)
    assert scores["tree/mcc"] == scores["plain/mcc"] == pytest.approx(1.0)
    assert not any(key.startswith("plain/absorption") for key in scores)


@pytest.mark.parametrize("labels, message", [
    (None, "needs labels with a 'parent' column"),
    (pd.DataFrame({"parent": [-1, 5, 0]}), "parent must be a feature index or -1"),
    (pd.DataFrame({"parent": [-1, 1, 0]}), "its own parent"),
])
def test_a_hierarchy_needs_a_valid_parent_column(labels, message):
    with pytest.raises(ValueError, match=message):
        Hierarchy("tree", np.eye(3), labels=labels)


# -- curves ---------------------------------------------------------------------------------

def factorial_design() -> tuple[np.ndarray, np.ndarray]:
    """Every (u, v, w) with u, v in 0..11 and w in {0, 1} once: points int [288, 2] = (u, v), and w [288].

    A function of u is exact on curve 0 and, averaged over each level of curve 1, constant (and
    vice versa); a function of w alone has the same mean at every level of both curves.
    """
    u, v, w = np.indices((12, 12, 2)).reshape(3, -1)
    return np.stack([u, v], axis=1), w


def test_a_latent_that_is_a_function_of_a_curve_point_scores_one():
    points, _ = factorial_design()
    Z = np.stack([np.cos(2 * np.pi * points[:, 0] / 12), points[:, 1] ** 2.0], axis=1)
    assert curve_eta2(Z, np.ones(2, dtype=bool), points) == pytest.approx(1.0)  # each on its own best curve


def test_a_latent_independent_of_every_curve_scores_zero():
    points, w = factorial_design()
    z = np.where(w == 0, 1.0, -1.0)
    # Raw eta^2 0 on every curve; bias-corrected, the best curve's 1 - (n - 1) / (n - G) (just below 0).
    assert curve_eta2(z[:, None], np.ones(1, dtype=bool), points) == pytest.approx(_independent(points), abs=1e-12)


def _independent(points: np.ndarray) -> float:
    """curve_eta2 of a latent whose raw eta^2 is 0 on every curve of ``points`` [n, c]."""
    return max(adjusted_eta2(0.0, len(points), len(np.unique(column))) for column in points.T)


def test_curve_eta2_weights_latents_by_their_variance():
    points, w = factorial_design()
    exact = 2.0 * np.where(points[:, 0] % 2 == 0, 1.0, -1.0)  # variance 4, eta^2 1 on curve 0
    noise = np.where(w == 0, 1.0, -1.0)  # variance 1, eta^2 0 on both curves
    Z = np.stack([exact, noise], axis=1)
    assert curve_eta2(Z, np.ones(2, dtype=bool), points) == pytest.approx((4 * 1 + 1 * _independent(points)) / (4 + 1))
    # Dead latents do not count; with no latent varying there is no score.
    assert curve_eta2(Z, np.array([True, False]), points) == pytest.approx(1.0)
    assert math.isnan(curve_eta2(np.ones((len(points), 2)), np.ones(2, dtype=bool), points))


def test_evaluate_scores_curves_through_their_kind():
    points, _ = factorial_design()
    Z = np.stack([np.cos(2 * np.pi * points[:, 0] / 12), 1.0 + points[:, 1]], axis=1)
    X = Z @ np.eye(2, D)
    scores = evaluate(X, Z, X, np.eye(2, D), np.zeros(D), {"psi": Curves("psi", points, ["k=1", "k=2"])})
    assert scores["psi/curve_eta2"] == pytest.approx(1.0)


def test_curves_take_a_split_and_check_their_arrays():
    curves = every_kind()["curves"]
    part = curves.take(np.arange(10))
    assert part.points.shape == (10, 2) and part.scales.shape == (10, 2) and part.labels == ["k=1", "k=2"]
    assert Curves("c", np.zeros((4, 3), dtype=int)).labels == ["0", "1", "2"]
    with pytest.raises(ValueError, match="non-negative integers"):
        Curves("c", np.full((4, 1), 0.5))
    with pytest.raises(ValueError, match="labels"):
        Curves("c", np.zeros((4, 2), dtype=int), ["one"])
    with pytest.raises(ValueError, match="scales"):
        Curves("c", np.zeros((4, 2), dtype=int), scales=np.ones((4, 3)))
