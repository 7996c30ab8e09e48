"""Every metric on the largest default task's test split (pizza-v1: 3481 x 256, tied with clock-v1)
with a wide dictionary (4x the fitted neurons, the widest cell of its grid): random top-k codes."""

from collections.abc import Callable

import numpy as np
import pytest

import structure_bench as sb
from structure_bench.methods import checked_outputs
from structure_bench.metrics import evaluate, task_effect
from structure_bench.metrics.directions import direction_metrics
from structure_bench.metrics.reconstruction import firing_mask, firing_tolerance, reconstruction_metrics, sparsity_metrics
from structure_bench.metrics.subspaces import subspace_metrics
from structure_bench.metrics.variables import variable_metrics
from structure_bench.registry import make
from structure_bench.structures import Directions, Subspaces, Variables

TASK = "pizza-v1"


@pytest.fixture(scope="module")
def scored() -> dict:
    """The test split, a widest-cell random dictionary's outputs and the task's structures."""
    task = make(TASK)
    site = task.metadata.default_site
    cell = max(task.metadata.grid, key=lambda c: c.n_latents)
    X = task.activations(site, "test")
    method = sb.get_method("random")(n_latents=cell.n_latents, l0_target=cell.l0_target, seed=0).fit(
        task.activations(site, "train")
    )
    Z, X_hat, decoder, bias = checked_outputs(method, "random", X)
    return dict(task=task, site=site, X=X, Z=Z, X_hat=X_hat, decoder=decoder, bias=bias, structures=task.structures(site, "test"))


def _first(structures: dict, kind: type) -> object:
    return next(s for s in structures.values() if isinstance(s, kind))


def _parts(s: dict) -> dict[str, Callable[[], object]]:
    fires = firing_mask(s["Z"])
    alive = fires.any(axis=0)
    task, site = s["task"], s["site"]
    clean = task.forward(s["X"], site, "test")
    ablated = task.forward(np.broadcast_to(s["X"].mean(axis=0), s["X"].shape).copy(), site, "test")
    return {
        "evaluate": lambda: evaluate(s["X"], s["Z"], s["X_hat"], s["decoder"], s["bias"], s["structures"]),
        "reconstruction": lambda: reconstruction_metrics(s["X"], s["X_hat"]) | sparsity_metrics(firing_mask(s["Z"])),
        "directions": lambda: direction_metrics(
            s["decoder"], s["Z"], alive, _first(s["structures"], Directions), firing_tolerance(s["Z"])
        ),
        "subspaces": lambda: subspace_metrics(s["X"], s["Z"], s["decoder"], s["bias"], alive, _first(s["structures"], Subspaces)),
        "variables": lambda: variable_metrics(s["Z"], alive, _first(s["structures"], Variables)),
        "task_effect": lambda: task_effect(
            clean, task.forward(s["X_hat"].astype(np.float32), site, "test"), ablated, task.targets("test")
        ),
    }


@pytest.mark.parametrize("part", ["evaluate", "reconstruction", "directions", "subspaces", "variables", "task_effect"])
def test_metric_speed(benchmark, scored, part) -> None:
    result = benchmark.pedantic(_parts(scored)[part], rounds=3, iterations=1)
    assert result
    benchmark.extra_info["shape"] = f"{TASK} test {scored['X'].shape}, {scored['Z'].shape[1]} latents"
