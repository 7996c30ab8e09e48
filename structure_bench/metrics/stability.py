"""Stability across seeds (SPEC 2, Stability)."""

from __future__ import annotations

import numpy as np

from structure_bench.metrics.directions import matched_mean_abs_cos


def seed_mcc(decoder_a: np.ndarray, decoder_b: np.ndarray) -> float:
    """Hungarian-matched mean |cos| between decoders [n_a, d] and [n_b, d] of two seeds.

    Averages over min(n_a, n_b) matched pairs; 1 means the same dictionary up to order and sign.
    """
    return matched_mean_abs_cos(np.asarray(decoder_a, dtype=np.float64), np.asarray(decoder_b, dtype=np.float64))
