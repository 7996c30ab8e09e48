"""Sparse coding's parts against answers known in advance: the pursuit on an incoherent dictionary,
the least-squares atoms against a dense solve, revived atoms, the stopping rule and the dictionary
it keeps, and a planted dictionary recovered."""

import numpy as np
import pytest
import torch

from structure_bench.errors import MethodError
from structure_bench.metrics.directions import matched_mean_abs_cos
from structure_bench_baselines.sparse_coding import SparseCoding, optimal_directions, pursuit


def unit_rows(rng: np.random.Generator, m: int, d: int) -> np.ndarray:
    D = rng.normal(size=(m, d))
    return D / np.linalg.norm(D, axis=1, keepdims=True)


def sparse_codes(rng: np.random.Generator, n: int, m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct atoms [n, k] and coefficients [n, k] of magnitude 1 to 2, random sign."""
    atoms = np.argsort(rng.random((n, m)), axis=1)[:, :k]
    return atoms, rng.uniform(1, 2, size=(n, k)) * rng.choice([-1, 1], size=(n, k))


def test_pursuit_recovers_exact_codes_on_an_incoherent_dictionary() -> None:
    # Mutual coherence below 1 / (2k - 1) guarantees that OMP finds the exact support (Tropp 2004).
    rng = np.random.default_rng(0)
    D = unit_rows(rng, 40, 400)
    coherence = np.abs(D @ D.T - np.eye(40)).max()
    k = 2
    assert coherence < 1 / (2 * k - 1)
    atoms, coefficients = sparse_codes(rng, 300, 40, k)
    X = np.einsum("nk,nkd->nd", coefficients, D[atoms])
    found, coef, residual = pursuit(torch.from_numpy(X), torch.from_numpy(D), k)
    order, true_order = found.argsort(dim=1).numpy(), atoms.argsort(axis=1)
    np.testing.assert_array_equal(np.take_along_axis(found.numpy(), order, 1), np.take_along_axis(atoms, true_order, 1))
    np.testing.assert_allclose(np.take_along_axis(coef.numpy(), order, 1), np.take_along_axis(coefficients, true_order, 1), atol=1e-8)
    assert float(residual.abs().max()) < 1e-8


def test_pursuit_residual_is_orthogonal_to_the_chosen_atoms() -> None:
    rng = np.random.default_rng(1)
    D, X = torch.from_numpy(unit_rows(rng, 30, 8)), torch.from_numpy(rng.normal(size=(50, 8)))
    found, _, residual = pursuit(X, D, 3)
    assert (found.sort(dim=1).values.diff(dim=1) > 0).all()  # three distinct atoms per sample
    assert float((D[found] @ residual[:, :, None]).abs().max()) < 1e-8


def test_optimal_directions_is_the_dense_least_squares_solution() -> None:
    rng = np.random.default_rng(2)
    n, m, d, k = 200, 12, 6, 3
    atoms, coefficients = sparse_codes(rng, n, m - 1, k)  # atom m - 1 is never used
    X = rng.normal(size=(n, d))
    C = np.zeros((n, m))
    np.put_along_axis(C, atoms, coefficients, axis=1)
    expected = np.linalg.lstsq(C[:, : m - 1], X, rcond=None)[0]
    D = optimal_directions(torch.from_numpy(X), torch.from_numpy(atoms), torch.from_numpy(coefficients), m).numpy()
    np.testing.assert_allclose(D[: m - 1], expected, atol=1e-8)
    assert (D[m - 1] == 0).all()


def test_unused_and_duplicate_atoms_are_revived_as_the_worst_residual_directions() -> None:
    rng = np.random.default_rng(3)
    D = torch.from_numpy(unit_rows(rng, 6, 4) * 3.0)
    D[2] = 0.0
    D[5] = -2.0 * D[1]  # a duplicate of atom 1 (up to sign and scale)
    residuals = torch.from_numpy(rng.normal(size=(20, 4)))
    residuals[7] = torch.tensor([1.0, 2.0, 3.0, 4.0]) * 10  # the worst reconstructed sample
    residuals[11] = torch.tensor([-1.0, 0.0, 1.0, 0.0]) * 10  # the second worst
    revived = SparseCoding(6, 1)._revived(D, residuals, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(revived.norm(dim=1).numpy(), 1.0)
    np.testing.assert_allclose(revived[2].numpy(), (residuals[7] / residuals[7].norm()).numpy())
    np.testing.assert_allclose(revived[5].numpy(), (residuals[11] / residuals[11].norm()).numpy())
    np.testing.assert_allclose(revived[[0, 1, 3, 4]].numpy(), (D[[0, 1, 3, 4]] / 3.0).numpy())


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    """X [3000, 32]: exactly 3 of 48 random unit directions per sample, coefficients 1 to 2 of either sign."""
    rng = np.random.default_rng(4)
    G = unit_rows(rng, 48, 32)
    atoms, coefficients = sparse_codes(rng, 3000, 48, 3)
    return np.einsum("nk,nkd->nd", coefficients, G[atoms]), G


def test_sparse_coding_recovers_a_planted_dictionary_and_converges(planted) -> None:
    # Alternating pursuit and least squares has local optima: on this data 3 of 6 seeds find every
    # atom (|cos| > 0.99), the others all but 2 to 6 (matched mean |cos| 0.94 to 0.98). The
    # scikit-learn mini-batch learner this replaced found 11 to 18 of the 48 (mean 0.89 to 0.92).
    X, G = planted
    models = [SparseCoding(48, 3, seed=seed).fit(X) for seed in range(6)]
    matched = [matched_mean_abs_cos(G, model.decoder_) for model in models]
    exact = [model for model, match in zip(models, matched) if (np.abs(G @ model.decoder_.T).max(axis=1) > 0.99).all()]
    assert min(matched) > 0.93 and len(exact) >= 3
    for model in models:
        Z = model.encode(X)
        assert ((Z != 0).sum(axis=1) <= 3).all()
        training = model.training_
        assert training["converged"] and training["steps"] < model.max_iter and training["dead_fraction"] == 0
    # The greedy pursuit misses some supports even on the true atoms (48 in 32 dimensions are
    # coherent): the found dictionary reconstructs as well as the truth does.
    centred = X - X.mean(axis=0)
    truth = pursuit(torch.from_numpy(centred), torch.from_numpy(G), 3)[2].pow(2).sum().item()
    assert ((X - exact[0].decode(exact[0].encode(X))) ** 2).sum() < 1.05 * truth


def test_the_fit_keeps_the_dictionary_with_the_best_error_and_a_cap_binds(planted) -> None:
    X, _ = planted
    # Nothing held out: the rule reads the training error, which the kept dictionary reproduces.
    model = SparseCoding(48, 3, seed=1, max_iter=6, tol=0.0, validation_fraction=0.0).fit(X)
    training = model.training_
    assert training["steps"] == 6 and not training["converged"]
    assert training["final_loss"] == min(model.error_history_)
    centred = (X - model.mean_) / model.scale_
    assert model._error(torch.from_numpy(centred), torch.from_numpy(model.decoder_), 3) == pytest.approx(training["final_loss"])


def test_more_latents_than_samples_reports_the_atoms_no_sample_can_use() -> None:
    X = np.random.default_rng(5).normal(size=(10, 6))
    training = SparseCoding(20, 1, seed=0, validation_fraction=0.0).fit(X).training_
    assert training["dead_fraction"] >= 0.5  # 10 samples, one atom each: at most 10 of 20 atoms used


@pytest.mark.parametrize(
    ("params", "problem"),
    [({"max_iter": 0}, "max_iter and patience must be >= 1"), ({"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\)")],
)
def test_bad_parameters_fail_in_one_line(params, problem) -> None:
    with pytest.raises(MethodError, match=problem):
        SparseCoding(4, 1, **params).fit(np.ones((5, 3)))
