"""Absorption and hedging on hand-built hierarchies with known answers."""

import numpy as np
import pandas as pd
import pytest

from structure_bench.metrics.hierarchy import hierarchy_metrics
from structure_bench.structures import Directions

# Feature 0 is a parent with children 1 and 2; feature 3 is a childless root. Standard basis in R^5.
PARENTS = [-1, 0, 0, -1]
CODES = np.array([
    [1.0, 0.0, 0.0, 0.0],  # parent alone
    [1.0, 0.5, 0.0, 0.0],  # parent with child 1
    [1.0, 0.0, 0.7, 0.0],  # parent with child 2
    [0.8, 0.6, 0.0, 1.0],  # parent with child 1, root on
    [0.0, 0.0, 0.0, 1.0],  # root alone
])


def truth() -> Directions:
    return Directions("features", np.eye(4, 5), CODES, pd.DataFrame({"parent": PARENTS}))


def test_exact_dictionary_has_no_absorption_or_hedging():
    result = hierarchy_metrics(np.eye(4, 5), CODES, truth())
    assert result == {"absorption_rate": 0.0, "absorption_free": 1.0, "hedging": 0.0}


def test_latent_order_and_scale_do_not_matter():
    order = [2, 0, 3, 1]
    result = hierarchy_metrics(3.0 * np.eye(4, 5)[order], CODES[:, order], truth())
    assert result["absorption_rate"] == 0.0 and result["hedging"] == pytest.approx(0.0, abs=1e-12)


def test_parent_latent_silenced_by_child_1_absorbs_two_of_three_co_occurrences():
    codes = CODES.copy()
    codes[codes[:, 1] > 0, 0] = 0.0  # the parent's latent never fires with child 1
    result = hierarchy_metrics(np.eye(4, 5), codes, truth())
    # Co-occurrences: rows 1, 3 (child 1) and row 2 (child 2); rows 1 and 3 are absorbed.
    assert result["absorption_rate"] == pytest.approx(2 / 3)
    assert result["absorption_free"] == pytest.approx(1 / 3)


def test_parent_silent_with_silent_child_is_not_absorption():
    codes = CODES.copy()
    codes[1, [0, 1]] = 0.0  # both latents miss row 1: a recall failure, not absorption
    assert hierarchy_metrics(np.eye(4, 5), codes, truth())["absorption_rate"] == 0.0


def test_hedging_is_the_share_of_the_parent_row_in_its_children():
    decoder = np.eye(4, 5)
    decoder[0] = [1.0, 0.5, 0.0, 0.0, 0.0]  # the parent latent leans towards child 1
    result = hierarchy_metrics(decoder, CODES, truth())
    assert result["hedging"] == pytest.approx(0.25 / 1.25)
    # Leaning towards a non-child direction (the root's, or an unused one) is not hedging.
    decoder[0] = [1.0, 0.0, 0.0, 0.0, 0.5]
    assert hierarchy_metrics(decoder, CODES, truth())["hedging"] == pytest.approx(0.0, abs=1e-12)


def test_dead_parent_latent_is_unmatched_and_counts_as_silent():
    codes = CODES.copy()
    codes[:, 0] = 0.0  # the parent's latent is dead, so the parent feature has no match
    result = hierarchy_metrics(np.eye(4, 5), codes, truth())
    assert result["absorption_rate"] == 1.0
    assert np.isnan(result["hedging"])
