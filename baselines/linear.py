"""Dense linear baselines: PCA and FastICA from scikit-learn, NMF by HALS in torch (they ignore l0_target)."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.decomposition import PCA, FastICA

from structure_bench.errors import MethodError
from structure_bench.methods import Method
from structure_bench.metrics.reconstruction import principal_dimensions
from structure_bench.numerics import flushed_subnormals

FILLER_STREAM = 0x46494C4C  # independent of the default_rng(seed) streams tasks draw their truth from
# ICA keeps the principal directions that carry all but this share of the variance.
RANK_RTOL = 1e-6


def padded_rows(rows: np.ndarray, n_latents: int, seed: int) -> np.ndarray:
    """[n_latents, d]: ``rows`` [r, d] followed by random unit rows (latents that never fire).

    PCA and ICA find at most d components; wider cells get finite, silent extra latents.
    """
    extra = n_latents - len(rows)
    if extra <= 0:
        return rows
    filler = np.random.default_rng([seed, FILLER_STREAM]).normal(size=(extra, rows.shape[1]))
    return np.vstack([rows, filler / np.linalg.norm(filler, axis=1, keepdims=True)])


def _padded_codes(codes: np.ndarray, n_latents: int) -> np.ndarray:
    """Codes [n, r] with zero columns appended up to n_latents."""
    return np.pad(codes, ((0, 0), (0, n_latents - codes.shape[1])))


class PCAMethod(Method):
    """PCA: the top principal directions (at most d of them), codes = centred projections."""

    reads_l0_target = False

    def fit(self, X: np.ndarray) -> PCAMethod:
        """X : [n_samples, d]."""
        X = np.asarray(X, dtype=np.float64)
        self.model_ = PCA(n_components=min(self.n_latents, *X.shape), random_state=self.seed).fit(X)
        self.decoder_ = padded_rows(self.model_.components_, self.n_latents, self.seed)
        self.decoder_bias_ = self.model_.mean_
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents] (any sign) for X [n_samples, d]."""
        return _padded_codes(self.model_.transform(np.asarray(X, dtype=np.float64)), self.n_latents)


class _IterativeMethod(Method):
    """A method that iterates until its tolerance ``tol`` holds or for ``max_iter`` iterations;
    ``training_`` says which (converged: the tolerance held first)."""

    reads_l0_target = False

    def __init__(
        self, n_latents: int, l0_target: int | None = None, seed: int = 0, max_iter: int = 200, tol: float = 1e-4
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed)
        self.max_iter = max_iter
        self.tol = tol

    def validate_params(self) -> None:
        if self.max_iter < 1:
            raise MethodError(f"{type(self).__name__}: max_iter must be >= 1, got {self.max_iter!r}")


# HALS works on [n_latents, m] blocks of about this many bytes at a time (an L3 cache's share):
# measured on the pizza's 2048 x 2781 codes (row by row, before the groups below), 1.2 s a sweep
# in 1024-sample blocks, 2.0 s whole.
_HALS_BLOCK_BYTES = 2**23
# ... and on this many rows at a time: one matrix product gives each row's B[j] @ F as the rows
# before the group left it, rank-1 updates add what the group's own earlier rows changed.
_HALS_GROUP = 64
# The NMF rule reads the improvement over this many iterations.
_NMF_WINDOW = 5


