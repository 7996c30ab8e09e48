"""Sparse autoencoders: one shared CPU training loop; a variant overrides only its hooks.

A variant overrides ``activation(pre, training)`` (which latents are on) and/or
``loss(batch)``. Every activation here is a *gate*: a code equals its pre-activation where the
latent is on and 0 elsewhere, so the gate itself carries no gradient. The loop exploits this:
it picks the active entries without autograd and recomputes only those pre-activations with
autograd, so a top-k step costs one dense matmul (the encoder's forward) instead of four.

Data are divided by one scalar (``scale_``) so that the mean squared norm of a centred sample is 1;
losses are then fractions of variance, and the hyperparameters do not depend on a task's units.
"""

from __future__ import annotations

import gc
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from structure_bench.errors import MethodError
from structure_bench.methods.protocol import Method
from structure_bench.numerics import flushed_subnormals

# The stopping rule reads the held-out reconstruction error after every window of this many steps.
_WINDOW = 100
# ... and holds when the last this many windows did not improve on the best before them; with
# resample=True, dead latents are resampled once every this many windows, so a resampling has that
# long to pay off.
_PATIENCE = 3
# The rule may hold only after this many windows.
_MIN_WINDOWS = 4
# Dead latents are resampled towards the worst reconstructed of this many random training samples.
_RESAMPLE_POOL = 4096
# Fits estimated to take longer than this many multiply-adds show a progress bar (on a terminal).
_PROGRESS_WORK = 2e11
# Use sparse (gathered) training when at most this share of the codes is non-zero.
_SPARSE_DENSITY = 0.125
# Row-wise decoder updates work on chunks of about this many bytes (a core's L2 cache).
_CHUNK_BYTES = 2**19
# Dense maps without autograd run oneDNN's kernel from this many weights (``linear``).
_ONEDNN_MIN_WEIGHTS = 2**14


