"""Calibration on every registered task: the oracle recovers its own primary structure, a random
dictionary sits at the chance level the truth's geometry implies (SPEC 2, "Stability and calibration")."""

from __future__ import annotations

import numpy as np
import pytest

import structure_bench as sb
from structure_bench.methods import registry as method_registry
from structure_bench.planning import plan
from structure_bench.runner import run
from structure_bench.structures import Directions
from structure_bench.summary import summarise
from structure_bench.unit import compute_unit

BUILTIN_TASKS = [t for t in sb.list_tasks() if t != "toy-v1"]


def _scores(task_id: str, method: str) -> dict[str, float]:
    task = sb.make(task_id)
    cell = min(task.metadata.grid, key=lambda c: c.n_latents)
    (unit,) = plan([task_id], [method], seeds=[0], cells=[cell])
    result = compute_unit(unit)
    assert result.record["status"] == "ok", result.record["error"]
    return result.record["metrics"]


def _chance_purity(bases: list[np.ndarray], draws: int = 20000) -> float:
    """E[max_g ||B_g u||^2] for u uniform on the unit sphere (Monte Carlo)."""
    u = np.random.default_rng(0).normal(size=(draws, bases[0].shape[1]))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return float(np.max([((u @ b.T) ** 2).sum(axis=1) for b in bases], axis=0).mean())


@pytest.mark.parametrize("task_id", BUILTIN_TASKS)
def test_oracle_recovers_its_primary_structure(task_id: str) -> None:
    task = sb.make(task_id)
    name, truth = task.metadata.primary, task.primary_structure()
    scores = _scores(task_id, "oracle")
    geometric = ["mcc", "mmcs_truth", "mmcs_learned", "recovered@0.9"] if isinstance(truth, Directions) else ["purity", "coverage", "subspace_f"]
    for metric in geometric:
        assert scores[f"{name}/{metric}"] >= 0.99, (metric, scores[f"{name}/{metric}"])


@pytest.mark.parametrize("task_id", BUILTIN_TASKS)
def test_random_dictionary_scores_near_chance(task_id: str) -> None:
    task = sb.make(task_id)
    name, truth = task.metadata.primary, task.primary_structure()
    scores = _scores(task_id, "random")
    if isinstance(truth, Directions):
        # A random unit vector's best |cos| with m truths in d dims; random latents are no better.
        u = np.random.default_rng(0).normal(size=(4000, truth.dim))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        chance = float(np.abs(u @ truth.vectors.T).max(axis=1).mean())
        assert abs(scores[f"{name}/mmcs_learned"] - chance) < 0.1, (scores[f"{name}/mmcs_learned"], chance)
    else:
        chance = _chance_purity(truth.bases)
        # Codes favour latents that point into the data, so purity may sit a little above chance.
        assert chance - 0.05 < scores[f"{name}/purity"] < chance + 0.2, (scores[f"{name}/purity"], chance)
        assert scores[f"{name}/subspace_f"] < 0.5


class RenamedOracle(sb.get_method("oracle")):
    """The oracle under another name: still the reference that scores 1."""


class RenamedRandom(sb.get_method("random")):
    """The random dictionary under another name: still the reference that scores 0."""


def test_calibration_references_are_found_by_their_role_not_their_name(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(method_registry.METHODS.local, "truth-reference", RenamedOracle)
    monkeypatch.setitem(method_registry.METHODS.local, "chance-reference", RenamedRandom)
    methods = ["truth-reference", "chance-reference", "pca"]
    run(plan(["superposition-v1"], methods, [0]), tmp_path, progress=False)
    table = summarise(sb.load_results(tmp_path)).set_index("method")
    assert np.allclose(table.loc["truth-reference", "main_score_norm"], 1.0)
    assert np.allclose(table.loc["chance-reference", "main_score_norm"], 0.0)
    assert table.loc["pca", "main_score_norm"].notna().all()
    with pytest.raises(sb.StructureBenchError, match="two registered methods declare the calibration role '(oracle|random)'"):
        method_registry.calibration_methods()
    monkeypatch.delitem(method_registry.METHODS.local, "truth-reference")
    monkeypatch.delitem(method_registry.METHODS.local, "chance-reference")
    assert method_registry.calibration_methods() == {"oracle": "oracle", "random": "random"}
