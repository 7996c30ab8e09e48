"""How fits end: the SAE stopping rule, its cap and anneal, dead-latent resampling, the other
iterative baselines' training reports, and the record's ``training`` field."""

import gc

import numpy as np
import pytest
import torch

import structure_bench as sb
from structure_bench.errors import MethodError, StructureBenchError
from structure_bench.methods import training_report
from structure_bench.numerics import subnormals_flushed
from structure_bench.results import validate_record
from structure_bench_baselines.linear import ICAMethod, NMFMethod, PCAMethod, numerical_rank
from structure_bench_baselines.sparse_coding import SparseCoding
from structure_bench_baselines.saes import TopKSAE


@pytest.fixture(scope="module")
def planted() -> np.ndarray:
    """X [2000, 16]: sparse non-negative codes (mean L0 2) on 24 random unit directions."""
    rng = np.random.default_rng(1)
    G = rng.normal(size=(24, 16))
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    return ((rng.exponential(size=(2000, 24)) * (rng.random((2000, 24)) < 2 / 24)) @ G).astype(np.float32)


def test_negative_tol_trains_exactly_max_steps_and_is_not_converged(planted) -> None:
    sae = TopKSAE(24, 2, seed=0, max_steps=250, tol=-1.0).fit(planted)
    assert sae.n_steps_ == 250 and not sae.converged_
    assert sae.training_ == {
        "steps": 250, "converged": False, "final_loss": sae.training_["final_loss"], "dead_fraction": sae.dead_fraction_
    }
    assert len(sae.error_history_) == 2 and 0 < sae.training_["final_loss"] < sae.error_history_[0] < 1


def test_the_rule_reads_held_out_samples_it_never_trains_on(planted, monkeypatch) -> None:
    seen: list[int] = []
    forward = TopKSAE._forward
    monkeypatch.setattr(TopKSAE, "_forward", lambda self, x: seen.append(len(x)) or forward(self, x))
    sae = TopKSAE(24, 2, seed=0, max_steps=100, tol=-1.0, batch_size=10_000).fit(planted)
    assert set(seen) == {1800}  # full batches of the 90% not held out
    assert TopKSAE(24, 2, seed=0, max_steps=100, tol=-1.0, validation_fraction=0.0).fit(planted).n_steps_ == 100
    with pytest.raises(MethodError, match="validation_fraction"):
        TopKSAE(24, 2, validation_fraction=1.0).fit(planted)
    assert sae.training_["final_loss"] > 0


@pytest.mark.parametrize(("anneal", "extra"), [(0.1, 45), (0.2, 100), (0.0, 0)])
def test_the_rule_stops_a_fit_and_anneals_for_its_share_of_the_run(planted, anneal, extra) -> None:
    # A tolerance of 1 (any improvement below 100% counts as stalled) holds as early as it may:
    # after the fourth window; the anneal then adds anneal / (1 - anneal) of the 400 steps, rounded
    # up (the default 0.1: a ninth), and none at 0.
    sae = TopKSAE(24, 2, seed=0, max_steps=20000, tol=1.0, anneal=anneal).fit(planted)
    assert sae.converged_ and sae.n_steps_ == 400 + extra
    with pytest.raises(MethodError, match="anneal must be in"):
        TopKSAE(24, 2, anneal=1.0).fit(planted)


def test_stretch_trains_that_many_times_the_rules_steps_and_is_the_longer_run(planted) -> None:
    # The rule holds at step 400 (tol 1, as above); stretch 2.5 learns on to the first window from
    # step 1000, then anneals for a ninth of it: the very run that trains exactly 1112 steps with the
    # rule off (the convergence benchmark's longer run), bit for bit.
    stretched = TopKSAE(24, 2, seed=0, max_steps=20000, tol=1.0, stretch=2.5).fit(planted)
    assert stretched.converged_ and stretched.n_steps_ == 1000 + 112
    longer = TopKSAE(24, 2, seed=0, max_steps=1112, tol=-1.0).fit(planted)
    assert np.array_equal(stretched.decoder_, longer.decoder_)
    assert stretched.error_history_ == longer.error_history_
    with pytest.raises(MethodError, match="stretch must be >= 1"):
        TopKSAE(24, 2, stretch=0.5).fit(planted)