@dataclass
class Codes:
    """The non-zero entries of a batch of codes, in row-major order.

    rows, cols : [nnz] sample and latent index of each entry (rows non-decreasing).
    values : [nnz] the codes, differentiable with respect to the encoder.
    runs : the entries grouped by latent (see ``latent_runs``), computed on first use.
    """

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    runs: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)

    def latent_runs(self, n_latents: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(order [nnz], starts [n_latents]): the entries stably sorted by latent; where each latent's run starts."""
        if self.runs is None:
            self.runs = _latent_runs(self.cols, n_latents)
        return self.runs


@dataclass
class Batch:
    """One training step's forward pass, in scaled units.

    x : [batch, d] inputs. pre : [batch, n_latents] pre-activations (no gradient).
    codes : the active codes. x_hat : [batch, d] reconstructions.
    aux_hat : [batch, d] the dead latents' decode (no bias) for the auxiliary loss; None when
        no latent is dead or the loss is off.
    """

    x: torch.Tensor
    pre: torch.Tensor
    codes: Codes
    x_hat: torch.Tensor
    aux_hat: torch.Tensor | None = None


@contextmanager
def _one_thread() -> Iterator[None]:
    """Train on one thread: a step is many small ops, and on a shared machine a second thread stalls
    each of them (measured: 2 threads ran 2-4x slower on a loaded 2-core machine). Parallelise
    across fits instead (``structure-bench run --jobs``)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector during training. A step allocates hundreds of Python
    objects (tensors, autograd nodes, codes) that reference counting frees (the loop makes no
    cycles: none found after 500 steps of any variant), but the allocations trigger collections
    whose older generations walk every object of the process, torch's modules included (measured:
    312 collections, 0.32 s, in 1000 steps of top-k on the authors' pizza at (256, 3), 4.2 s)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _latent_runs(cols: torch.Tensor, n_latents: int) -> tuple[torch.Tensor, torch.Tensor]:
    if n_latents <= 2**15:
        # numpy's stable sort of 16-bit integers is a radix sort: [8192] latent indices (a top-k
        # step at k = 32, batch 256) in 22 us against torch.argsort's 314 us; the same order.
        order = torch.from_numpy(np.argsort(cols.numpy().astype(np.int16), kind="stable"))
    else:
        order = torch.argsort(cols, stable=True)
    return order, _starts(cols, n_latents)


def top_k(pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, cols) [batch, k]: each row's k largest entries of pre [batch, n], in no set order.

    ``pre.topk(k, dim=1, sorted=False)``'s entries (the same set but at ties), faster where torch
    is slow. torch's CPU top-k keeps a partial sort while k * 64 <= n and selects over the whole
    row beyond that; numpy's introselect (``argpartition``) does better there and at k >= 12.
    Measured per [256, n] batch, one thread: n = 512, k = 12: 913 -> 328 us; n = 2048, k = 32:
    1879 -> 784 us; but n = 2048, k = 3: 393 against 752 us, and at n = 64 torch wins at every k.
    """
    n = pre.shape[1]
    if n < 256 or (k * 64 <= n and k < 12):
        return pre.topk(k, dim=1, sorted=False)
    return top_k_by_partition(pre, k)


def top_k_by_partition(pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``top_k``'s numpy route: (values, cols) [batch, k] by introselect (``np.argpartition``),
    the values gathered from pre [batch, n] so that their gradient flows."""
    n = pre.shape[1]
    cols = torch.from_numpy(np.argpartition(pre.detach().numpy(), n - k, axis=1)[:, n - k :])
    return pre.gather(1, cols), cols


def _starts(index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """[n_groups] where each group's run starts once the index [nnz] is sorted (empty groups included)."""
    counts = torch.bincount(index, minlength=n_groups)
    return counts.cumsum(0) - counts


def _sum_by_latent(
    rows: torch.Tensor, runs: tuple[torch.Tensor, torch.Tensor], weights: torch.Tensor, source: torch.Tensor
) -> torch.Tensor:
    """[n_latents, d]: row j sums weights[e] * source[rows[e]] over the entries e of latent j.

    rows, weights : [nnz]. runs : the entries' ``Codes.latent_runs``. source : [n_rows, d].
    One embedding_bag over the entries in latent order writes each output row once, where a
    scatter-add zero-fills the output and adds into it (measured on a top-k step with 2048
    latents: 1.1 ms against 3-4 ms).
    """
    order, starts = runs
    return F.embedding_bag(rows[order], source, starts, mode="sum", per_sample_weights=weights[order])


class _SelectedPreactivations(torch.autograd.Function):
    """Entries (rows, cols) of pre = (x - b_dec) @ W_enc.T + b_enc, with a backward that touches only them.

    x : [batch, d] (no gradient). pre : [batch, n_latents], already computed. rows, cols : [nnz].
    runs : the entries' ``Codes.latent_runs``.
    The gradient reaches b_dec through x - b_dec: -(sum of the entries' gradients per latent) @ W_enc.
    """

    @staticmethod
    def forward(ctx, x, W_enc, b_enc, b_dec, pre, rows, cols, runs):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x - b_dec, W_enc, rows, cols)
        ctx.runs = runs
        return values_at(pre, rows, cols)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        xc, W_enc, rows, cols = ctx.saved_tensors
        grad_W = _sum_by_latent(rows, ctx.runs, grad, xc)
        grad_b = torch.bincount(cols, weights=grad, minlength=W_enc.shape[0]).to(grad.dtype)
        return None, grad_W, grad_b, -(grad_b @ W_enc), None, None, None, None


class _WithDecoderGradient(torch.autograd.Function):
    """Identity on reconstructions [n_rows, d] decoded with a detached decoder; its backward adds
    the decoder's gradient [n_latents, d] (``_sum_by_latent``), and embedding_bag's own backward
    gives the codes theirs."""

    @staticmethod
    def forward(ctx, x_hat, W_dec, values, rows, runs):  # noqa: ANN001, ANN205
        ctx.save_for_backward(values, rows)
        ctx.runs = runs
        return x_hat

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        values, rows = ctx.saved_tensors
        return grad, _sum_by_latent(rows, ctx.runs, values, grad), None, None, None


def _onednn_linear() -> object | None:
    """torch's oneDNN fp32 linear (the op torch.compile's CPU backend calls) where this build and
    CPU run it, else None."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
        op(torch.ones(1, 1), torch.ones(1, 1), torch.zeros(1), "none", [], "")
    except (AttributeError, RuntimeError):
        return None
    return op


_ONEDNN_LINEAR = _onednn_linear()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """[n, out]: x @ weight.T + bias for x [n, in], weight [out, in] (any strides), bias [out].

    Where autograd records through an input, ``torch.addmm``. Otherwise oneDNN's fp32 kernel where
    torch has it: torch's own fp32 addmm runs MKL, which on this AMD EPYC stays off AVX-512 (one
    thread: the encoder's [256, 512] x [512, 2048] in 2.3 against 5.2 ms; 1277 codes decoded from
    2048 latents in 12 against 26 ms). The two differ by rounding (fp32 accumulation both). Below
    ``_ONEDNN_MIN_WEIGHTS`` weights addmm too: there oneDNN's call costs more than it saves (a top-k
    step on tms-v1, 10 -> 40 latents: 0.74 against 0.68 ms).
    """
    recorded = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or bias.requires_grad)
    if recorded or _ONEDNN_LINEAR is None or weight.numel() < _ONEDNN_MIN_WEIGHTS:
        return torch.addmm(bias, x, weight.T)
    return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")


def entries(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) [nnz]: the non-zero (True) entries of codes [n, m], bool or numeric, row-major.

    ``codes.nonzero(as_tuple=True)``, through numpy (its comparison and flatnonzero): a [256, 1800]
    mask with 65536 entries set (the auxiliary loss's codes early in a fit at 2048 latents) in 0.34
    against 0.90 ms; top-k codes [1277, 2048] at k = 32 in 1.1 against 2.9 ms.
    """
    array = codes.numpy()
    flat = torch.from_numpy(np.flatnonzero(array if array.dtype == np.bool_ else array != 0))
    rows = torch.div(flat, codes.shape[1], rounding_mode="floor")
    return rows, flat - rows * codes.shape[1]


