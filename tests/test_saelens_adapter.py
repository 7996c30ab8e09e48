"""The SAELens adapter: protocol conformance, planted recovery, and SAELens staying optional."""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import structure_bench as sb
from structure_bench.adapters.saelens import SAELensSAE
from structure_bench.planning import plan


def test_core_never_imports_sae_lens() -> None:
    code = (
        "import sys, structure_bench, structure_bench.cli, structure_bench.runner\n"
        "from structure_bench.methods import get_method, list_methods\n"
        "list_methods(); get_method('saelens')\n"
        "assert 'sae_lens' not in sys.modules, 'the core imported sae_lens'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("architecture", ["topk", "standard"])
def test_adapter_passes_check_method(architecture: str) -> None:
    pytest.importorskip("sae_lens")
    sb.check_method(functools.partial(SAELensSAE, architecture=architecture, n_steps=200))


def test_registered_as_saelens_and_rejects_unknown_architectures() -> None:
    pytest.importorskip("sae_lens")
    assert sb.get_method("saelens") is SAELensSAE
    X = np.ones((8, 4), dtype=np.float32)
    with pytest.raises(sb.MethodError, match="unknown SAELens architecture 'topkk'.*topk"):
        SAELensSAE(n_latents=4, l0_target=1, architecture="topkk").fit(X)
    with pytest.raises(sb.MethodError, match="no field.*bogus"):
        SAELensSAE(n_latents=4, l0_target=1, config={"bogus": 1}).fit(X)
    # ... and a sweep says so before it fits anything.
    with pytest.raises(sb.MethodError, match="unknown SAELens architecture 'topkk'"):
        plan(["tms-v1"], ["saelens"], [0], params={"saelens": {"architecture": "topkk"}})


def test_topk_recovers_a_planted_dictionary() -> None:
    pytest.importorskip("sae_lens")
    rng = np.random.default_rng(0)
    m, d, n = 16, 12, 4000
    truth = rng.normal(size=(m, d))
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    codes = (rng.random((n, m)) < 2 / m) * rng.uniform(0.5, 1.5, (n, m))
    X = (codes @ truth).astype(np.float32)
    sae = SAELensSAE(n_latents=m, l0_target=2, seed=0, architecture="topk", n_steps=2000).fit(X)
    Z = sae.encode(X)
    assert np.allclose(sae.decode(Z), Z @ sae.decoder_ + sae.decoder_bias_, atol=1e-4)
    assert (Z != 0).sum(axis=1).max() <= 2
    rows = sae.decoder_ / np.linalg.norm(sae.decoder_, axis=1, keepdims=True)
    cos = np.abs(rows @ truth.T)
    matched = cos[linear_sum_assignment(-cos)]
    # Measured: mcc 0.898, 12/16 features at |cos| >= 0.9 (seed 0, 2000 steps).
    assert matched.mean() >= 0.85 and (matched >= 0.9).sum() >= 11
