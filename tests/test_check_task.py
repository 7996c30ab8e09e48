"""check_task over every built-in and test task, and the problems it and the declaration catch."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

import mini_pizza  # noqa: F401  (registers mini-pizza-v1)
import structure_bench as sb
from structure_bench.registry import registry
from structure_bench.structures import Directions
from structure_bench.task import BUILTIN_TASK_PACKAGE, TaskArrays
from toy_task import ToyTask

BUILTIN_TASKS = sorted(
    task_id for task_id, spec in registry().items()
    if spec.import_spec.startswith(f"{BUILTIN_TASK_PACKAGE}.")
)


# -- every task passes --------------------------------------------------------------------

def test_every_builtin_task_is_found() -> None:
    assert {"pizza-v1", "clock-v1", "group-v1", "tms-v1", "superposition-v1", "hierarchy-v1"} <= set(BUILTIN_TASKS)


@pytest.mark.parametrize("task_id", BUILTIN_TASKS)
def test_builtin_task_passes_check_task(task_id: str) -> None:
    task = sb.make(task_id)
    scores = sb.check_task(task)
    meta, truth = task.metadata, task.primary_structure()
    # SPEC 3.1: the grid has a cell at the primary structure's size (the declared grids are literal).
    assert truth.size in [cell.n_latents for cell in meta.grid]
    if task_id == "hierarchy-v1":
        # The main score counts absorption in the codes: the oracle's OMP codes at k = 2 leave out
        # the parent on a quarter of the samples where parent and child are both on.
        assert scores["features/mcc"] >= 0.99
        assert scores[meta.main_score] == pytest.approx(0.74, abs=0.02)
    else:
        assert scores[meta.main_score] >= 0.99


@pytest.mark.parametrize("task_id", ["toy-v1", "mini-pizza-v1"])
def test_test_task_passes_check_task(task_id: str) -> None:
    assert sb.check_task(task_id)["fvu"] < 0.01


def test_a_builtin_with_other_kwargs_is_not_its_pin() -> None:
    with pytest.raises(sb.StructureBenchError, match="identity comes from its pin, but it is 'other definition'"):
        sb.check_task(sb.make("superposition-v1", n_samples=1500))


def test_a_class_registered_under_another_id_takes_its_declaration_under_that_id() -> None:
    variant = ToyTask(id="toy-variant-v1", n_samples=300)
    assert variant.metadata == replace(ToyTask.metadata, id="toy-variant-v1")
    assert ToyTask(id="toy-v1").metadata is ToyTask.metadata
    sb.check_task(variant)


# -- a bad declaration fails when the class is defined ------------------------------------

@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"default_site": "embed"}, "default_site 'embed' is not one of its sites"),
        ({"id": "toy"}, "the id must be 'name-vN'"),
        ({"id": "toy_task:toy-v1"}, "the id must be 'name-vN'"),
        ({"grid": ()}, "the grid is empty"),
        ({"grid": (sb.Cell(4, 5),)}, r"1 <= l0_target <= n_latents"),
        ({"grid": (sb.Cell(6, 1), sb.Cell(6, 1))}, "repeats a cell"),
        ({"sites": ()}, "sites must be distinct non-empty names"),
        ({"main_score": "mcc"}, "main_score must be '<structure>/<metric>'"),
        ({"primary": "features/mcc"}, "primary must name a structure"),
        ({"description": ""}, "description must be a non-empty string"),
    ],
)
def test_bad_metadata_fails_where_the_class_is_defined(changes: dict, message: str) -> None:
    with pytest.raises(sb.StructureBenchError, match=message) as error:

        class Bad(ToyTask):
            metadata = replace(ToyTask.metadata, **changes)

    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"model_sites": ("embed",)}, r"model_sites \['embed'\] are not among its sites"),
        ({"instance_seed": "sample_seed"}, "instance_seed 'sample_seed' is not a parameter of its constructor"),
        ({"__module__": "structure_bench_tasks.fake"}, "a built-in task names its references"),
        ({"metadata": {"id": "bad-v1"}}, "metadata must be a TaskMetadata"),
    ],
)
def test_bad_declaration_beside_the_metadata_fails_where_the_class_is_defined(attributes: dict, message: str) -> None:
    with pytest.raises(sb.StructureBenchError, match=message):
        type("Bad", (ToyTask,), attributes)


# -- check_task catches what is wrong with a built task -----------------------------------

class PermutedForward(ToyTask):
    """Its model's logits come out in the wrong class order."""

    def forward(self, X: np.ndarray, site: str | None = None, split: str = "test") -> np.ndarray:
        return super().forward(X, site, split)[:, ::-1]


