"""Reconstruction and sparsity metrics (SPEC 2, first block), and what "a latent fires" means."""

from __future__ import annotations

import numpy as np

# Codes may be signed (PCA, ICA), so a latent fires when |z| exceeds this share of the largest
# |z| in the batch: it ignores float round-off without hiding any real activation.
RELATIVE_FIRING_TOLERANCE = 1e-6


def firing_tolerance(Z: np.ndarray) -> float:
    """The |z| above which a latent counts as firing, for codes Z [n_samples, n_latents]."""
    if Z.size == 0:
        return 0.0
    return RELATIVE_FIRING_TOLERANCE * max(float(Z.max()), -float(Z.min()))  # max |z|, no temporary


def firing_mask(Z: np.ndarray) -> np.ndarray:
    """Boolean [n_samples, n_latents]: which latents fire on which samples."""
    return np.abs(Z) > firing_tolerance(Z)


def fvu(X: np.ndarray, X_hat: np.ndarray) -> float:
    """Fraction of variance unexplained, about the mean of X [n_samples, d] (not about zero).

    X_hat : [n_samples, d]. NaN when X has no variance.
    """
    total = float(np.sum((X - X.mean(axis=0)) ** 2))
    if total == 0.0:
        return float("nan")
    return float(np.sum((X - X_hat) ** 2)) / total


def principal_dimensions(X: np.ndarray, share: float) -> int:
    """How many principal directions of X [n_samples, d] carry ``share`` of its variance (about
    the mean); 1 when X has no variance. A cell much wider than this leaves latents with nothing
    of their own to reconstruct (dead latents are then the data's, not the trainer's)."""
    X = np.asarray(X, dtype=np.float64)
    variances = np.linalg.svd(X - X.mean(axis=0), compute_uv=False) ** 2
    if variances.sum() <= 0:
        return 1
    left = 1.0 - np.cumsum(variances) / variances.sum()
    return int(np.count_nonzero(left > 1.0 - share) + 1)


def shrinkage(X: np.ndarray, X_hat: np.ndarray) -> float:
    """mean ||x_hat|| / mean ||x|| over rows of X, X_hat [n_samples, d]; below 1 means shrunk."""
    mean_norm = float(np.linalg.norm(X, axis=1).mean())
    if mean_norm == 0.0:
        return float("nan")
    return float(np.linalg.norm(X_hat, axis=1).mean()) / mean_norm


def reconstruction_metrics(X: np.ndarray, X_hat: np.ndarray) -> dict[str, float]:
    """fvu, explained_variance and shrinkage of X_hat [n_samples, d] against X [n_samples, d]."""
    unexplained = fvu(X, X_hat)
    return {
        "fvu": unexplained,
        "explained_variance": 1.0 - unexplained,
        "shrinkage": shrinkage(X, X_hat),
    }


def omp_codes(X: np.ndarray, atoms: np.ndarray, k: int) -> np.ndarray:
    """Codes [n_samples, n_atoms] with at most k non-zeros per row by orthogonal matching pursuit,
    batched over the samples of X [n_samples, d]: k times, add the atom most correlated (in |.|)
    with the row's residual to its support and refit the row by least squares on the support.

    atoms : [n_atoms, d] unit rows. One matmul with every atom per step, so 2048 atoms at k = 12
    cost a fraction of a second where scikit-learn's per-sample OMP takes seconds.
    """
    n, L = len(X), len(atoms)
    k = min(k, L, X.shape[1])
    rows = np.arange(n)[:, None]
    support = np.zeros((n, 0), dtype=np.int64)
    coefficients = np.zeros((n, 0))
    residual = X
    for _ in range(k):
        correlations = np.abs(residual @ atoms.T)
        correlations[rows, support] = -1.0  # never the same atom twice
        support = np.hstack([support, correlations.argmax(axis=1)[:, None]])
        chosen = atoms[support]  # [n, s, d]
        gram = chosen @ chosen.transpose(0, 2, 1)  # [n, s, s]
        target = np.einsum("nsd,nd->ns", chosen, X)
        coefficients = np.einsum("nij,nj->ni", np.linalg.pinv(gram, hermitian=True), target)
        residual = X - np.einsum("ns,nsd->nd", coefficients, chosen)
    codes = np.zeros((n, L))
    codes[rows, support] = coefficients
    return codes


def sparse_code_fvu(X: np.ndarray, decoder: np.ndarray, decoder_bias: np.ndarray, k: int) -> float:
    """FVU of X [n_samples, d] rebuilt from ``decoder`` [n_latents, d] and ``decoder_bias`` [d] with
    codes of at most k non-zeros (any sign) found by orthogonal matching pursuit (``omp_codes``):
    what the dictionary allows at L0 k, whatever the method's own encoder does (OMP is greedy, so
    this bounds the best k-sparse code from above)."""
    norms = np.linalg.norm(decoder, axis=1)
    atoms = decoder[norms > 0] / norms[norms > 0, None]
    if not len(atoms):
        return fvu(X, np.broadcast_to(decoder_bias, X.shape))
    return fvu(X, omp_codes(X - decoder_bias, atoms, k) @ atoms + decoder_bias)


def amortisation_metrics(
    X: np.ndarray, X_hat: np.ndarray, decoder: np.ndarray, decoder_bias: np.ndarray, k: int
) -> dict[str, float]:
    """fvu_omp (``sparse_code_fvu`` at the cell's L0 target k) and amortisation_gap = fvu - fvu_omp:
    how much reconstruction the method's encoder leaves behind against better codes for its own
    decoder. X, X_hat : [n_samples, d]; decoder : [n_latents, d]; decoder_bias : [d]."""
    best = sparse_code_fvu(X, decoder, decoder_bias, k)
    return {"fvu_omp": best, "amortisation_gap": fvu(X, X_hat) - best}


def sparsity_metrics(fires: np.ndarray) -> dict[str, float]:
    """l0, dead_fraction and dense_fraction from the firing mask [n_samples, n_latents]."""
    n_samples, n_latents = fires.shape
    if n_samples == 0 or n_latents == 0:
        return {"l0": float("nan"), "dead_fraction": float("nan"), "dense_fraction": float("nan")}
    firing_rate = fires.mean(axis=0)
    return {
        "l0": float(fires.sum(axis=1).mean()),
        "dead_fraction": float(np.mean(firing_rate == 0)),
        "dense_fraction": float(np.mean(firing_rate > 0.5)),
    }
