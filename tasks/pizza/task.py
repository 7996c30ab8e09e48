"""pizza-v1: a trained one-layer transformer with constant attention (Zhong et al.'s pizza).

``ModularAdditionTask`` is the trained-checkpoint task; ``clock-v1`` subclasses it with another
checkpoint and neuron fit.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from structure_bench.task import Cell, Split, Task, TaskArrays, TaskMetadata
from structure_bench_tasks.pizza import diagnostics
from structure_bench_tasks.pizza.fourier import FIT_THRESHOLD, fit_neurons, key_frequencies, output_phase
from structure_bench_tasks.pizza.model import (
    ModAddTransformer,
    all_pairs,
    dictionary_split,
    load_checkpoint,
    mirror_share,
    pair_split,
)
from structure_bench_tasks.pizza.structures import embed_structures, hidden_structures, inputs_table

HERE = Path(__file__).parent


def modular_addition_grid(n_fitted: int, n_keys: int, overcomplete: bool = True) -> tuple[Cell, ...]:
    """Widths 0.5x, 1x and (``overcomplete``) 4x the ``n_fitted`` neurons; L0 one latent per key
    frequency (SPEC hypothesis 3's cost) and, at 1x, four per frequency (see the card).

    The default suite keeps one 4x cell of a 512-neuron model, on the flagship (the authors'
    pizza): each costs about as much as the rest of a task's grid together (README, speed)."""
    cells = (Cell(max(n_fitted // 2, 1), n_keys), Cell(n_fitted, n_keys), Cell(n_fitted, 4 * n_keys))
    return (*cells, Cell(4 * n_fitted, n_keys)) if overcomplete else cells


def split_figures(p: int, train_idx: np.ndarray, test_idx: np.ndarray) -> dict[str, Any]:
    """The dictionary-learning split's sizes and the share of test pairs whose mirror is in train."""
    return {"split_train_test": [len(train_idx), len(test_idx)], "test_mirror_in_train": mirror_share(p, train_idx, test_idx)}


class ModularAdditionTask(Task):
    """A trained modular-addition transformer, its activations at ``hidden`` and ``embed``, and the
    per-neuron Fourier ground truth fitted from the weights.

    checkpoint : the shipped safetensors file (it keys the cache).
    neuron_form : "pizza" assigns neurons whose pizza-form fit has R^2 >= 0.9; "frequency" those
        whose best single-frequency fit (with products of a and b, as a clock needs) does.
    data_revision : 1 (the v1 tasks' data): the dictionary-learning split is the model's own split
        of ordered pairs. 2 (later versions): it splits unordered pairs {a, b}
        (``unordered_pair_split``), the inputs table gains ``model_train``, the model's own split as a
        label (1 trained on, 0 held out, -1 unknown), and the input variables gain each key
        frequency's curve point ``psi_k``.
    """

    model_sites = ("hidden", "embed")
    checkpoint: Path = HERE / "pizza.safetensors"
    neuron_form: str = "pizza"
    data_revision: int = 1

    def __init__(self, id: str, split_seed: int = 0, train_fraction: float = 0.8) -> None:
        super().__init__(id, split_seed=split_seed, train_fraction=train_fraction)
        self.split_seed, self.train_fraction = split_seed, train_fraction

    def data_files(self) -> list[Path]:
        return [self.checkpoint]

    def source_files(self) -> list[Path]:
        return [*super().source_files(), Path(__file__), HERE / "model.py", HERE / "fourier.py", HERE / "structures.py"]

    # -- the model, in float64 ---------------------------------------------------------------
    def load_model(self) -> tuple[ModAddTransformer, dict[str, Any]]:
        """The model (float64) and its training config, from ``checkpoint``."""
        return load_checkpoint(self.checkpoint)

    @cached_property
    def _loaded(self) -> tuple[ModAddTransformer, dict[str, Any]]:
        return self.load_model()

    @property
    def model(self) -> ModAddTransformer:
        return self._loaded[0]

    def model_train_idx(self) -> np.ndarray | None:
        """The pair indices (a p + b) the model was trained on, sorted; None when unknown."""
        training = self._loaded[1]
        return pair_split(self.p, training["train_fraction"], training["split_seed"])[0]

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """The dictionary-learning (train, test) pair indices."""
        return dictionary_split(self.p, self.train_fraction, self.split_seed, self.data_revision)

    @property
    def p(self) -> int:
        return self.model.config.p

    @cached_property
    def _internals(self) -> dict[str, np.ndarray]:
        """MLP input, pre-activations, hidden and logits over all p^2 pairs (float64 numpy)."""
        pairs = torch.from_numpy(all_pairs(self.p))
        m = self.model
        with torch.no_grad():
            embed = m.mlp_input(m.W_E[pairs[:, 0]], m.W_E[pairs[:, 1]])
            pre = m.pre_activation(embed)
            hidden = torch.relu(pre)
            logits = m.logits_from_hidden(hidden, embed)
        return {name: t.numpy() for name, t in
                {"embed": embed, "pre": pre, "hidden": hidden, "logits": logits}.items()}

    @cached_property
    def _fit(self) -> dict[str, Any]:
        fits = fit_neurons(self._internals["pre"], self.p)
        quality = fits.r2 if self.neuron_form == "pizza" else fits.r2_freq
        good = (quality >= FIT_THRESHOLD).to_numpy() & (self._internals["hidden"].var(axis=0) > 0)
        keys = key_frequencies(fits, good)
        return {"fits": fits, "keys": keys, "assigned": good & fits.k.isin(keys).to_numpy()}

    # -- Task API ------------------------------------------------------------------------------
    def generate(self) -> TaskArrays:
        internals, fit = self._internals, self._fit
        train_idx, test_idx = self.split()
        inputs = inputs_table(self.p)
        if self.data_revision >= 2:
            model_train = self.model_train_idx()
            inputs["model_train"] = (
                np.isin(np.arange(len(inputs)), model_train).astype(np.int64) if model_train is not None else -1
            )
        return TaskArrays(
            activations={site: internals[site].astype(np.float32) for site in ("hidden", "embed")},
            inputs=inputs,
            structures={
                "hidden": hidden_structures(fit["fits"], fit["assigned"], fit["keys"], self.p, self.data_revision >= 2),
                "embed": embed_structures(internals["embed"], fit["keys"], self.p, self.data_revision >= 2),
            },
            train_idx=train_idx,
            test_idx=test_idx,
            targets=inputs.c.to_numpy(),
        )

    def forward(self, X: np.ndarray, site: str | None = None, split: Split = "test") -> np.ndarray:
        """Logits [n_split, p] from activations X [n_split, d_site] at ``hidden`` or ``embed``;
        at ``hidden`` the split's residual stream (which skips the MLP) is added back."""
        site = self._site(site)
        m = self.model
        X = torch.from_numpy(np.asarray(X, dtype=np.float64))
        with torch.no_grad():
            if site == "embed":
                logits = m.logits_from_hidden(torch.relu(m.pre_activation(X)), X)
            else:
                resid = torch.from_numpy(self._internals["embed"][self._index(split)])
                logits = m.logits_from_hidden(X, resid)
        return logits.numpy()

    def validate(self) -> dict[str, Any]:
        internals, fit, p = self._internals, self._fit, self.p
        fits, assigned, keys = fit["fits"], fit["assigned"], fit["keys"]
        logits = internals["logits"]
        hidden_var = internals["hidden"].var(axis=0)
        output_weights = (self.model.W_out @ self.model.W_U).numpy()  # [d_mlp, p]
        psi = output_phase(output_weights[assigned], fits.k.to_numpy()[assigned], p)
        return {
            "accuracy": float(np.mean(logits.argmax(axis=1) == inputs_table(p).c.to_numpy())),
            "neurons": len(fits),
            "neurons_alive": int(np.sum(hidden_var > 0)),
            "neurons_fitted": int(assigned.sum()),
            "fraction_fitted": float(assigned.mean()),
            "fitted_variance_share": float(hidden_var[assigned].sum() / hidden_var.sum()),
            "median_pizza_r2_fitted": float(np.median(fits.r2[assigned])),
            "key_frequencies": keys,
            "neurons_per_key": [int(np.sum(assigned & (fits.k == k))) for k in keys],
            **split_figures(p, *self.split()),
            "circularity": diagnostics.circularity(self.model.W_E.numpy(), p),
            "gradient_symmetricity": diagnostics.gradient_symmetricity(self.model),
            "distance_irrelevance": diagnostics.distance_irrelevance(logits, p),
            "logit_scale_correlation": diagnostics.scale_dependence(logits, p, keys),
            "unembed_phase_agreement": float(np.mean(np.cos(psi - 2 * fits.phi.to_numpy()[assigned]))),
            **diagnostics.integration_check(self.model, internals["hidden"], internals["embed"], fits, assigned),
        }


class PizzaTask(ModularAdditionTask):
    """pizza-v1 (constant attention; checkpoint tasks/pizza/pizza.safetensors)."""

    metadata = TaskMetadata(
        id="pizza-v1",
        description=(
            "(a + b) mod 59 by a one-layer transformer with constant attention: the pizza algorithm "
            "(neurons sample |cos(w_k (a+b)/2 + phi)| and the unembedding integrates them)."
        ),
        references=(
            "Zhong, Liu, Tegmark, Andreas 2023, The Clock and the Pizza, arXiv 2306.17844",
            "Yip, Agrawal, Chan, Gross 2024, Modular addition without black-boxes, arXiv 2412.03773",
            "Nanda et al. 2023, Progress measures for grokking via mechanistic interpretability, arXiv 2301.05217",
            "Moisescu-Pareja et al. 2025, The manifolds of modular addition, arXiv 2512.25060",
        ),
        sites=("hidden", "embed"),
        default_site="hidden",
        primary="frequencies",
        main_score="frequencies/subspace_f",
        grid=modular_addition_grid(n_fitted=252, n_keys=3),
        card=HERE / "README.md",
        superseded_by="pizza-v2",
    )


class PizzaV2Task(PizzaTask):
    """pizza-v2: Zhong et al.'s settings exactly (d_model 128, 20000 steps; checkpoint
    tasks/pizza/pizza-v2.safetensors), dictionary-learning data split by unordered pair."""

    metadata = replace(
        PizzaTask.metadata,
        id="pizza-v2",
        description=(
            "(a + b) mod 59 by a one-layer transformer with constant attention, retrained with Zhong "
            "et al.'s settings exactly (d_model 128, 512 ReLU neurons, 20000 steps): the pizza."
        ),
        grid=modular_addition_grid(n_fitted=512, n_keys=5, overcomplete=False),
        superseded_by=None,
    )
    checkpoint = HERE / "pizza-v2.safetensors"
    data_revision = 2
