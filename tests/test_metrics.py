"""Every SPEC-2 metric on cases small enough to compute by hand."""

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.stats import ortho_group

from structure_bench.kinds import metric_descriptions
from structure_bench.metrics import METRIC_DESCRIPTIONS, evaluate, normalise, seed_mcc, task_effect
from structure_bench.metrics.directions import direction_metrics
from structure_bench.metrics.reconstruction import firing_mask, fvu, reconstruction_metrics, sparsity_metrics
from structure_bench.metrics.subspaces import harmonic_mean, subspace_metrics
from structure_bench.metrics.task_effect import cross_entropy
from structure_bench.metrics.variables import N_BINS, adjusted_eta2, eta2_per_latent, group_index, variable_metrics
from structure_bench.structures import Directions, Subspaces, Variables

rng = np.random.default_rng(0)


def all_alive(n_latents: int) -> np.ndarray:
    return np.ones(n_latents, dtype=bool)


# -- reconstruction and sparsity ----------------------------------------------------------


def test_fvu_mean_prediction_is_one_and_perfect_is_zero():
    X = rng.normal(size=(50, 4))
    assert fvu(X, np.broadcast_to(X.mean(axis=0), X.shape)) == pytest.approx(1.0)
    assert fvu(X, X) == 0.0


def test_fvu_is_about_the_mean_not_zero():
    # A large constant offset: predicting the mean explains nothing, although ||x - mean|| << ||x||.
    X = 100.0 + rng.normal(size=(50, 4))
    scores = reconstruction_metrics(X, np.broadcast_to(X.mean(axis=0), X.shape))
    assert scores["fvu"] == pytest.approx(1.0)
    assert scores["explained_variance"] == pytest.approx(0.0)


def test_fvu_hand_computed():
    X = np.array([[0.0], [2.0]])  # variance about the mean 1 + 1 = 2
    assert fvu(X, np.array([[0.0], [1.0]])) == pytest.approx(0.5)


def test_shrinkage_of_halved_reconstruction_is_half():
    X = rng.normal(size=(20, 3))
    assert reconstruction_metrics(X, X / 2)["shrinkage"] == pytest.approx(0.5)