def _hals_sweep(F: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> None:
    """One HALS pass (Cichocki & Phan 2009) over the rows of F [r, m], in place.

    For the non-negative least-squares problem min_{F >= 0} ||Y - G^T F||^2 with A = G Y [r, m]
    and B = G G^T [r, r], each row is set to its exact minimiser given the others:
    F[j] = max(0, F[j] + (A[j] - B[j] @ F) / B[j, j]). Rows with B[j, j] = 0 (an atom or code that
    is all zero) stay as they are. Columns are independent, so they are swept in cache-sized blocks;
    rows go in groups of ``_HALS_GROUP``, so that the products B[j] @ F are one matrix product per
    group, not one matrix-vector product per row (the same sweep up to rounding; on the pizza's
    2048 x 2781 codes 0.48 s against 1.2 s).
    """
    block = max(1, _HALS_BLOCK_BYTES // (4 * F.shape[0]))
    rows = (B.diagonal() > 0).nonzero().flatten()
    for start in range(0, F.shape[1], block):
        part, target = F[:, start : start + block].contiguous(), A[:, start : start + block]
        for group in rows.split(_HALS_GROUP):
            products = B[group] @ part  # [g, columns]: B[j] @ F before the group's rows change
            within = B[group][:, group]  # [g, g]
            for i, j in enumerate(group.tolist()):
                new = (part[j] + (target[j] - products[i]) / B[j, j]).clamp_min_(0)
                products[i + 1 :].addr_(within[i + 1 :, i], new - part[j])
                part[j] = new
        F[:, start : start + block] = part


def _nearest_rows(X: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """[n]: for each row of X [n, d], the index of its nearest row of reference [m, d] (Euclidean),
    in chunks of X that keep the distance matrix near ``_HALS_BLOCK_BYTES``."""
    if not len(X):
        return torch.zeros(0, dtype=torch.long)
    rows = max(1, _HALS_BLOCK_BYTES // (4 * max(1, len(reference))))
    return torch.cat([torch.cdist(chunk, reference).argmin(dim=1) for chunk in X.split(rows)])


class NMFMethod(_IterativeMethod):
    """Non-negative matrix factorisation X ~ W H by HALS, for non-negative sites (e.g. post-ReLU activations).

    Each iteration sweeps the codes W [n_samples, n_latents] and then the atoms H [n_latents, d]
    with HALS (every row its exact non-negative least-squares minimiser given the others), then
    rescales the atoms to unit norm (the product is unchanged). The rule: stop when the training
    error, a share of the data's variance, fell by less than ``tol`` per iteration over the last
    ``_NMF_WINDOW`` iterations; ``max_iter`` caps it. ``encode`` sweeps the codes of new samples
    against the fixed atoms by the same rule, each starting from the fitted codes of its nearest
    training sample (measured on the pizza at 2048 latents: the test split in 31 sweeps to FVU
    0.00023; from zero, 50 sweeps reach 0.0004); a training sample itself keeps its fitted codes.

    Where n_latents >= d an exact factorisation exists (the atoms the standard basis), so the error
    falls towards 0 for as long as the fit runs: there the rule, not a minimum, ends the fit.
    Fitted: decoder_ [n_latents, d] (unit rows; zero for an atom no sample uses), ``training_``
    with the dead fraction (atoms no training sample uses), train_X_ [n_samples, d] and
    train_codes_ [n_latents, n_samples] (the starts of ``encode``).
    """

    requires_nonnegative = True
    nonnegative_codes = True

    def __init__(
        self, n_latents: int, l0_target: int | None = None, seed: int = 0, max_iter: int = 200, tol: float = 1e-5
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed, max_iter=max_iter, tol=tol)

    def _check_non_negative(self, X: np.ndarray) -> torch.Tensor:
        X = np.asarray(X, dtype=np.float32)
        if X.size and X.min() < 0:
            raise MethodError(
                f"nmf needs non-negative activations, but this site has values down to {X.min():.3g}"
            )
        return torch.from_numpy(X)

    def _sweep_codes(
        self, X: torch.Tensor, codes: torch.Tensor, H: torch.Tensor, update_atoms: bool
    ) -> tuple[list[float], bool]:
        """HALS iterations until the rule holds: (the error after each iteration, whether the rule held).

        X : [n, d]. codes : [n_latents, n] (W transposed), updated in place, as is H [n_latents, d]
        when ``update_atoms``.
        """
        total = float((X.double() - X.double().mean(dim=0)).pow(2).sum()) or 1.0
        errors: list[float] = []
        for _ in range(self.max_iter):
            _hals_sweep(codes, H @ X.T, H @ H.T)
            if update_atoms:
                _hals_sweep(H, codes @ X, codes @ codes.T)
                norms = H.norm(dim=1)
                live = norms > 0
                H[live] /= norms[live, None]
                codes[live] *= norms[live, None]
            errors.append(float((X - codes.T @ H).pow(2).sum()) / total)
            if len(errors) > _NMF_WINDOW and errors[-_NMF_WINDOW - 1] - errors[-1] < self.tol * _NMF_WINDOW:
                return errors, True
        return errors, False

    def fit(self, X: np.ndarray) -> NMFMethod:
        """X : [n_samples, d], non-negative."""
        self.validate_params()
        X = self._check_non_negative(X)
        generator = torch.Generator().manual_seed(int(self.seed))
        # Uniform random start at the data's scale, as scikit-learn's "random" initialisation.
        size = math.sqrt(float(X.double().mean()) / self.n_latents) if X.numel() else 1.0
        codes = torch.rand(self.n_latents, len(X), generator=generator) * size
        H = torch.rand(self.n_latents, X.shape[1], generator=generator) * size
        with flushed_subnormals():
            errors, converged = self._sweep_codes(X, codes, H, update_atoms=True)
        self.decoder_ = H.double().numpy()
        self.decoder_bias_ = np.zeros(X.shape[1])
        self.train_X_, self.train_codes_ = X, codes
        self.training_ = {
            "steps": len(errors), "converged": converged, "final_loss": errors[-1],
            "dead_fraction": float((codes.amax(dim=1) <= 0).double().mean()),
        }
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Non-negative codes [n_samples, n_latents] for X [n_samples, d] (non-negative)."""
        X = self._check_non_negative(X)
        nearest = _nearest_rows(X, self.train_X_)
        codes = self.train_codes_[:, nearest]
        # A training sample keeps its fitted codes (as fit_transform would give); only the others
        # are swept (the report encodes every sample: on the authors' pizza at 512 latents
        # 2.0 -> 1.0 s).
        new = (X != self.train_X_[nearest]).any(dim=1).nonzero().flatten()
        if len(new):
            part = codes[:, new].contiguous()
            with flushed_subnormals():
                self._sweep_codes(X[new], part, torch.from_numpy(self.decoder_.astype(np.float32)), update_atoms=False)
            codes[:, new] = part
        return codes.T.double().numpy()


def numerical_rank(X: np.ndarray, rtol: float = RANK_RTOL) -> int:
    """How many principal directions of X [n_samples, d] carry all but a share ``rtol`` of its variance."""
    return principal_dimensions(X, 1.0 - rtol)


class ICAMethod(_IterativeMethod):
    """FastICA: maximally non-Gaussian directions, at most the data's numerical rank of them
    (``numerical_rank``: whitening directions without variance only amplifies round-off, and FastICA
    then does not converge); decoder = mixing matrix. ``training_`` has no loss (FastICA's rule is on
    the change of the unmixing matrix)."""

    def fit(self, X: np.ndarray) -> ICAMethod:
        """X : [n_samples, d]."""
        self.validate_params()
        X = np.asarray(X, dtype=np.float64)
        n_components = min(self.n_latents, len(X), numerical_rank(X))
        self.model_ = FastICA(
            n_components, whiten="unit-variance", max_iter=self.max_iter, tol=self.tol, random_state=self.seed
        ).fit(X)
        self.decoder_ = padded_rows(self.model_.mixing_.T, self.n_latents, self.seed)
        self.decoder_bias_ = self.model_.mean_
        steps = int(self.model_.n_iter_)
        self.training_ = {"steps": steps, "converged": steps < self.max_iter, "final_loss": None}
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents] (any sign) for X [n_samples, d]."""
        return _padded_codes(self.model_.transform(np.asarray(X, dtype=np.float64)), self.n_latents)