def test_the_rule_counts_only_windows_since_the_variant_settled(planted) -> None:
    # Unsettled for the first five windows: the rule, as early as it may (tol 1), needs four windows
    # after the last unsettled one (window 9, not window 6 as it would comparing with windows
    # before), then anneals for a ninth of the 900 steps.
    class SlowToSettle(TopKSAE):
        def settled(self) -> bool:
            return len(self.error_history_) >= 6

    sae = SlowToSettle(24, 2, seed=0, max_steps=20000, tol=1.0).fit(planted)
    assert sae.converged_ and sae.n_steps_ == 900 + 100


def _modes() -> tuple[bool, bool]:
    """(cyclic garbage collector on, float32 subnormals kept) in this thread."""
    return gc.isenabled(), not subnormals_flushed()


def test_the_garbage_collector_and_subnormals_are_off_while_training_and_back_after(planted, monkeypatch) -> None:
    """The loop pauses Python's cyclic collector and flushes subnormals; both must come back after a
    fit, also after one that raised, or a long run would never collect its cycles again and later
    arithmetic would silently lose its smallest values."""
    states: list[tuple[bool, bool]] = []
    forward = TopKSAE._forward
    monkeypatch.setattr(TopKSAE, "_forward", lambda self, x: states.append(_modes()) or forward(self, x))
    TopKSAE(24, 2, seed=0, max_steps=5, tol=-1.0).fit(planted)
    assert states == [(False, False)] * 5 and _modes() == (True, True)

    def failing(self, x):  # noqa: ANN001, ANN202
        raise RuntimeError("a hook failed")

    monkeypatch.setattr(TopKSAE, "_forward", failing)
    with pytest.raises(RuntimeError, match="a hook failed"):
        TopKSAE(24, 2, seed=0, max_steps=5, tol=-1.0).fit(planted)
    assert _modes() == (True, True)
    gc.disable()  # a caller that had it off keeps it off
    try:
        monkeypatch.setattr(TopKSAE, "_forward", forward)
        TopKSAE(24, 2, seed=0, max_steps=5, tol=-1.0).fit(planted)
        assert _modes() == (False, True)
    finally:
        gc.enable()


def test_the_anneal_ends_at_a_learning_rate_near_zero(planted, monkeypatch) -> None:
    rates: list[float] = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):  # noqa: ANN001, ANN202
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    TopKSAE(24, 2, seed=0, max_steps=500, tol=-1.0, lr=1e-3).fit(planted)
    assert len(rates) == 500
    assert rates[:450] == [1e-3] * 450  # constant while learning; the cap's anneal is the last tenth
    assert np.all(np.diff(rates[450:]) < 0) and rates[-1] == pytest.approx(1e-3 / 50)


