"""The SAE baselines: each overrides only hooks of the shared loop (activation, loss, settled)."""

from __future__ import annotations

import math
from typing import Any

import torch

from structure_bench.errors import MethodError
from structure_bench.methods import extended_signature
from structure_bench.sae import Batch, Codes, SparseAutoencoder, entries, top_k, values_at

# Per-step multiplicative change of the L1 coefficient, per unit of relative L0 error.
_L1_RATE = 0.05
# The ReLU SAE may stop early only once its running-average L0 is this close to the target (relative).
_L0_MOMENTUM = 0.99
_L0_TOLERANCE = 0.1
# Momentum of the running average that gives BatchTopK its inference threshold.
_THRESHOLD_MOMENTUM = 0.99


class ReluSAE(SparseAutoencoder):
    """ReLU SAE with an L1 penalty weighted by decoder norms, its coefficient tuned to l0_target.

    The coefficient follows a multiplicative controller: it grows while the batch L0 is above
    the target and shrinks while below (Anthropic's April 2024 update for the weighted penalty).

    Leave resampling off (the default): a resampled latent fires on about half the inputs, the
    controller answers with a larger coefficient, and the fit collapses (measured on
    pizza-zhong2023-v1 at 512 latents, L0 3, lr 3e-3: FVU 0.94 with resampling, 0.39 without).
    """

    unit_norm_decoder = False

    def start_fit(self, X: torch.Tensor) -> None:
        self.l0_average_ = 0.0
        self.l1_coeff_ = 1.0 / self.n_latents
        self.k  # noqa: B018  (fail early without a target)

    def loss(self, batch: Batch) -> torch.Tensor:
        codes = batch.codes
        l1 = (codes.values * self.W_dec.norm(dim=1)[codes.cols]).sum() / len(batch.x)
        l0 = len(codes.values) / len(batch.x)
        error = max(-1.0, min(1.0, (l0 - self.k) / self.k))
        total = super().loss(batch) + self.l1_coeff_ * l1
        self.l1_coeff_ *= math.exp(_L1_RATE * error)
        self.l0_average_ = _L0_MOMENTUM * self.l0_average_ + (1 - _L0_MOMENTUM) * l0
        return total

    def settled(self) -> bool:
        # While the coefficient is still moving the L0, the error may stall or rise: not converged.
        return abs(self.l0_average_ - self.k) <= _L0_TOLERANCE * self.k


class TopKSAE(SparseAutoencoder):
    """Top-k SAE (Gao et al. 2024): the k = l0_target largest pre-activations of each sample."""

    def activation(self, pre: torch.Tensor, training: bool) -> torch.Tensor:
        values, cols = top_k(pre, min(self.k, pre.shape[1]))
        return torch.zeros_like(pre).scatter_(1, cols, values.relu())

    def active_entries(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, cols = top_k(pre, min(self.k, pre.shape[1]))
        on = values > 0
        rows = torch.arange(len(pre))[:, None].expand_as(cols)
        if bool(on.all()):  # the usual case, without a masked gather (k = 32, batch 256: 22 against 134 us)
            return rows.flatten(), cols.flatten()
        return rows[on], cols[on]


class BatchTopKSAE(SparseAutoencoder):
    """BatchTopK SAE (Bussmann et al. 2024): the batch's k * batch_size largest pre-activations.

    At inference a latent is on above a threshold: the running average of the smallest
    activation kept in training batches.
    """

    def start_fit(self, X: torch.Tensor) -> None:
        self.threshold_ = 0.0
        self._threshold_seen = False

    def _batch_top(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(rows, cols, values) [kept], row-major: the batch's k * batch_size largest positive entries.

        Chosen among the positive entries only, a few dozen a row (measured at clock-v2 (435, 16)
        late in a fit: 0.40 ms a step against 1.34 ms for a top-k over the whole flattened batch).
        """
        rows, cols = entries(pre > 0)
        values = values_at(pre, rows, cols)
        if len(values) > self.k * len(pre):
            top = values.topk(self.k * len(pre), sorted=False).indices.sort().values
            rows, cols, values = rows.index_select(0, top), cols.index_select(0, top), values.index_select(0, top)
        return rows, cols, values

    def activation(self, pre: torch.Tensor, training: bool) -> torch.Tensor:
        if not training:
            return pre * (pre > self.threshold_)
        rows, cols, values = self._batch_top(pre)
        return torch.zeros_like(pre).index_put_((rows, cols), values)

    def active_entries(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols, values = self._batch_top(pre)
        if len(values):
            momentum = _THRESHOLD_MOMENTUM if self._threshold_seen else 0.0
            self.threshold_ = momentum * self.threshold_ + (1 - momentum) * float(values.min())
            self._threshold_seen = True
        return rows, cols


class MatryoshkaSAE(BatchTopKSAE):
    """Matryoshka BatchTopK SAE (Bussmann et al. 2025; Nabeshima 2024).

    Nested prefixes of the latents must each reconstruct the input on their own, so early latents
    learn general features. ``prefix_fractions``: the prefix sizes as fractions of n_latents.
    """

    def __init__(
        self,
        n_latents: int,
        l0_target: int | None = None,
        seed: int = 0,
        prefix_fractions: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0),
        **training: Any,
    ) -> None:
        """training: the shared loop's parameters (``SparseAutoencoder``), its defaults where absent."""
        super().__init__(n_latents, l0_target, seed, **training)
        self.prefix_fractions = prefix_fractions

    # What the registry reads (parameter tables, checks, records): these parameters, then the loop's.
    __init__.__signature__ = extended_signature(__init__, SparseAutoencoder.__init__)

    def validate_params(self) -> None:
        super().validate_params()
        if not self.prefix_fractions or not all(0 < f <= 1 for f in self.prefix_fractions):
            raise MethodError(f"MatryoshkaSAE: prefix_fractions must be fractions in (0, 1], got {self.prefix_fractions!r}")

    def _prefix_ends(self) -> list[int]:
        ends = {max(1, min(self.n_latents, round(f * self.n_latents))) for f in self.prefix_fractions}
        return sorted(ends | {self.n_latents})

    def loss(self, batch: Batch) -> torch.Tensor:
        codes, ends = batch.codes, self._prefix_ends()
        # One decode of every (prefix group, sample) bag; running sums over the groups give each
        # prefix's reconstruction. Bags are group-major so that each group's reconstructions are
        # one contiguous [batch, d] block; a cumsum over a [batch, groups, d] view, whose backward
        # flips the tensor twice, made a step's forward and loss 8.7 ms against 7.4 (clock-v2 at
        # (435, 16), the mean of three runs of 200 steps on a loaded 2-core machine).
        group = torch.bucketize(codes.cols, torch.tensor(ends), right=True)
        order = torch.argsort(group, stable=True)  # codes are row-major: now (group, sample) order
        bags = Codes(group[order] * len(batch.x) + codes.rows[order], codes.cols[order], codes.values[order])
        grouped = self.decode_codes(bags, len(ends) * len(batch.x), bias=False)
        partial, errors = self.b_dec, []
        for reconstruction in grouped.view(len(ends), len(batch.x), -1).unbind():
            partial = partial + reconstruction
            errors.append(self.reconstruction_error(batch.x, partial))
        return torch.stack(errors).mean() + self.aux_coeff * self.dead_latent_loss(batch)