def test_sparsity_on_hand_made_codes():
    Z = np.array(
        [
            [1.0, 0.0, 0.0, -2.0],  # signed codes fire too
            [1.0, 0.0, 1e-12, 0.0],  # round-off does not fire
            [1.0, 3.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    scores = sparsity_metrics(firing_mask(Z))
    assert scores["l0"] == pytest.approx((2 + 1 + 2 + 0) / 4)
    assert scores["dead_fraction"] == pytest.approx(1 / 4)  # column 2
    assert scores["dense_fraction"] == pytest.approx(1 / 4)  # column 0 fires on 3 of 4


# -- directions ---------------------------------------------------------------------------


def orthonormal_rows(m: int, d: int, seed: int = 0) -> np.ndarray:
    return ortho_group.rvs(d, random_state=seed)[:m]


def test_permuted_sign_flipped_rescaled_truth_scores_one():
    G = orthonormal_rows(5, 8)
    decoder = (G * np.array([[2.0], [-1.0], [0.5], [-3.0], [1.0]]))[[3, 0, 4, 1, 2]]
    scores = direction_metrics(decoder, np.ones((1, 5)), all_alive(5), Directions("t", G), 0.0)
    for name in ("mmcs_truth", "mmcs_learned", "mcc", "recovered@0.9"):
        assert scores[name] == pytest.approx(1.0)


def test_direction_metrics_are_invariant_to_a_common_rotation():
    G, decoder = rng.normal(size=(4, 6)), rng.normal(size=(7, 6))
    Q = ortho_group.rvs(6, random_state=1)
    before = direction_metrics(decoder, np.ones((1, 7)), all_alive(7), Directions("t", G), 0.0)
    after = direction_metrics(decoder @ Q, np.ones((1, 7)), all_alive(7), Directions("t", G @ Q), 0.0)
    assert after == pytest.approx(before)


def test_hand_computed_matching_and_dead_latents_excluded():
    G = np.eye(2)
    c = np.cos(np.pi / 6)  # a latent 30 degrees from e0
    decoder = np.array([[c, 0.5], [0.0, 1.0], [1.0, 0.0]])
    alive = np.array([True, True, False])  # the exact copy of e0 is dead
    scores = direction_metrics(decoder, np.ones((1, 3)), alive, Directions("t", G), 0.0)
    assert scores["mcc"] == pytest.approx((c + 1.0) / 2)
    assert scores["mmcs_learned"] == pytest.approx((c + 1.0) / 2)
    assert scores["mmcs_truth"] == pytest.approx((c + 1.0) / 2)
    assert scores["recovered@0.9"] == pytest.approx(0.5)  # cos 30deg = 0.866 < 0.9


def test_more_features_than_alive_latents_count_as_unrecovered():
    G = np.eye(4)
    scores = direction_metrics(np.eye(4)[:2], np.ones((1, 2)), all_alive(2), Directions("t", G), 0.0)
    assert scores["mcc"] == pytest.approx(1.0)  # over min(m, n_alive) = 2 pairs
    assert scores["recovered@0.9"] == pytest.approx(0.5)
    assert scores["mmcs_truth"] == pytest.approx(0.5)


def expected_abs_cos(d: int) -> float:
    """E|cos| between two independent uniform unit vectors in d dimensions."""
    return math.exp(math.lgamma(d / 2) - math.lgamma((d + 1) / 2)) / math.sqrt(math.pi)


def test_random_dictionary_mmcs_learned_matches_analytic_chance():
    d = 64
    truth = Directions("t", rng.normal(size=(1, d)))
    decoder = rng.normal(size=(4000, d))
    scores = direction_metrics(decoder, np.ones((1, 4000)), all_alive(4000), truth, 0.0)
    assert scores["mmcs_learned"] == pytest.approx(expected_abs_cos(d), abs=0.005)


def test_random_dictionary_mcc_matches_analytic_chance():
    # One true direction, n random latents: mcc = max_l |cos|, with cos^2 ~ Beta(1/2, (d-1)/2),
    # so E[mcc] = integral_0^1 (1 - P(|cos| <= t)^n) dt.
    d, n = 32, 50
    cdf = stats.beta(0.5, (d - 1) / 2).cdf
    expected = integrate.quad(lambda t: 1 - cdf(t * t) ** n, 0, 1)[0]
    truth = Directions("t", np.eye(d)[:1])
    mccs = [
        direction_metrics(rng.normal(size=(n, d)), np.ones((1, n)), all_alive(n), truth, 0.0)["mcc"]
        for _ in range(200)
    ]
    assert np.mean(mccs) == pytest.approx(expected, abs=0.01)


def test_square_random_mcc_lies_between_chance_and_best_cover():
    d = 64
    truth = Directions("t", rng.normal(size=(64, d)))
    scores = direction_metrics(rng.normal(size=(64, d)), np.ones((1, 64)), all_alive(64), truth, 0.0)
    assert expected_abs_cos(d) < scores["mcc"] <= scores["mmcs_truth"]


def test_detector_f1_exact_and_hand_computed():
    A = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    truth = Directions("t", np.eye(2), coefficients=A)
    exact = direction_metrics(np.eye(2), A, all_alive(2), truth, 0.0)
    assert exact["detector_f1"] == pytest.approx(1.0)
    # Latent 0 fires on samples 0, 1, 2: 2 of feature 0's 3 samples plus 1 false alarm.
    Z = np.array([[1.0, 0.0], [1.0, 2.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    partial = direction_metrics(np.eye(2), Z, all_alive(2), truth, 0.0)
    assert partial["detector_f1"] == pytest.approx((2 * 2 / (3 + 3) + 1.0) / 2)


# -- subspaces ----------------------------------------------------------------------------


def test_purity_inside_and_at_45_degrees():
    truth = Subspaces("s", [np.eye(4)[:2], np.eye(4)[2:]])
    inside = np.array([[0.6, 0.8, 0.0, 0.0]])
    between = np.array([[1.0, 0.0, 1.0, 0.0]]) / np.sqrt(2)
    X = rng.normal(size=(10, 4))
    for decoder, expected in ((inside, 1.0), (between, 0.5)):
        scores = subspace_metrics(X, np.ones((10, 1)), decoder, np.zeros(4), all_alive(1), truth)
        assert scores["purity"] == pytest.approx(expected)


def test_purity_weighted_by_total_activation():
    truth = Subspaces("s", [np.eye(4)[:2], np.eye(4)[2:]])
    decoder = np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    Z = np.array([[3.0, -1.0, 0.0], [0.0, 0.0, 0.0]])  # total |z|: 3, 1, 0 (latent 2 dead)
    alive = np.array([True, True, False])
    scores = subspace_metrics(np.zeros((2, 4)), Z, decoder, np.zeros(4), alive, truth)
    assert scores["purity"] == pytest.approx((3 * 1.0 + 1 * 0.5) / 4)


def planted_subspace_data(n: int = 200):
    """Codes on a 2-D and a 1-D subspace of R^4 plus an offset carried by the decoder bias."""
    bases = [np.eye(4)[:2], np.eye(4)[2:3]]
    decoder = np.vstack([np.eye(4)[:2] * 2.0, np.eye(4)[2:3]])
    Z = np.abs(rng.normal(size=(n, 3)))
    bias = np.array([1.0, -2.0, 3.0, 0.0])
    return Subspaces("s", bases, labels=["k=1", "k=2"]), Z, decoder, bias, Z @ decoder + bias


def test_coverage_is_one_for_the_oracle_with_its_bias():
    truth, Z, decoder, bias, X = planted_subspace_data()
    scores = subspace_metrics(X, Z, decoder, bias, all_alive(3), truth)
    assert scores["coverage[k=1]"] == pytest.approx(1.0)
    assert scores["coverage[k=2]"] == pytest.approx(1.0)
    assert scores["coverage"] == pytest.approx(1.0)
    assert scores["subspace_f"] == pytest.approx(1.0)
    without_bias = subspace_metrics(X, Z, decoder, np.zeros(4), all_alive(3), truth)
    assert without_bias["coverage"] < 0.5


def test_coverage_is_zero_for_a_dictionary_orthogonal_to_the_subspace():
    truth, Z, _, _, X = planted_subspace_data()
    orthogonal = np.tile(np.eye(4)[3:], (3, 1))
    assert subspace_metrics(X, Z, orthogonal, np.zeros(4), all_alive(3), truth)["coverage[k=1]"] == 0.0


def test_coverage_ignores_latents_assigned_to_another_subspace():
    # One latent mostly in g0 (share 0.8) also carries g1; g1's variance is rebuilt by nobody,
    # and predicting zero is worse than the mean, so coverage clips to 0.
    truth = Subspaces("s", [np.eye(2)[:1], np.eye(2)[1:]], labels=["g0", "g1"])
    decoder = np.array([[2.0, 1.0]])
    Z = np.array([[1.0], [2.0], [3.0]])
    scores = subspace_metrics(Z @ decoder, Z, decoder, np.zeros(2), all_alive(1), truth)
    assert scores["coverage[g0]"] == pytest.approx(1.0)
    assert scores["coverage[g1]"] == 0.0
    assert scores["purity"] == pytest.approx(0.8)
    assert scores["subspace_f"] == pytest.approx(harmonic_mean(0.8, 0.5))


def test_harmonic_mean():
    assert harmonic_mean(1.0, 0.5) == pytest.approx(2 / 3)
    assert harmonic_mean(0.0, 0.0) == 0.0


# -- variables ----------------------------------------------------------------------------


def test_eta2_per_latent_hand_computed():
    Z = np.array([[0.0], [2.0], [1.0], [3.0]])
    # Group means 1 and 2 about 1.5: between variance 0.25; total variance 1.25.
    assert eta2_per_latent(Z, np.array([0, 0, 1, 1])) == pytest.approx([0.2])


def modular_grid(p: int = 7) -> Variables:
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    values = pd.DataFrame({"a": a.ravel(), "b": b.ravel(), "c": (a + b).ravel() % p})
    return Variables("inputs", values, dict.fromkeys(values.columns, "discrete"))


def test_latents_that_are_functions_of_c_have_eta2_one_for_c_and_zero_for_b():
    truth = modular_grid()
    c = truth.values["c"].to_numpy()
    Z = np.column_stack([np.sin(c) + 2, (c == 3) * 5.0, c**2])
    scores = variable_metrics(Z, all_alive(3), truth)
    assert scores["eta2_c"] == pytest.approx(1.0)
    # Every b sees each c once: raw eta^2 0, which the bias correction puts 1 - (n - 1) / (n - G) below 0.
    assert scores["eta2_b"] == pytest.approx(1 - 48 / 42, abs=1e-12)
    assert scores["eta2_a"] == pytest.approx(1 - 48 / 42, abs=1e-12)


def test_eta2_weighted_by_latent_variance():
    truth = modular_grid()
    c = truth.values["c"].to_numpy().astype(float)
    a = truth.values["a"].to_numpy().astype(float)
    Z = np.column_stack([c, 3 * a, np.zeros_like(c)])  # variances 1 : 9 (: 0, dead)
    scores = variable_metrics(Z, np.array([True, True, False]), truth)
    # Raw 1/10 and 9/10, bias-corrected with n = 49 samples and G = 7 groups.
    assert scores["eta2_c"] == pytest.approx(adjusted_eta2(1 / 10, 49, 7))
    assert scores["eta2_a"] == pytest.approx(adjusted_eta2(9 / 10, 49, 7))


def test_adjusted_eta2_of_an_independent_variable_is_zero_on_average():
    # Pizza's test split: 697 samples, a 59-level variable the codes ignore. Raw eta^2 sits on its
    # floor (G - 1) / (n - 1) = 0.083; the corrected score averages 0.
    rng = np.random.default_rng(0)
    n, levels = 697, 59
    truth = Variables("inputs", pd.DataFrame({"v": np.arange(n) % levels}), {"v": "discrete"})
    raw, corrected = [], []
    for _ in range(200):
        Z = rng.exponential(size=(n, 4))
        raw.append(eta2_per_latent(Z, truth.values.v.to_numpy())[0])
        corrected.append(variable_metrics(Z, all_alive(4), truth)["eta2_v"])
    assert np.mean(raw) == pytest.approx((levels - 1) / (n - 1), abs=0.003)
    assert abs(np.mean(corrected)) < 0.003 and np.std(corrected) < 0.03


def test_adjusted_eta2_keeps_one_and_needs_residual_degrees_of_freedom():
    assert adjusted_eta2(1.0, 697, 59) == 1.0
    assert np.isnan(adjusted_eta2(0.5, 10, 10))


def test_circular_variable_binned_over_the_circle():
    theta = (np.arange(960) + 0.5) * (4 * np.pi / 960)  # two turns, off the bin edges; wrapped
    groups = group_index(pd.Series(theta), "circular")
    assert groups.max() == N_BINS - 1 and np.all(groups[:480] == groups[480:])
    assert eta2_per_latent(np.cos(theta)[:, None], groups)[0] > 0.99
    noise = np.random.default_rng(1).normal(size=(960, 1))
    assert eta2_per_latent(noise, groups)[0] < 0.05


def test_scalar_variable_binned_between_min_and_max():
    groups = group_index(pd.Series([-1.0, 0.0, 1.0]), "scalar")
    assert list(groups) == [0, N_BINS // 2, N_BINS - 1]


# -- task effect, stability, calibration --------------------------------------------------


def test_cross_entropy_of_uniform_logits_is_log_classes():
    assert cross_entropy(np.zeros((3, 5)), np.array([0, 1, 4])) == pytest.approx(np.log(5))


def test_loss_recovered_is_one_for_clean_and_zero_for_ablation_splice():
    targets = np.array([0, 1, 2, 1])
    clean = np.eye(3)[targets] * 4.0
    ablated = np.zeros((4, 3))
    assert task_effect(clean, clean, ablated, targets)["loss_recovered"] == pytest.approx(1.0)
    scores = task_effect(clean, ablated, ablated, targets)
    assert scores["loss_recovered"] == pytest.approx(0.0)
    assert scores["clean_accuracy"] == 1.0
    halfway = np.eye(3)[[0, 1, 0, 0]] * 4.0  # two of four right
    assert task_effect(clean, halfway, ablated, targets)["spliced_accuracy"] == 0.5


def test_seed_mcc():
    decoder = rng.normal(size=(6, 10))
    assert seed_mcc(decoder, -3 * decoder[::-1]) == pytest.approx(1.0)
    assert seed_mcc(np.eye(4)[:2], np.eye(4)[2:]) == pytest.approx(0.0)


def test_normalise():
    assert normalise(0.6, random=0.2, oracle=1.0) == pytest.approx(0.5)
    assert math.isnan(normalise(0.6, random=0.5, oracle=0.5))


# -- the dispatcher -----------------------------------------------------------------------


def oracle_case(n: int = 300, d: int = 6):
    """Truth directions as the decoder, exact non-negative sparse codes, every structure kind."""
    G = orthonormal_rows(d, d, seed=3)
    A = np.abs(rng.normal(size=(n, d))) * (rng.random((n, d)) < 0.4)
    X = A @ G
    angle = rng.uniform(0, 2 * np.pi, size=n)
    structures = {
        "features": Directions("features", G, coefficients=A),
        "groups": Subspaces("groups", [G[:2], G[2:]], labels=["low", "high"]),
        "inputs": Variables("inputs", pd.DataFrame({"angle": angle}), {"angle": "circular"}),
    }
    return X, A, G, structures


def test_evaluate_oracle_scores_one_everywhere():
    X, A, G, structures = oracle_case()
    scores = evaluate(X, A, X, G, np.zeros(X.shape[1]), structures)
    assert scores["fvu"] == pytest.approx(0.0, abs=1e-12)
    assert scores["shrinkage"] == pytest.approx(1.0)
    for name in ("mmcs_truth", "mmcs_learned", "mcc", "recovered@0.9", "detector_f1"):
        assert scores[f"features/{name}"] == pytest.approx(1.0)
    for name in ("purity", "coverage", "coverage[low]", "coverage[high]", "subspace_f"):
        assert scores[f"groups/{name}"] == pytest.approx(1.0)
    assert scores["inputs/eta2_angle"] < 0.1  # the codes are independent of the angle


def test_evaluate_returns_nan_when_no_latent_fires():
    X, _, G, structures = oracle_case()
    Z = np.zeros((len(X), 6))
    scores = evaluate(X, Z, np.zeros_like(X), G, np.zeros(X.shape[1]), structures)
    assert scores["dead_fraction"] == 1.0
    for name in ("features/mcc", "features/detector_f1", "groups/purity", "inputs/eta2_angle"):
        assert math.isnan(scores[name])


def test_every_reported_metric_is_described():
    X, A, G, structures = oracle_case()
    for key in evaluate(X, A, X, G, np.zeros(6), structures):
        metric = re.sub(r"\[.*\]$", "[<label>]", key.split("/")[-1])
        assert re.sub(r"^eta2_.*", "eta2_<variable>", metric) in METRIC_DESCRIPTIONS | metric_descriptions(), key


def test_an_exact_answer_latent_scores_four_over_pi_squared_on_c():
    """SPEC 5, hypothesis 3, derived on paper: an "answer" latent is active on one point psi of
    frequency k's curve (psi = arg(e^{i w a} + e^{i w b}), 2p points, each fixing c; each c has two,
    told apart by the sign of cos(w (a - b) / 2)) with the activation's scale g = |cos(w (a - b) / 2)|. Given c it is active on
    half of c's pairs, so eta^2(c) = (1/2) E[g]^2 / E[g^2] -> (1/2) (2/pi)^2 / (1/2) = 4 / pi^2 ~ 0.405
    for large p, and eta^2(psi) = E[g]^2 / E[g^2] -> 8 / pi^2 ~ 0.81; a binary tile (no scale) gives
    1/2 and 1. So an exact answer latent is far from eta^2(c) = 1."""
    p, k = 59, 17
    a, b = np.divmod(np.arange(p * p), p)
    v = np.exp(2j * np.pi * k * a / p) + np.exp(2j * np.pi * k * b / p)
    psi = np.round(np.mod(np.angle(v), 2 * np.pi) / (np.pi / p)).astype(int) % (2 * p)
    c = (a + b) % p
    assert len(np.unique(psi)) == 2 * p and all(len(np.unique(c[psi == j])) == 1 for j in range(2 * p))
    scaled = np.zeros((p * p, 2 * p))
    scaled[np.arange(p * p), psi] = np.abs(v) / 2
    # At p = 59 the sums over a - b give 0.401 and 0.796 (the large-p limits: 0.405, 0.811).
    np.testing.assert_allclose(eta2_per_latent(scaled, c), 4 / np.pi**2, atol=0.01)
    np.testing.assert_allclose(eta2_per_latent(scaled, psi), 8 / np.pi**2, atol=0.02)
    binary = (scaled > 0).astype(float)
    # p odd: a point holds (p - 1) / 2 or (p + 1) / 2 of c's pairs, so 0.487 or 0.508 at p = 59.
    np.testing.assert_allclose(eta2_per_latent(binary, c), 0.5, atol=0.02)
    np.testing.assert_allclose(eta2_per_latent(binary, psi), 1.0, atol=1e-12)
    # The bias-corrected pooled score on the full grid: 0.39, and an unrelated input still ~0.
    truth = Variables("inputs", pd.DataFrame({"c": c, "a": a}), {"c": "discrete", "a": "discrete"})
    scores = variable_metrics(scaled, all_alive(2 * p), truth)
    assert scores["eta2_c"] == pytest.approx(0.39, abs=0.01) and abs(scores["eta2_a"]) < 0.01


def test_sparse_codes_rebuild_exactly_sparse_data_and_the_gap_is_what_the_encoder_leaves():
    """X = 2-sparse combinations of orthonormal atoms plus a bias: OMP at k = 2 over the true
    atoms rebuilds it exactly (fvu_omp 0), at k = 1 it loses one of two equal-variance atoms per
    sample (1/2 of the variance about the origin of the codes, less the mean's share); an encoder
    that returns zeros has gap fvu - 0 = its own FVU."""
    from structure_bench.metrics.reconstruction import amortisation_metrics, sparse_code_fvu

    rng = np.random.default_rng(3)
    atoms = np.linalg.qr(rng.normal(size=(12, 12)))[0][:8]
    codes = np.zeros((500, 8))
    for row in codes:
        row[rng.choice(8, 2, replace=False)] = rng.choice([-1.0, 1.0], 2) * rng.uniform(1, 2, 2)
    bias = rng.normal(size=12)
    X = codes @ atoms + bias
    assert sparse_code_fvu(X, atoms, bias, 2) == pytest.approx(0.0, abs=1e-20)
    assert 0.3 < sparse_code_fvu(X, atoms, bias, 1) < 0.5
    zero = amortisation_metrics(X, np.broadcast_to(bias, X.shape), atoms * 3.0, bias, 2)  # unnormalised rows are fine
    assert zero["fvu_omp"] == pytest.approx(0.0, abs=1e-20)
    assert zero["amortisation_gap"] == pytest.approx(fvu(X, np.broadcast_to(bias, X.shape)))


def test_batched_omp_gives_scikit_learns_omp_codes():
    from sklearn.decomposition import sparse_encode

    from structure_bench.metrics.reconstruction import omp_codes

    rng = np.random.default_rng(4)
    atoms = rng.normal(size=(40, 16))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    X = rng.normal(size=(200, 16))
    for k in (1, 3, 7):
        np.testing.assert_allclose(omp_codes(X, atoms, k), sparse_encode(X, atoms, algorithm="omp", n_nonzero_coefs=k), atol=1e-10)
