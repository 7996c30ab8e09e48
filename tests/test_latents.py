"""Per-latent measurements (metrics/latents.py) on an ideal two-frequency pizza, each against a
value derived on paper: an exact answer latent, a neuron, a linear read-out, a cross-frequency
mixture, a dead latent, and the per-input one-per-frequency share."""

import numpy as np
import pytest

from structure_bench.metrics.latents import (
    CLASSES, curve_fit, latent_profile, latent_table, one_per_frequency, table_from_json, table_to_json,
)
from structure_bench.structures import Directions, Subspaces
from structure_bench_tasks.pizza.structures import curve_point, input_variables

P, KEYS, PER_FREQUENCY = 59, (17, 22), 8


def ideal_pizza() -> tuple[np.ndarray, dict]:
    """X [p^2, 16]: per key frequency 8 neurons ReLU(cos(w a + phi) + cos(w b + phi)) = ReLU(2 s cos(psi + phi)),
    phases 2 pi j / 8; and the site's structures (neurons, frequencies, inputs with psi and scale)."""
    a, b = np.divmod(np.arange(P * P), P)
    columns = []
    for k in KEYS:
        w = 2 * np.pi * k / P
        columns += [np.maximum(np.cos(w * a + phi) + np.cos(w * b + phi), 0) for phi in 2 * np.pi * np.arange(PER_FREQUENCY) / PER_FREQUENCY]
    X = np.stack(columns, axis=1)
    identity = np.eye(X.shape[1])
    structures = {
        "neurons": Directions("neurons", identity),
        "frequencies": Subspaces("frequencies", [identity[:8], identity[8:]], [f"k={k}" for k in KEYS]),
        "inputs": input_variables(P, list(KEYS), curve_points=True),
    }
    return X, structures