def values_at(matrix: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """[nnz] ``matrix[rows, cols]`` for matrix [n, m] and rows, cols [nnz], as one index_select on
    the flat matrix (65536 entries of a [256, 2048] matrix: 89 against 264 us)."""
    return matrix.flatten().index_select(0, rows * matrix.shape[1] + cols)


def _largest_positive(pre: torch.Tensor, columns: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) [nnz], row-major: each row's k largest positive entries of pre among ``columns``
    (entries tied with the k-th largest kept too: a choice among ties would depend on the top-k
    algorithm).

    pre : [batch, n_latents]. columns : [n_allowed] increasing column indices.
    Works on a copy of those columns only, which late in a fit are a few of the latents (a random
    [256, 2048] batch: 0.13 against 1.6 ms masking the whole of it, with 5% of the columns allowed).
    Late in a fit, dead latents rarely have more than k positive pre-activations, so most rows keep
    all of them and only the rest pay for a selection (measured: under 1% of rows on the default
    suite). Early, every row may: its k-th largest value by numpy's introselect (a [256, 1800] batch
    at k = 256, the authors' pizza at 2048 latents: 1.2 against 5.9 ms with torch's top-k).
    """
    values = pre.index_select(1, columns).numpy()
    candidates = values > 0
    crowded = np.flatnonzero(np.count_nonzero(candidates, axis=1) > k)
    if len(crowded):
        n = values.shape[1]
        if len(crowded) == len(values):
            candidates = values >= np.partition(values, n - k, axis=1)[:, n - k, None]
        else:
            some = values[crowded]
            candidates[crowded] = some >= np.partition(some, n - k, axis=1)[:, n - k, None]
    rows, cols = entries(torch.from_numpy(candidates))
    return rows, columns.index_select(0, cols)


class SparseAutoencoder(Method):
    """Base of the SAE variants: a ReLU SAE trained by the shared loop (override the hooks).

    A share ``validation_fraction`` of the training samples (drawn by the seed) is held out and
    never trained on; after every window of ``_WINDOW`` steps the loop measures their reconstruction
    error (a share of variance, with the inference encoder). Training runs in two phases. While it
    learns, the learning rate is constant (and, with ``resample=True``, every ``_PATIENCE`` windows,
    latents that have not fired for ``dead_after`` samples are resampled towards badly reconstructed
    samples). It stops
    learning when the stopping rule holds: the best held-out error of the last ``_PATIENCE`` windows
    is less than ``tol`` (relative) below the best before them, at least ``_MIN_WINDOWS`` windows in,
    counting only the windows since ``settled`` last said no (a ReLU SAE's error rises while its
    L1 coefficient pushes the L0 down to the target; measured against windows before that, it
    would stall at once). Then, after ``stretch`` times the steps the rule took in all (at the first
    window from there; by default at once), it anneals: the learning rate falls linearly to 0 over a
    further ``anneal / (1 - anneal)`` of the steps taken (the anneal is that share of the run: by
    default a ninth, the last tenth) and training stops. When
    the rule has not held by the time only ``anneal`` of ``max_steps`` is left, the anneal starts
    anyway and the fit reports ``converged_ = False``. With ``tol < 0`` the rule never holds: a run
    of exactly ``max_steps``. Without held-out samples (``validation_fraction=0``) the rule reads the
    training batches' mean error over each window instead.

    Parameters (beyond n_latents, l0_target, seed)
    ----------
    lr : Adam learning rate while learning. The default 1e-2 was chosen by measurement (README,
        Training and dead latents): against 3e-3 it reaches higher main scores on the modular tasks
        in about as many steps, and 3e-2 diverges in longer runs.
    batch_size : samples per step.
    max_steps : cap on the steps of one fit (anneal included).
    tol : relative improvement of the best held-out error below which the rule holds. The error,
        not the loss: reviving dead latents raises the auxiliary loss while the fit improves.
    stretch : train this many times as long as the rule says before the anneal (>= 1). At 4 a fit
        is the convergence benchmark's 4x-longer run in one pass (README, Convergence): the rule
        stops the wide modular cells while their dictionaries still change.
    anneal : share of a run, at its end, over which the learning rate falls linearly to 0 (0: none).
        The default 0.1 was chosen by measurement (README, Training and dead latents): against 0.2,
        on the default suite's 144 SAE cells, 11% fewer steps and main scores within 0.001-0.003
        (median) of 0.2's, 140 cells within their seeds' range.
    validation_fraction : share of the training samples held out for the stopping rule.
    aux_coeff : weight of the auxiliary loss that revives dead latents (0 turns it off).
    dead_after : a latent is dead when it has not fired on this many training samples.
    resample : resample dead latents while learning (Bricken et al. 2023). Off by default: the
        auxiliary loss alone (Gao et al. 2024) kept the fits nearer their 4x-longer runs, and with
        lr 1e-2 resampling collapses them (README, Training and dead latents).
    progress : show a progress bar; None shows one on long fits when stderr is a terminal.

    Fitted attributes
    -----------------
    decoder_ : [n_latents, d]. decoder_bias_ : [d]. scale_ : the data's scale.
    n_steps_ : steps taken. converged_ : whether the stopping rule held before the cap.
    error_history_ : held-out reconstruction error (share of variance) after each window.
    dead_fraction_ : share of latents dead at the end of training. n_resampled_ : latents resampled.
    training_ : ``{"steps", "converged", "final_loss", "dead_fraction"}`` for the record.
    """

    # Keep decoder rows at unit norm (projecting out the radial gradient) during training.
    unit_norm_decoder: ClassVar[bool] = True
    nonnegative_codes: ClassVar[bool] = True  # ReLU / top-k of ReLU codes

    def __init__(
        self,
        n_latents: int,
        l0_target: int | None = None,
        seed: int = 0,
        lr: float = 1e-2,
        batch_size: int = 256,
        max_steps: int = 20000,
        tol: float = 2e-3,
        stretch: float = 1.0,
        anneal: float = 0.1,
        aux_coeff: float = 1 / 32,
        dead_after: int = 4096,
        resample: bool = False,
        validation_fraction: float = 0.1,
        progress: bool | None = None,
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed)
        self.lr = lr
        self.batch_size = batch_size
        self.max_steps = max_steps
        self.tol = tol
        self.stretch = stretch
        self.anneal = anneal
        self.aux_coeff = aux_coeff
        self.dead_after = dead_after
        self.resample = resample
        self.validation_fraction = validation_fraction
        self.progress = progress

    # -- hooks ----------------------------------------------------------------------------
    def activation(self, pre: torch.Tensor, training: bool) -> torch.Tensor:
        """Codes [batch, n_latents] from pre-activations [batch, n_latents]: a gate (see module doc)."""
        return torch.relu(pre)

    def active_entries(self, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, cols) [nnz] of the latents on in training, rows non-decreasing; pre [batch, n_latents].

        Defaults to the non-zeros of ``activation``; a variant may override it with a faster route.
        """
        return entries(self.activation(pre, training=True))

    def loss(self, batch: Batch) -> torch.Tensor:
        """Training loss of one batch: reconstruction error plus the dead-latent auxiliary loss."""
        return self.reconstruction_error(batch.x, batch.x_hat) + self.aux_coeff * self.dead_latent_loss(batch)

    def start_fit(self, X: torch.Tensor) -> None:
        """Called once before training on the scaled data X [n_samples, d] (for variant state)."""

    def settled(self) -> bool:
        """Whether the stopping rule may stop now; a variant still tuning itself says no, and the
        rule then compares only the windows after this one."""
        return True

    # -- helpers for the hooks ------------------------------------------------------------
    @property
    def k(self) -> int:
        """l0_target as an integer k, required by the sparse variants."""
        if self.l0_target is None or int(self.l0_target) < 1:
            raise MethodError(f"{type(self).__name__} needs l0_target >= 1, got {self.l0_target!r}")
        return int(self.l0_target)

    @staticmethod
    def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Mean over the batch of the squared error summed over dimensions ([batch, d] inputs)."""
        return (x_hat - x).pow(2).sum(dim=1).mean()

    def select(self, x: torch.Tensor, pre: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> Codes:
        """Codes at entries (rows, cols) of pre [batch, n_latents], differentiable; x [batch, d]."""
        runs = _latent_runs(cols, self.n_latents)
        values = _SelectedPreactivations.apply(x, self.W_enc, self.b_enc, self.b_dec, pre, rows, cols, runs)
        return Codes(rows, cols, values, runs)

    def decode_codes(self, codes: Codes, n_rows: int, bias: bool = True) -> torch.Tensor:
        """Reconstructions [n_rows, d] from sparse codes (with or without the decoder bias); the
        decoder's gradient is wired in only where autograd records."""
        out = F.embedding_bag(
            codes.cols, self.W_dec.detach(), _starts(codes.rows, n_rows), mode="sum", per_sample_weights=codes.values
        )
        if torch.is_grad_enabled():
            runs = codes.latent_runs(self.n_latents)
            out = _WithDecoderGradient.apply(out, self.W_dec, codes.values.detach(), codes.rows, runs)
        return out + self.b_dec if bias else out

    def dead_latent_loss(self, batch: Batch) -> torch.Tensor:
        """How badly the dead latents' top activations reconstruct the residual (Gao et al. 2024).

        Each sample uses its k_aux = d / 2 largest positive pre-activations among dead latents
        (``batch.aux_hat``). Normalised by the residual's variance; 0 when no latent is dead.
        """
        if batch.aux_hat is None:
            return batch.x.new_zeros(())
        residual = (batch.x - batch.x_hat).detach()
        spread = (residual - residual.mean(dim=0)).pow(2).sum(dim=1).mean().clamp_min(1e-12)
        return self.reconstruction_error(residual, batch.aux_hat) / spread

    # -- the shared loop ------------------------------------------------------------------
    def validate_params(self) -> None:
        """Raise MethodError naming the first parameter out of its range."""
        problems = {
            "max_steps": (self.max_steps >= 1, ">= 1"),
            "batch_size": (self.batch_size >= 1, ">= 1"),
            "lr": (self.lr > 0, "> 0"),
            "stretch": (self.stretch >= 1, ">= 1"),
            "anneal": (0 <= self.anneal < 1, "in [0, 1)"),
            "aux_coeff": (self.aux_coeff >= 0, ">= 0"),
            "dead_after": (self.dead_after >= 0, ">= 0"),
            "validation_fraction": (0 <= self.validation_fraction < 1, "in [0, 1)"),
        }
        for name, (ok, bound) in problems.items():
            if not ok:
                raise MethodError(f"{type(self).__name__}: {name} must be {bound}, got {getattr(self, name)!r}")

    def fit(self, X: np.ndarray) -> SparseAutoencoder:
        """Train on X [n_samples, d]; returns self."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) == 0:
            raise MethodError(f"{type(self).__name__}.fit needs a non-empty [n_samples, d] array, got {X.shape}")
        self.validate_params()
        generator = torch.Generator().manual_seed(int(self.seed))
        data = torch.from_numpy(X)
        spread = float((data - data.mean(dim=0)).square().sum(dim=1).mean().sqrt())  # square: pow(2)'s bits, 4x faster here
        self.scale_ = spread if spread > 0 else 1.0
        shuffled = data.index_select(0, torch.randperm(len(data), generator=generator)).div_(self.scale_)
        n_held = min(round(self.validation_fraction * len(data)), len(data) - 1)
        held, data = shuffled[:n_held], shuffled[n_held:]
        held_spread = (held - held.mean(dim=0)).square().sum(dim=1).mean().clamp_min(1e-12) if n_held else None
        self._initialise(data, generator)
        self.start_fit(data)
        parameters = [self.W_enc, self.b_enc, self.W_dec, self.b_dec]
        optimiser = torch.optim.Adam(parameters, lr=self.lr, fused=True)
        self.error_history_: list[float] = []
        self.n_resampled_ = 0
        self.converged_ = False
        window: list[float] = []  # the training batches' errors, read only when nothing is held out
        in_window, anneal_start, end, rule_from, learn_until = 0, None, self.max_steps, 0, None
        batch_size = min(self.batch_size, len(data))
        order = torch.randperm(len(data), generator=generator)
        position = 0
        # Adam's moments of latents without a gradient decay through the subnormal range: flushed.
        with self._progress_bar(data.shape[1]) as bar, _one_thread(), _without_cyclic_gc(), flushed_subnormals():
            for step in range(1, self.max_steps + 1):
                if anneal_start is None and step > (1 - self.anneal) * self.max_steps:
                    anneal_start = step - 1  # the cap: anneal over the steps left, not converged
                if anneal_start is not None:
                    for group in optimiser.param_groups:
                        group["lr"] = self.lr * (end - step + 1) / (end - anneal_start)
                if position + batch_size > len(data):
                    order, position = torch.randperm(len(data), generator=generator), 0
                batch = self._forward(data.index_select(0, order[position : position + batch_size]))
                position += batch_size
                loss = self.loss(batch)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                self._constrain_gradient()
                optimiser.step()
                self._constrain_decoder()
                self._track_firing(batch)
                if not len(held):
                    with torch.no_grad():
                        window.append(self.reconstruction_error(batch.x, batch.x_hat).item())
                in_window += 1
                bar.update()
                if step >= end:
                    break
                if in_window == _WINDOW:
                    self.error_history_.append(self._window_error(held, held_spread, window))
                    window, in_window = [], 0
                    bar.set_postfix(error=f"{self.error_history_[-1]:.4g}", refresh=False)
                    if anneal_start is not None:
                        continue
                    if learn_until is None:  # the rule has not held yet
                        settled = self.settled()
                        if not settled:
                            rule_from = len(self.error_history_)  # compare only windows from here on
                        if settled and self._stalled(self.error_history_[rule_from:]):
                            learn_until, self.converged_ = self.stretch * step, True
                    if learn_until is not None and step >= learn_until:
                        anneal_start = step
                        end = min(self.max_steps, step + math.ceil(step * self.anneal / (1 - self.anneal)))
                        if step >= end:
                            break  # no anneal
                    elif self.resample and len(self.error_history_) % _PATIENCE == 0:
                        self._resample_dead(data, optimiser, generator)
        self.n_steps_ = step
        self.dead_fraction_ = float(self._dead().float().mean())
        self.decoder_ = self.W_dec.detach().numpy().copy()
        self.decoder_bias_ = (self.b_dec.detach() * self.scale_).numpy()
        final = self._window_error(held, held_spread, window) if len(held) or window else self.error_history_[-1]
        self.training_ = {
            "steps": step, "converged": self.converged_, "final_loss": final, "dead_fraction": self.dead_fraction_
        }
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes Z [n_samples, n_latents] (non-negative) for X [n_samples, d]."""
        X = torch.from_numpy(np.asarray(X, dtype=np.float32)) / self.scale_
        with torch.no_grad():
            chunks = [
                self.activation(self._preactivations(chunk), training=False) for chunk in X.split(4096)
            ]
        return (torch.cat(chunks) * self.scale_).numpy() if chunks else np.zeros((0, self.n_latents), np.float32)

    # -- internals ------------------------------------------------------------------------
    def _initialise(self, data: torch.Tensor, generator: torch.Generator) -> None:
        # Tied initialisation: random unit decoder rows, encoder = decoder transpose.
        d = data.shape[1]
        W_dec = torch.randn(self.n_latents, d, generator=generator)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        self.W_dec = W_dec.requires_grad_()
        self.W_enc = W_dec.detach().clone().requires_grad_()
        self.b_enc = torch.zeros(self.n_latents, requires_grad=True)
        self.b_dec = data.mean(dim=0).requires_grad_()
        self._samples_since_fired = torch.zeros(self.n_latents, dtype=torch.long)

    def _preactivations(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x - self.b_dec, self.W_enc, self.b_enc)

    def _dead_entries(self, pre: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(rows, cols) [nnz] of the auxiliary loss's codes: each sample's k_aux = d / 2 largest
        positive pre-activations [batch, n_latents] among dead latents; None when none is dead or
        the loss is off."""
        dead = self._dead().nonzero().flatten()
        if len(dead) == 0 or self.aux_coeff == 0:
            return None
        return _largest_positive(pre, dead, min(len(dead), max(1, d // 2)))

    def _forward(self, x: torch.Tensor) -> Batch:
        n = len(x)
        with torch.no_grad():
            pre = self._preactivations(x)
            rows, cols = self.active_entries(pre)
            dead = self._dead_entries(pre, x.shape[1])
        if len(rows) <= _SPARSE_DENSITY * pre.numel():
            if dead is None:
                codes = self.select(x, pre, rows, cols)
                return Batch(x, pre, codes, self.decode_codes(codes, n))
            # The active and the dead latents' codes in one selection and one decode (the dead
            # ones' bags after the batch's), so each weight gets one gradient pass, not two
            # zero-filled [n_latents, d] ones: on the authors' pizza at (2048, 3), where a step has
            # a few dozen dead-latent codes, the auxiliary loss's cost 3.0 -> 1.1 ms a step.
            both = self.select(x, pre, torch.cat([rows, dead[0]]), torch.cat([cols, dead[1]]))
            bags = Codes(torch.cat([rows, dead[0] + n]), both.cols, both.values, both.runs)
            # Split, not sliced: a slice's backward zero-fills a [2n, d] gradient for each half
            # (0.33 ms of a 4.2 ms step at the authors' pizza (256, 3)); split's concatenates once.
            x_hat, aux_hat = self.decode_codes(bags, 2 * n, bias=False).split(n)
            codes = Codes(rows, cols, both.values[: len(rows)])
            return Batch(x, pre, codes, x_hat + self.b_dec, aux_hat)
        # Dense codes (e.g. early ReLU training): one masked matmul is cheaper than gathering.
        gate = torch.zeros_like(pre)
        gate[rows, cols] = 1.0
        z = self._preactivations(x) * gate
        aux_hat = None if dead is None else self.decode_codes(self.select(x, pre, *dead), n, bias=False)
        return Batch(x, pre, Codes(rows, cols, z[rows, cols]), z @ self.W_dec + self.b_dec, aux_hat)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstructions [n, d] of dense codes [n, n_latents], without autograd: the non-zero codes'
        decoder rows summed where at most ``_SPARSE_DENSITY`` are non-zero, else a matmul (the held-out
        error of a top-k fit at 2048 latents, k = 32, 1277 samples: 2.6 against 26 ms)."""
        rows, cols = entries(codes)
        if len(rows) > _SPARSE_DENSITY * codes.numel():
            return linear(codes, self.W_dec.T, self.b_dec)
        return self.decode_codes(Codes(rows, cols, values_at(codes, rows, cols)), len(codes))

    def _decoder_chunks(self) -> int:
        # Rows per chunk for the decoder's row-wise updates: each chunk's two passes stay in cache
        # (measured: 3.5 -> 2.6 ms a step for 2048 x 512, where the whole matrix falls out of cache).
        return max(1, _CHUNK_BYTES // (4 * self.W_dec.shape[1]))

    def _constrain_gradient(self) -> None:
        # Remove the gradient component parallel to each (unit) decoder row: it only changes the norm.
        if self.unit_norm_decoder and self.W_dec.grad is not None:
            with torch.no_grad():
                rows = self._decoder_chunks()
                for grad, W in zip(self.W_dec.grad.split(rows), self.W_dec.split(rows), strict=True):
                    grad.addcmul_(torch.linalg.vecdot(grad, W)[:, None], W, value=-1.0)

    def _constrain_decoder(self) -> None:
        if self.unit_norm_decoder:
            with torch.no_grad():
                for W in self.W_dec.split(self._decoder_chunks()):
                    W /= W.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def _resample_dead(self, data: torch.Tensor, optimiser: torch.optim.Optimizer, generator: torch.Generator) -> None:
        """Point each dead latent at the residual of a training sample drawn with probability
        proportional to its squared error (Anthropic's resampling, Bricken et al. 2023), with an
        encoder row of the live rows' mean norm, a zero bias and fresh Adam moments."""
        alive = ~self._dead()
        dead = (~alive).nonzero().flatten()
        if len(dead) == 0:
            return
        with torch.no_grad():
            pool = data.index_select(0, torch.randint(len(data), (min(len(data), _RESAMPLE_POOL),), generator=generator))
            codes = self.activation(self._preactivations(pool), training=True)
            residual = pool - self._decode(codes)
            error = residual.pow(2).sum(dim=1)
            if float(error.sum()) <= 0:
                return
            chosen = torch.multinomial(error, len(dead), replacement=True, generator=generator)
            directions = residual[chosen] / residual[chosen].norm(dim=1, keepdim=True).clamp_min(1e-12)
            norm = self.W_enc[alive].norm(dim=1).mean() if alive.any() else torch.tensor(1.0)
            self.W_dec[dead] = directions * (self.W_dec[alive].norm(dim=1).mean() if alive.any() else 1.0)
            self.W_enc[dead] = directions * norm
            self.b_enc[dead] = 0.0
            for parameter in (self.W_enc, self.b_enc, self.W_dec):
                for moment in ("exp_avg", "exp_avg_sq"):
                    if moment in optimiser.state.get(parameter, {}):
                        optimiser.state[parameter][moment][dead] = 0.0
        self._samples_since_fired[dead] = 0
        self.n_resampled_ += len(dead)

    def _dead(self) -> torch.Tensor:
        """[n_latents] bool: the latents that have not fired for ``dead_after`` training samples."""
        return self._samples_since_fired > self.dead_after

    def _track_firing(self, batch: Batch) -> None:
        fired = torch.bincount(batch.codes.cols, minlength=self.n_latents) > 0
        self._samples_since_fired += len(batch.x)
        self._samples_since_fired.masked_fill_(fired, 0)

    def _window_error(self, held: torch.Tensor, held_spread: torch.Tensor | None, window: list[float]) -> float:
        """The rule's error after a window: on the held-out samples [n_held, d] with the inference
        encoder, as a share of their variance ``held_spread``, or (none held out) the mean of the
        window's training-batch errors."""
        with torch.no_grad():
            if len(held):
                codes = self.activation(self._preactivations(held), training=False)
                return float(self.reconstruction_error(held, self._decode(codes)) / held_spread)
            return float(np.mean(window))

    def _stalled(self, history: list[float]) -> bool:
        """The stopping rule on the window errors since the variant last said it was not settled:
        the best of the last _PATIENCE is less than tol (relative) below the best before them, at
        least _MIN_WINDOWS windows in."""
        if self.tol < 0 or len(history) < max(_MIN_WINDOWS, _PATIENCE + 1):
            return False
        before, recent = min(history[:-_PATIENCE]), min(history[-_PATIENCE:])
        return before - recent < self.tol * abs(before)

    def _progress_bar(self, d: int) -> tqdm:
        show = self.progress
        if show is None:
            work = self.max_steps * min(self.batch_size, 1024) * self.n_latents * d
            show = work > _PROGRESS_WORK and sys.stderr.isatty()
        return tqdm(total=self.max_steps, desc=type(self).__name__, disable=not show, leave=False)