class TooFewClasses(ToyTask):
    def forward(self, X: np.ndarray, site: str | None = None, split: str = "test") -> np.ndarray:
        return super().forward(X, site, split)[:, :3]


class IgnoresSplit(ToyTask):
    """Adds a per-sample term, but always that of the first samples, whatever the split."""

    def forward(self, X: np.ndarray, site: str | None = None, split: str = "test") -> np.ndarray:
        return super().forward(X, site, split) + 1e-3 * np.arange(len(X))[:, None]


class WrongDimension(ToyTask):
    """Its features structure lives in one dimension fewer than its site."""

    def generate(self) -> TaskArrays:
        arrays = super().generate()
        features = arrays.structures["hidden"]["features"]
        arrays.structures["hidden"]["features"] = Directions(
            "features", features.vectors[:, :-1], features.coefficients
        )
        return arrays


class MissingSite(ToyTask):
    metadata = replace(ToyTask.metadata, sites=("hidden", "embed"))


class MissingPrimary(ToyTask):
    metadata = replace(ToyTask.metadata, primary="neurons")


class UncomputedMainScore(ToyTask):
    metadata = replace(ToyTask.metadata, main_score="features/absorption_free")  # it has no hierarchy


class LosesTestSamples(ToyTask):
    def generate(self) -> TaskArrays:
        arrays = super().generate()
        arrays.test_idx = arrays.test_idx[:-5]
        return arrays


class NonFinite(ToyTask):
    def generate(self) -> TaskArrays:
        arrays = super().generate()
        arrays.activations["hidden"][3, 2] = np.nan
        return arrays


_draws = itertools.count()


class Nondeterministic(ToyTask):
    """Each generate() draws other activations."""

    def generate(self) -> TaskArrays:
        arrays = super().generate()
        arrays.activations["hidden"] += np.float32(1e-3 * next(_draws))
        return arrays


@pytest.mark.parametrize(
    ("task_class", "message"),
    [
        (PermutedForward, r"has accuracy 0\.\d+ on all samples, but validate\(\) states accuracy = 0\.\d+"),
        (TooFewClasses, r"gives shape \(600, 3\), not \[600, n_classes >= 6\]"),
        (IgnoresSplit, "on the test split differs from its test rows"),
        (WrongDimension, "structure 'features' at site 'hidden' lives in 7 dimensions, its site in 8"),
        (MissingSite, r"declares sites \('hidden', 'embed'\) but generates activations at \('hidden',\)"),
        (MissingPrimary, "the primary structure 'neurons' is not at the default site 'hidden'"),
        (UncomputedMainScore, "the main score 'features/absorption_free' is not among the columns"),
        (LosesTestSamples, "indices are not disjoint or do not cover the 600 samples"),
        (NonFinite, "site 'hidden': 1 activations are NaN or inf"),
        (Nondeterministic, "its identity is not stable"),
    ],
)
def test_check_task_names_the_problem(task_class: type[ToyTask], message: str) -> None:
    task = task_class(id=f"{task_class.__name__.lower()}-v1")
    with pytest.raises(sb.StructureBenchError, match=message) as error:
        sb.check_task(task)
    assert str(error.value).startswith(f"task {task.id}: ") and "\n" not in str(error.value)