def answer_latents(X: np.ndarray, k_index: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact answer latents of one frequency: z_j = 1[psi = j] s for each of the 2p points, with
    decoder row j the frequency's mean activation direction at point j. Codes [p^2, 2p], decoder [2p, 16]."""
    psi = curve_point(P, KEYS[k_index])
    scale = np.abs(np.cos(2 * np.pi * KEYS[k_index] * (np.divmod(np.arange(P * P), P)[0] - np.divmod(np.arange(P * P), P)[1]) / (2 * P)))
    Z = np.zeros((P * P, 2 * P))
    Z[np.arange(P * P), psi] = scale
    block = slice(8 * k_index, 8 * k_index + 8)
    decoder = np.zeros((2 * P, X.shape[1]))
    for j in range(2 * P):
        decoder[j, block] = X[psi == j][:, block].mean(axis=0)
    return Z, decoder


def test_an_exact_answer_latent_is_a_narrow_tile():
    """Derived: z = 1[psi = j] s is exactly s g(psi) with g = delta_j, so r2_curve = 1 and its
    tuning is one of the 2p points (width 1/(2p)); eta^2(psi) ~ E[s | psi = j]^2 / E[s^2 | psi = j]
    -> 8/pi^2 = 0.81 for large p (at p = 59 a point holds (p - 1)/2 or (p + 1)/2 pairs: 0.789 or
    0.817); one tile per point of both frequencies fires exactly one atom per frequency."""
    X, structures = ideal_pizza()
    Z, decoder = answer_latents(X, 1)
    table = latent_table(Z, decoder, structures)
    np.testing.assert_allclose(table.r2_curve, 1.0, atol=1e-9)
    np.testing.assert_allclose(table.tuning_width, 1 / (2 * P), atol=1e-12)
    np.testing.assert_allclose(table.eta2_psi, 8 / np.pi**2, atol=0.03)
    assert (table.home == 1).all() and (table.home_share > 0.999).all()
    assert (table["class"] == "tile").all()
    # One atom per frequency on every input: the share is exactly 1 with both frequencies' tiles.
    Z0, decoder0 = answer_latents(X, 0)
    both = np.hstack([Z0, Z])
    assert one_per_frequency(both, latent_table(both, np.vstack([decoder0, decoder]), structures), structures) == 1.0


def test_a_neuron_is_aligned_broad_and_a_function_of_its_curve():
    """Derived: a neuron is 2 s ReLU(cos(psi + phi)), so r2_curve = 1 and g = 2 ReLU(cos(psi + phi))
    over the 2p evenly spaced points: width E[g^2]^2 / E[g^4] = (1/4)^2 / (3/16) = 1/3 of the curve.
    A linear read-out of the frequency (the plane cos(psi + phi)) is broader: (1/2)^2 / (3/8) = 2/3.
    Half a neuron's inputs (and fewer) fire it, so one_per_frequency of the 8 neurons is about 0."""
    X, structures = ideal_pizza()
    table = latent_table(X, np.eye(16), structures)
    np.testing.assert_allclose(table.r2_curve, 1.0, atol=1e-9)
    np.testing.assert_allclose(table.tuning_width, 1 / 3, atol=0.01)
    assert (table["class"] == "aligned").all() and (table.best_cos == 1).all()
    assert one_per_frequency(X, table, structures) < 0.05
    psi, k = curve_point(P, KEYS[0]), KEYS[0]
    a, b = np.divmod(np.arange(P * P), P)
    linear = np.cos(2 * np.pi * k * a / P) + np.cos(2 * np.pi * k * b / P)  # = 2 s cos(psi)
    readout = latent_table(linear[:, None], np.r_[np.ones(8), np.zeros(8)][None, :], structures)
    assert readout.r2_curve[0] == pytest.approx(1.0, abs=1e-9)
    assert readout.tuning_width[0] == pytest.approx(2 / 3, abs=0.01)
    assert readout["class"][0] == "dense"  # fires wherever cos(psi) != 0


def test_a_cross_frequency_mixture_is_half_explained_by_its_home_curve():
    """Derived: z = u1 + u2, one neuron of each frequency (u = 2 s ReLU(cos(psi + phi))), decoder
    (e_1 + e_9) / sqrt 2: home share 1/2, a mixture. u1 lies in the fit's span {s1 g(psi1)}. Of u2,
    the span holds only what depends on c (each psi1 fixes c): E[u2 | c] = f(c) = (2/pi) |cos(w2 c/2 + phi)|
    (u2 is on for half of c's pairs, at mean scale 2/pi), fitted as s1 g(c) up to the share
    E[s]^2 / E[s^2] = 8/pi^2 of its second moment E[f^2] = 2/pi^2. So the residual is
    E[u2^2] - (8/pi^2)(2/pi^2) = 1/2 - 16/pi^4 = Var(u2) (its mean mu^2 = 16/pi^4 is what the fit
    absorbs), and r2_curve = 1 - Var(u2) / (Var(u1) + Var(u2)) = 1/2."""
    X, structures = ideal_pizza()
    z = X[:, [0]] + X[:, [8]]
    decoder = np.zeros((1, 16))
    decoder[0, [0, 8]] = 1
    table = latent_table(z, decoder, structures)
    assert table.home_share[0] == pytest.approx(0.5)
    assert table.r2_curve[0] == pytest.approx(0.5, abs=0.01)
    # On wherever either neuron is (3/4 of the inputs): dense comes before mixture.
    assert table.firing[0] == pytest.approx(0.75, abs=0.03) and table["class"][0] == "dense"
    sparse_mixture = latent_table(z * (z > np.quantile(z, 0.8)), decoder, structures)
    assert sparse_mixture["class"][0] == "mixture"


def test_curve_fit_is_least_squares_per_point():
    """g(m) minimises sum (z - s g(m))^2 on each point's samples; R^2 against the mean."""
    rng = np.random.default_rng(0)
    points, scale = rng.integers(0, 6, 400), rng.uniform(0.1, 1, 400)
    from structure_bench.metrics.latents import Curve

    Z = rng.normal(size=(400, 3))
    r2, g = curve_fit(Z, Curve(points, scale, 6))
    for m in range(6):
        on = points == m
        best = np.linalg.lstsq(scale[on, None], Z[on], rcond=None)[0][0]
        np.testing.assert_allclose(g[m], best)
    residual = ((Z - scale[:, None] * g[points]) ** 2).sum(axis=0)
    np.testing.assert_allclose(r2, 1 - residual / ((Z - Z.mean(axis=0)) ** 2).sum(axis=0))


def test_profile_shares_dead_latents_and_round_trip():
    X, structures = ideal_pizza()
    Z = np.hstack([X, np.zeros((len(X), 4))])
    decoder = np.vstack([np.eye(16), np.ones((4, 16))])
    table = latent_table(Z, decoder, structures)
    assert list(table["class"][-4:]) == ["dead"] * 4
    profile = latent_profile(Z, table, structures)
    assert profile["share[dead]"] == pytest.approx(0.2) and profile["share[aligned]"] == pytest.approx(0.8)
    assert profile["variance_share[aligned]"] == pytest.approx(1.0)
    assert sum(profile[f"share[{c}]"] for c in CLASSES) == pytest.approx(1.0)
    assert profile["r2_curve"] == pytest.approx(1.0)
    back = table_from_json(table_to_json(table))
    assert list(back["class"]) == list(table["class"]) and np.allclose(back.r2_curve, table.r2_curve, atol=1e-4, equal_nan=True)


def test_a_site_without_curves_leaves_the_curve_measures_undefined():
    """On a directions-only site each direction is its own part; no psi: curve measures NaN."""
    rng = np.random.default_rng(1)
    G = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    Z = np.abs(rng.normal(size=(300, 8))) * (rng.random((300, 8)) < 0.2)
    table = latent_table(Z, G, {"features": Directions("features", G)})
    assert table.r2_curve.isna().all() and (table.home == np.arange(8)).all()
    assert (table.home_share > 0.999).all() and (table["class"] == "aligned").all()
    assert np.isnan(one_per_frequency(Z, table, {"features": Directions("features", G)}))
    assert set(latent_profile(Z, table, {"features": Directions("features", G)})) == {
        f"{share}[{c}]" for share in ("share", "variance_share") for c in CLASSES
    }
