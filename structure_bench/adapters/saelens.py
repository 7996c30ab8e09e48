"""Any SAELens SAE architecture as a structure_bench method (``pip install 'structure-bench[saelens]'``).

The architecture is looked up by name in SAELens's own registry of training SAEs
(``sae_lens.registry.get_sae_training_class``: ``standard``, ``gated``, ``topk``, ``abstopk``,
``jumprelu``, ``batchtopk``, ``matryoshka_batchtopk``, ``matching_pursuit``, and any a plugin
registers), built from its own config class, and trained by SAELens's ``SAETrainer``: each step is
``SAETrainer.step`` (the architecture's ``training_forward_pass`` and loss, dead-latent tracking,
gradient clipping, Adam, coefficient warm-up). This module drives those steps itself, because
``SAETrainer.fit`` adds a progress bar, wandb logging and checkpointing that a benchmark unit does
not want; inputs are scaled by SAELens's ``ActivationScaler`` (to mean norm sqrt(d)) and the scale is
folded into the weights afterwards, as ``fit`` does. The trained SAE is then converted to
SAELens's inference SAE (``batchtopk`` becomes a JumpReLU with the learned threshold), which
``encode``/``decode`` use.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from structure_bench.errors import MethodError
from structure_bench.methods.protocol import Method

# Per-step multiplicative change of a sparsity coefficient, per unit of relative L0 error.
_COEFFICIENT_RATE = 0.02


def _import_sae_lens() -> Any:
    try:
        import sae_lens
    except ImportError:
        raise MethodError("the saelens method needs SAELens: pip install 'structure-bench[saelens]'") from None
    return sae_lens


def _batches(X: torch.Tensor, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless batches [batch_size, d] of X [n, d], in a fresh seeded shuffle each epoch."""
    while True:
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X) - batch_size + 1, batch_size):
            yield X[order[start : start + batch_size]]


