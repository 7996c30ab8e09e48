"""Hidden instances: a secret signed permutation of the units (and a fresh instance seed) leaves
every metric of an honest method unchanged, and the model still reads its own activations."""

from __future__ import annotations

import mini_pizza  # noqa: F401  (registers mini-pizza-v1)
import numpy as np
import pytest
import toy_task  # noqa: F401  (registers toy-v1)

import structure_bench as sb
from structure_bench.hidden import HiddenInstance, SignedPermutation, hidden_task_id
from structure_bench.planning import plan
from structure_bench.unit import compute_unit


def _hidden(task_id: str, secret: int, fresh: bool = False) -> str:
    hidden = hidden_task_id(task_id, secret, fresh)
    if hidden not in sb.list_tasks():
        sb.register_task(hidden, entry_point=HiddenInstance, base=task_id, secret=secret, fresh=fresh)
    return hidden


def test_a_signed_permutation_is_orthogonal_and_inverts() -> None:
    rng = np.random.default_rng(0)
    transform = SignedPermutation.draw(rng, 7, signed=True)
    X = rng.normal(size=(5, 7)).astype(np.float32)
    assert np.array_equal(transform.invert(transform.apply(X)), X)
    matrix = transform.apply(np.eye(7))
    assert np.allclose(matrix @ matrix.T, np.eye(7)) and set(np.abs(matrix).sum(axis=0)) == {1.0}
    assert not np.array_equal(transform.apply(X), X)
    unsigned = SignedPermutation.draw(rng, 7, signed=False)
    assert (unsigned.apply(np.abs(X)) >= 0).all()


def _metrics(task_id: str, method: str, site: str | None = None) -> dict[str, float]:
    unit = next(u for u in plan([task_id], [method], [0], site=site))
    record = compute_unit(unit).record
    assert record["status"] == "ok", record["error"]
    return record["metrics"]


@pytest.mark.parametrize(("task_id", "site"), [("mini-pizza-v1", "hidden"), ("mini-pizza-v1", "embed"), ("toy-v1", None)])
@pytest.mark.parametrize("method", ["oracle", "pca"])
def test_every_metric_is_unchanged_on_a_permuted_instance(task_id: str, site: str | None, method: str) -> None:
    """A (not fresh) hidden instance is the same data with its units signed-permuted: every metric
    of a method that is equivariant under that map (the oracle, PCA) must agree. (A random
    dictionary is not: its draw is not permuted with the data.)"""
    public, hidden = _metrics(task_id, method, site), _metrics(_hidden(task_id, 12345), method, site)
    assert public.keys() == hidden.keys()
    if task_id == "toy-v1":
        # The toy read-out's logits are all 0 on the quarter of samples with no feature on, so its
        # argmax there is decided by round-off: the model's invariance is tested on the pizza below.
        for key in ("spliced_accuracy", "loss_recovered"):
            public.pop(key), hidden.pop(key)
    if method == "pca":
        # sklearn fixes each component's sign from the data's coordinates, so a sign flip of a unit
        # can flip a component and its code: detector_f1 (z > 0) is the one sign-dependent metric.
        public.pop("features/detector_f1", None), hidden.pop("features/detector_f1", None)
        # The pizza's cos/sin pairs have equal variance, so PCA's basis inside each such plane is
        # any rotation of it: best sparse codes of that basis (fvu_omp, and the gap) depend on it.
        for key in ("fvu_omp", "amortisation_gap"):
            public.pop(key, None), hidden.pop(key, None)
    assert hidden == pytest.approx(public, abs=1e-6, rel=1e-6)


def test_the_model_reads_the_hidden_instance_through_the_inverse_map() -> None:
    hidden = sb.make(_hidden("pizza-ideal-v1", 99, fresh=True))
    base = hidden.base
    assert base.kwargs["split_seed"] == 0  # a trained task has no instance seed: one instance, permuted
    for site in ("hidden", "embed"):
        X = base.activations(site, "test")
        assert np.array_equal(hidden.activations(site, "test"), hidden.maps[site].apply(X))
        assert np.allclose(hidden.forward(hidden.maps[site].apply(X), site), base.forward(X, site), atol=1e-5)
        accuracy = (hidden.forward(hidden.activations(site, "test"), site).argmax(axis=1) == hidden.targets("test")).mean()
        assert accuracy == 1.0


def test_the_hidden_instance_is_permuted_and_keeps_non_negative_sites_non_negative() -> None:
    task, hidden = sb.make("mini-pizza-v1"), sb.make(_hidden("mini-pizza-v1", 12345))
    X, Y = task.activations("hidden", "all"), hidden.activations("hidden", "all")
    assert (Y >= 0).all() and not np.array_equal(X, Y)
    assert np.array_equal(np.sort(X, axis=1), np.sort(Y, axis=1))  # the same units, in another order
    E, F = task.activations("embed", "all"), hidden.activations("embed", "all")  # signed: signs flip too
    assert np.array_equal(np.sort(np.abs(E), axis=1), np.sort(np.abs(F), axis=1))
    assert not np.array_equal(np.sort(E, axis=1), np.sort(F, axis=1))
    truth, moved = task.primary_structure(), hidden.primary_structure()
    assert not np.allclose(np.vstack(truth.bases), np.vstack(moved.bases))


def test_a_task_with_an_instance_seed_is_drawn_afresh() -> None:
    task = sb.make("superposition-v1")
    hidden = sb.make(_hidden("superposition-v1", 777, fresh=True))
    assert hidden.base.kwargs["seed"] == 777 and task.kwargs["seed"] == 0
    assert sb.make(_hidden("superposition-v1", 777)).base.kwargs["seed"] == 0
    public_truth = task.primary_structure().vectors
    hidden_truth = hidden.primary_structure().vectors
    # Fresh random directions: no true direction of the hidden instance is near a public one.
    assert np.abs(hidden_truth @ public_truth.T).max() < 0.9
    assert hidden.metadata.main_score == task.metadata.main_score and hidden.metadata.grid == task.metadata.grid


# Main score of the public truth used as a dictionary, on the public task and on a hidden
# instance (measured, secret 4242): where the truth is made of the neuron axes (the pizzas), a
# signed permutation maps the set of axes onto itself, so "the neurons" survive any map that keeps
# activations non-negative; hierarchy-v1's main score (absorption) does not reward the truth.
COPY_DROPS = {
    "circles-v1": True, "clock-v1": True, "group-v1": True, "manifold-v1": True, "superposition-v1": True,
    "tms-v1": True, "pizza-v1": False, "pizza-ideal-v1": False, "hierarchy-v1": False,
}


@pytest.mark.parametrize("task_id", sorted(COPY_DROPS))
def test_copying_the_public_truth_fails_on_hidden_instances_except_where_the_truth_is_the_neurons(
    task_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What verify can and cannot catch, task by task (README, "What it cannot guarantee")."""
    from toy_leaderboard_methods import COPY_ENV

    from structure_bench.leaderboard.verify import SEED_BAND_CAP, TOLERANCES

    monkeypatch.setenv(COPY_ENV, task_id)
    method = "toy_leaderboard_methods:CopiesPublicTruth"
    main = sb.make(task_id).metadata.main_score
    # The permuted public instance: what verify compares a claim with.
    public, hidden = _metrics(task_id, method)[main], _metrics(_hidden(task_id, 4242), method)[main]
    widest = TOLERANCES["main_score"][0] * (1 + SEED_BAND_CAP)
    print(f"{task_id}: public {public:.3f}, hidden {hidden:.3f}")
    assert (public - hidden > widest) == COPY_DROPS[task_id]
