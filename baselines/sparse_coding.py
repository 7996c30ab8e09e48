"""Sparse coding: exactly-k codes by orthogonal matching pursuit, atoms by least squares (MOD)."""

from __future__ import annotations

import numpy as np
import torch

from structure_bench.errors import MethodError
from structure_bench.methods import Method

# A pursuit codes rows in chunks whose gathered Gram rows [chunk, k, n_latents] of float64 take about
# 8 MB (measured, n=3133, 512 atoms, k=20: 0.65 s at 8 MB, 1.8 s at 64 MB, 1.5 s at 0.5 MB).
_GATHER_BYTES = 2**23
# Ridge on the pursuit's and the atoms' normal equations, relative to their mean diagonal.
_RIDGE = 1e-10
# An atom this close (|cos|) to an earlier atom is a duplicate and is revived (as K-SVD does).
_DUPLICATE = 0.99


def pursuit(X: torch.Tensor, D: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Orthogonal matching pursuit (Pati et al. 1993) of X [n, d] on unit atoms D [m, d], k steps.

    Returns atoms [n, k] (long), coefficients [n, k] and residuals [n, d]. Each step adds the atom
    most correlated (in absolute value) with the residual, then refits all chosen atoms' coefficients
    by least squares, so each residual is orthogonal to its chosen atoms. Computed as Batch-OMP
    (Rubinstein et al. 2008): the correlations with the residual are X D^T minus the chosen atoms'
    Gram rows weighted by their coefficients, so a step costs k n_latents per sample, not d n_latents.
    """
    gram = D @ D.T
    m = len(D)
    chunk = max(1, _GATHER_BYTES // (8 * k * m))
    atoms, coefficients, residuals = [], [], []
    for x in X.split(chunk):
        projections = x @ D.T  # [chunk, m]
        chosen = torch.empty(len(x), k, dtype=torch.long)
        chosen_rows = torch.empty(len(x), k, m, dtype=x.dtype)  # the chosen atoms' Gram rows
        correlation, coef = projections.abs(), None
        for step in range(k):
            if step:
                correlation.scatter_(1, chosen[:, :step], -1.0)
            chosen[:, step] = correlation.argmax(dim=1)
            chosen_rows[:, step] = gram[chosen[:, step]]
            picked, rows = chosen[:, : step + 1], chosen_rows[:, : step + 1]
            system = rows.gather(2, picked[:, None, :].expand(-1, step + 1, -1))
            system.diagonal(dim1=1, dim2=2).add_(_RIDGE)
            coef = torch.linalg.solve(system, projections.gather(1, picked)[:, :, None])[:, :, 0]
            if step + 1 < k:
                correlation = (projections - (coef[:, None, :] @ rows)[:, 0]).abs_()
        atoms.append(chosen)
        coefficients.append(coef)
        residuals.append(x - (coef[:, None, :] @ D[chosen])[:, 0])
    return torch.cat(atoms), torch.cat(coefficients), torch.cat(residuals)


def optimal_directions(X: torch.Tensor, atoms: torch.Tensor, coefficients: torch.Tensor, m: int) -> torch.Tensor:
    """The method of optimal directions (Engan et al. 1999): the dictionary [m, d] minimising
    ||X - C D||^2 for the sparse codes C given as ``atoms`` and ``coefficients`` [n, k] of X [n, d].

    Atoms no sample uses get zero rows. C^T C is built from the codes' outer products (n k^2
    entries), never from a dense [n, m] code matrix.
    """
    d = X.shape[1]
    pairs = (atoms[:, :, None] * m + atoms[:, None, :]).flatten()
    products = (coefficients[:, :, None] * coefficients[:, None, :]).flatten()
    CtC = torch.zeros(m * m, dtype=X.dtype).index_add_(0, pairs, products).view(m, m)
    CtX = torch.zeros(m, d, dtype=X.dtype).index_add_(
        0, atoms.flatten(), (coefficients[:, :, None] * X[:, None, :]).reshape(-1, d)
    )
    used = (CtC.diagonal() > 0).nonzero().flatten()
    normal = CtC[used][:, used]
    normal.diagonal().add_(_RIDGE * float(normal.diagonal().mean()))
    D = torch.zeros(m, d, dtype=X.dtype)
    D[used] = torch.linalg.solve(normal, CtX[used])
    return D


class SparseCoding(Method):
    """Dictionary learning with exactly ``l0_target`` non-zero codes per sample (any sign).

    Each iteration codes every training sample by orthogonal matching pursuit (``pursuit``), then
    sets every atom by least squares to those codes (``optimal_directions``) and rescales it to unit
    norm. An atom no sample used is re-initialised to the residual direction of one of the worst
    reconstructed samples (as K-SVD does), so no atom stays dead while a sample is badly coded.
    Data are centred and divided by one scalar so that the mean squared norm of a sample is 1.

    Stopping rule (the SAEs' rule, per iteration instead of per window): ``validation_fraction`` of
    the training samples are held out; after each iteration their pursuit's reconstruction error
    (share of variance) is measured, and the rule holds when the best error of the last
    ``patience`` iterations is less than ``tol`` (relative) below the best before them. The fit
    keeps the dictionary with the best held-out error. ``max_iter`` caps the iterations (then
    ``converged`` is False); ``tol <= 0`` runs exactly ``max_iter`` iterations.

    Attributes: decoder_ [n_latents, d] (unit rows), error_history_ (held-out error per
    iteration), training_ ``{"steps", "converged", "final_loss", "dead_fraction"}``: iterations run,
    whether the rule held, the kept dictionary's held-out error, and the share of its atoms that no
    training sample uses.
    """

    def __init__(
        self,
        n_latents: int,
        l0_target: int | None = None,
        seed: int = 0,
        max_iter: int = 200,
        tol: float = 1e-4,
        patience: int = 10,
        validation_fraction: float = 0.1,
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed)
        self.max_iter = max_iter
        self.tol = tol
        self.patience = patience
        self.validation_fraction = validation_fraction

    def validate_params(self) -> None:
        if self.max_iter < 1 or self.patience < 1:
            raise MethodError(f"sparse-coding: max_iter and patience must be >= 1, got {self.max_iter}, {self.patience}")
        if not 0 <= self.validation_fraction < 1:
            raise MethodError(f"sparse-coding: validation_fraction must be in [0, 1), got {self.validation_fraction}")

    def fit(self, X: np.ndarray) -> SparseCoding:
        """X : [n_samples, d]."""
        self.validate_params()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or len(X) < 2:
            raise MethodError(f"sparse-coding needs a [n_samples, d] array with at least 2 samples, got {X.shape}")
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        self.scale_ = float(np.sqrt((centred**2).sum(axis=1).mean())) or 1.0
        generator = torch.Generator().manual_seed(int(self.seed))
        data = torch.from_numpy(centred / self.scale_)
        data = data[torch.randperm(len(data), generator=generator)]
        n_held = min(round(self.validation_fraction * len(data)), len(data) - 1)
        held, train = data[:n_held], data[n_held:]
        k = self._k(X.shape[1])
        D = self._initial(train, generator)
        self.error_history_: list[float] = []
        best, converged = (np.inf, D), False
        for _ in range(self.max_iter):
            atoms, coefficients, residuals = pursuit(train, D, k)
            D = self._revived(optimal_directions(train, atoms, coefficients, self.n_latents), residuals, generator)
            error = self._error(held if n_held else train, D, k)
            self.error_history_.append(error)
            if error < best[0]:
                best = (error, D)
            if self._stalled():
                converged = True
                break
        self.decoder_ = best[1].numpy()
        self.decoder_bias_ = self.mean_
        used = torch.zeros(self.n_latents, dtype=torch.bool)
        used[pursuit(train, best[1], k)[0].flatten()] = True
        self.training_ = {
            "steps": len(self.error_history_), "converged": converged, "final_loss": float(best[0]),
            "dead_fraction": float((~used).double().mean()),
        }
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents] (any sign) for X [n_samples, d]: the pursuit's coefficients."""
        scaled = torch.from_numpy((np.asarray(X, dtype=np.float64) - self.mean_) / self.scale_)
        atoms, coefficients, _ = pursuit(scaled, torch.from_numpy(self.decoder_), self._k(scaled.shape[1]))
        codes = torch.zeros(len(scaled), self.n_latents, dtype=torch.float64)
        codes.scatter_(1, atoms, coefficients)
        return codes.numpy() * self.scale_

    # -- internals ------------------------------------------------------------------------
    def _k(self, d: int) -> int:
        # More than d atoms cannot be linearly independent: their least-squares fit is singular.
        return max(1, min(int(self.l0_target or 1), self.n_latents, d))

    def _initial(self, train: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """[n_latents, d]: the directions of distinct random training samples (random directions
        where there are too few samples, or a sample is 0)."""
        D = torch.randn(self.n_latents, train.shape[1], generator=generator, dtype=train.dtype)
        picked = train[torch.randperm(len(train), generator=generator)[: self.n_latents]]
        nonzero = picked.norm(dim=1) > 0
        D[: len(picked)][nonzero] = picked[nonzero]
        return D / D.norm(dim=1, keepdim=True)

    def _revived(self, D: torch.Tensor, residuals: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """D [n_latents, d] with unit rows, every zero row (an atom no sample used) and every
        duplicate (within |cos| _DUPLICATE of an earlier atom) replaced by the residual direction of
        a worst reconstructed sample (one each, worst first; random directions once residuals run out)."""
        norms = D.norm(dim=1)
        unused = norms <= 1e-12 * float(norms.max().clamp_min(1e-300))
        D = D / norms.clamp_min(1e-300)[:, None]
        duplicate = ((D @ D.T).abs_().triu_(diagonal=1) > _DUPLICATE).any(dim=0)
        dead = (unused | duplicate).nonzero().flatten()
        if len(dead):
            errors = residuals.pow(2).sum(dim=1)
            worst = errors.argsort(descending=True)[: len(dead)]
            worst = worst[errors[worst] > 1e-24 * float(errors.max().clamp_min(1e-300))]
            fresh = torch.randn(len(dead), D.shape[1], generator=generator, dtype=D.dtype)
            fresh[: len(worst)] = residuals[worst]
            D[dead] = fresh / fresh.norm(dim=1, keepdim=True)
        return D

    def _error(self, X: torch.Tensor, D: torch.Tensor, k: int) -> float:
        """The pursuit's reconstruction error of X [n, d] on D, as a share of X's variance."""
        spread = float((X - X.mean(dim=0)).pow(2).sum())
        return float(pursuit(X, D, k)[2].pow(2).sum()) / max(spread, 1e-300)

    def _stalled(self) -> bool:
        history = self.error_history_
        if self.tol <= 0 or len(history) <= self.patience:
            return False
        before, recent = min(history[: -self.patience]), min(history[-self.patience :])
        return before - recent < self.tol * abs(before)