class SAELensSAE(Method):
    """A SAELens SAE of any registered architecture, trained with SAELens's own training steps.

    Parameters (beyond n_latents, l0_target, seed)
    ----------
    architecture : SAELens training architecture name, e.g. "topk", "standard", "jumprelu",
        "gated", "batchtopk".
    lr : Adam learning rate.
    batch_size : samples per step.
    n_steps : training steps.
    config : extra fields of the architecture's SAELens training config, e.g.
        {"jumprelu_sparsity_loss_mode": "tanh"} or {"matryoshka_widths": [8, 32]}.

    l0_target: architectures whose config has ``k`` (topk, abstopk, batchtopk,
    matryoshka_batchtopk) use it as k. The others' sparsity coefficients (``l1`` for standard
    and gated, ``l0`` for jumprelu) are tuned to it during training: after each step every
    coefficient is multiplied by exp(0.02 * clip((L0 - l0_target) / l0_target, -1, 1)), L0 being
    the step's mean number of active latents. An architecture with neither (matching_pursuit)
    ignores l0_target; set its stopping rule through ``config``.

    Fitted attributes
    -----------------
    sae_ : the SAELens inference SAE. decoder_ : [n_latents, d] its W_dec. decoder_bias_ : [d] its b_dec.
    """

    def __init__(
        self,
        n_latents: int,
        l0_target: int | None = None,
        seed: int = 0,
        architecture: str = "topk",
        lr: float = 3e-3,
        batch_size: int = 256,
        n_steps: int = 3000,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed)
        self.architecture = architecture
        self.lr = lr
        self.batch_size = batch_size
        self.n_steps = n_steps
        self.config = config

    def validate_params(self) -> None:
        """The architecture and config fields against the installed SAELens (which it needs)."""
        _import_sae_lens()
        self._config()

    def _training_sae(self, d: int) -> tuple[Any, bool]:
        """A fresh SAELens training SAE for inputs of width d, and whether its k is l0_target."""
        sae_class, config_class, values, uses_k = self._config()
        return sae_class(config_class(d_in=d, d_sae=self.n_latents, **values)), uses_k

    def _config(self) -> tuple[type, type, dict[str, Any], bool]:
        """(training SAE class, its config class, the config's values but d_in and d_sae, whether k
        is l0_target) for this architecture; a one-line MethodError for what SAELens lacks."""
        from sae_lens.registry import SAE_TRAINING_CLASS_REGISTRY

        if self.architecture not in SAE_TRAINING_CLASS_REGISTRY:
            known = ", ".join(sorted(SAE_TRAINING_CLASS_REGISTRY))
            raise MethodError(f"unknown SAELens architecture {self.architecture!r} (known: {known})")
        sae_class, config_class = SAE_TRAINING_CLASS_REGISTRY[self.architecture]
        fields = {f.name for f in dataclasses.fields(config_class)}
        values: dict[str, Any] = {"normalize_activations": "expected_average_only_in"}
        uses_k = "k" in fields
        if uses_k or self.l0_target is not None:
            if self.l0_target is None or int(self.l0_target) < 1:
                raise MethodError(f"SAELens {self.architecture} needs l0_target >= 1, got {self.l0_target!r}")
        if uses_k:
            values["k"] = int(self.l0_target)
        values.update(self.config or {})
        unknown = set(values) - fields
        if unknown:
            raise MethodError(f"SAELens {self.architecture} config has no field(s) {', '.join(sorted(unknown))}")
        return sae_class, config_class, values, uses_k

    def fit(self, X: np.ndarray) -> SAELensSAE:
        """Train on X [n_samples, d]; returns self."""
        _import_sae_lens()
        from sae_lens.config import SAETrainerConfig
        from sae_lens.training.sae_trainer import SAETrainer

        data = torch.from_numpy(np.asarray(X, dtype=np.float32))
        if data.ndim != 2 or len(data) == 0:
            raise MethodError(f"SAELensSAE.fit needs a non-empty [n_samples, d] array, got {tuple(data.shape)}")
        batch_size = min(self.batch_size, len(data))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            sae, uses_k = self._training_sae(data.shape[1])
            batches = _batches(data, batch_size, torch.Generator().manual_seed(self.seed))
            trainer = SAETrainer(
                cfg=SAETrainerConfig(
                    total_training_samples=self.n_steps * batch_size,
                    train_batch_size_samples=batch_size,
                    lr=self.lr,
                    lr_end=self.lr,
                ),
                sae=sae,
                data_provider=batches,
            )
            # ActivationScaler.estimate_scaling_factor's rule, over all of X and without its progress bar.
            trainer.activation_scaler.scaling_factor = data.shape[1] ** 0.5 / float(data.norm(dim=1).mean())
            for _ in range(self.n_steps):
                output = trainer.step(next(batches))
                trainer.n_training_steps += 1
                if not uses_k and self.l0_target is not None:
                    self._tune_coefficients(trainer, output.feature_acts)
        sae.fold_activation_norm_scaling_factor(trainer.activation_scaler.scaling_factor)
        self.sae_ = self._inference_sae(sae)
        self.decoder_ = self.sae_.W_dec.detach().numpy().copy()
        self.decoder_bias_ = self.sae_.b_dec.detach().numpy().copy()
        return self

    def _tune_coefficients(self, trainer: Any, codes: torch.Tensor) -> None:
        """Move every sparsity coefficient toward l0_target from one step's codes [batch, n_latents]."""
        l0 = float((codes != 0).sum(dim=1).float().mean())
        error = max(-1.0, min(1.0, (l0 - self.l0_target) / self.l0_target))
        for scheduler in trainer.coefficient_schedulers.values():
            scheduler.final_value *= math.exp(_COEFFICIENT_RATE * error)

    @staticmethod
    def _inference_sae(training_sae: Any) -> Any:
        """SAELens's inference SAE for a trained training SAE, as its save-and-load would give."""
        from sae_lens import SAEConfig
        from sae_lens.registry import get_sae_class

        state = training_sae.state_dict()
        training_sae.process_state_dict_for_saving_inference(state)
        config = SAEConfig.from_dict(training_sae.cfg.get_inference_sae_cfg_dict())
        sae = get_sae_class(config.architecture())[0](config)
        sae.process_state_dict_for_loading(state)
        sae.load_state_dict(state)
        return sae.eval()

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes Z [n_samples, n_latents] for X [n_samples, d]."""
        with torch.no_grad():
            return self.sae_.encode(torch.from_numpy(np.asarray(X, dtype=np.float32))).numpy()

    def decode(self, Z: np.ndarray) -> np.ndarray:
        """Reconstructions X_hat [n_samples, d] from codes Z [n_samples, n_latents]."""
        with torch.no_grad():
            return self.sae_.decode(torch.from_numpy(np.asarray(Z, dtype=np.float32))).numpy()
