"""Slow: retrain the shipped checkpoints with their recorded configuration and re-validate."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from structure_bench_tasks.clock.task import ClockTask
from structure_bench_tasks.pizza.model import ModelConfig, save_checkpoint
from structure_bench_tasks.pizza.task import PizzaTask
from structure_bench_tasks.pizza.train import TrainConfig, train


def _retrain(task_class, tmp_path):
    with safe_open(str(task_class.checkpoint), framework="pt") as handle:
        metadata = handle.metadata()
    recorded = json.loads(metadata["training"])
    config = TrainConfig(**{k: recorded[k] for k in TrainConfig.__dataclass_fields__})
    model, record = train(ModelConfig(**json.loads(metadata["model"])), config)
    path = tmp_path / task_class.checkpoint.name
    save_checkpoint(model, path, record)
    retrained = type(f"Retrained{task_class.__name__}", (task_class,), {"checkpoint": path})
    return retrained(id=f"retrained-{task_class.__name__.lower()}-v1").validate()


@pytest.mark.slow
def test_retrained_pizza_passes_validation(tmp_path):
    figures = _retrain(PizzaTask, tmp_path)
    assert figures["accuracy"] >= 0.99
    assert figures["distance_irrelevance"] < 0.4
    assert figures["fitted_variance_share"] >= 0.5


@pytest.mark.slow
def test_retrained_clock_passes_validation(tmp_path):
    figures = _retrain(ClockTask, tmp_path)
    assert figures["accuracy"] >= 0.99
    assert figures["distance_irrelevance"] >= 0.4
    assert figures["gradient_symmetricity"] < 0.9
