"""Normalising a score between the random and oracle reference methods (SPEC 2, calibration)."""

from __future__ import annotations

import math


def normalise(score: float, random: float, oracle: float) -> float:
    """(score - random) / (oracle - random): 0 at the random method, 1 at the oracle.

    NaN when oracle == random (the scale is undefined) or any input is NaN.
    """
    if oracle == random or math.isnan(oracle - random):
        return float("nan")
    return (score - random) / (oracle - random)