def test_resampling_points_dead_latents_at_residuals_with_fresh_moments(planted) -> None:
    sae = TopKSAE(24, 2, seed=0, max_steps=200, tol=-1.0, resample=False).fit(planted)
    data = torch.from_numpy(planted) / sae.scale_
    optimiser = torch.optim.Adam([sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec])
    sae.loss(sae._forward(data[:256])).backward()
    optimiser.step()
    sae._constrain_decoder()  # as after every training step
    dead = torch.tensor([0, 5, 7])
    sae._samples_since_fired[:] = 0
    sae._samples_since_fired[dead] = sae.dead_after + 1
    live_norm = float(sae.W_enc.detach()[sae._samples_since_fired == 0].norm(dim=1).mean())
    with torch.no_grad():
        residuals = data - (sae.activation(sae._preactivations(data), training=True) @ sae.W_dec + sae.b_dec)
    residuals /= residuals.norm(dim=1, keepdim=True)
    sae.n_resampled_ = 0
    sae._resample_dead(data, optimiser, torch.Generator().manual_seed(0))
    assert sae.n_resampled_ == 3 and (sae._samples_since_fired == 0).all()
    W_dec, W_enc = sae.W_dec.detach(), sae.W_enc.detach()
    np.testing.assert_allclose(W_dec[dead].norm(dim=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(W_enc[dead].norm(dim=1), live_norm, rtol=1e-5)
    np.testing.assert_allclose(W_enc[dead] / live_norm, W_dec[dead], atol=1e-6)  # encoder along the decoder row
    assert (sae.b_enc.detach()[dead] == 0).all()
    # each new row is the direction of a training sample's residual
    np.testing.assert_allclose((W_dec[dead] @ residuals.T).max(dim=1).values, 1.0, rtol=1e-5)
    for parameter in (sae.W_enc, sae.W_dec):
        assert (optimiser.state[parameter]["exp_avg"][dead] == 0).all()
        assert (optimiser.state[parameter]["exp_avg_sq"][dead] == 0).all()
        assert (optimiser.state[parameter]["exp_avg"][1] != 0).any()  # live rows keep theirs


def test_numerical_rank_and_ica_keeps_no_more_components() -> None:
    rng = np.random.default_rng(0)
    X = rng.laplace(size=(500, 3)) @ rng.normal(size=(3, 10))
    assert numerical_rank(X) == 3 and numerical_rank(rng.normal(size=(500, 10))) == 10
    ica = ICAMethod(8, seed=0).fit(X)
    assert ica.model_.n_components == 3 and ica.training_["converged"]
    np.testing.assert_allclose(ica.decode(ica.encode(X)), X, atol=1e-8)


@pytest.mark.parametrize(
    ("method", "cap", "cap_param"),
    [(NMFMethod, 5, "max_iter"), (ICAMethod, 2, "max_iter"), (SparseCoding, 1, "max_iter")],
)
def test_iterative_baselines_report_training_and_a_binding_cap(planted, method, cap, cap_param) -> None:
    X = np.abs(planted)
    loose = method(12, 2, seed=0, tol=1e-2).fit(X).training_
    assert loose["converged"] and loose["steps"] >= 1
    capped = method(12, 2, seed=0, **{cap_param: cap, "tol": 0.0}).fit(X).training_
    assert not capped["converged"]
    if method is NMFMethod:
        assert capped["steps"] == cap and 0 < loose["final_loss"] < capped["final_loss"] < 1
    assert PCAMethod(12, 2).fit(X).__dict__.get("training_") is None


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        ([1, 2], "must be a dict"),
        ({"steps": -1, "converged": True}, "steps"),
        ({"steps": 3.5, "converged": True}, "steps"),
        ({"steps": 3, "converged": "yes"}, "converged"),
        ({"steps": 3, "converged": True, "final_loss": "low"}, "final_loss"),
    ],
)
def test_training_report_is_checked_at_the_boundary(report, problem) -> None:
    class Fitted:
        training_ = report

    with pytest.raises(MethodError, match=problem):
        training_report(Fitted(), "toy")


def test_records_keep_training_and_the_schema_checks_it() -> None:
    record = sb.evaluate("topk-sae", "superposition-v1", sb.Cell(16, 2), params={"max_steps": 300})
    assert record["training"]["steps"] <= 300 and isinstance(record["training"]["converged"], bool)
    assert 0 < record["training"]["final_loss"] < 1
    assert sb.evaluate("pca", "superposition-v1", sb.Cell(16, 2))["training"] is None
    old = {k: v for k, v in record.items() if k != "training"}  # records from before the field
    validate_record(old)
    with pytest.raises(StructureBenchError, match="training"):
        validate_record({**record, "training": {"steps": 3}})
