"""clock-v1: the learned-attention model is accurate and the diagnostics call it a clock."""

from __future__ import annotations

import numpy as np
import pytest

from structure_bench.registry import make



@pytest.fixture(scope="module")
def clock():
    return make("clock-v1")


@pytest.fixture(scope="module")
def figures(clock):
    return clock.validate()


def test_clock_is_accurate_on_all_pairs(figures):
    assert figures["accuracy"] >= 0.99


def test_clock_diagnostics_say_clock(figures):
    pizza = make("pizza-v1").validate()
    assert figures["distance_irrelevance"] > pizza["distance_irrelevance"]
    assert figures["gradient_symmetricity"] < pizza["gradient_symmetricity"]
    assert figures["logit_scale_correlation"] < pizza["logit_scale_correlation"]


def test_clock_has_frequency_neurons(clock, figures):
    assert figures["neurons_fitted"] >= 20
    frequencies = clock.structures("hidden")["frequencies"]
    assert frequencies.labels == [f"k={k}" for k in figures["key_frequencies"]]


def test_clock_forward_reproduces_the_model(clock):
    logits = clock.forward(clock.activations("hidden", "test"), "hidden", "test")
    clean = clock._internals["logits"][clock.arrays.test_idx]
    np.testing.assert_allclose(logits, clean, atol=1e-4 * np.abs(clean).max())
