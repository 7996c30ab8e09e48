"""Hypothesis references (SPEC 5, "What a dictionary could find"): dictionaries built from the
truth so that each realises one hypothesis, run through the same code and metrics as every
method. Like the oracle they are handed the truth, so the leaderboard shows them as unranked
reference rows. Each is built at its own size (``reference_size``), whatever the cell's width.

- ``oracle-topk`` (H1, sparse): the oracle's dictionary (on the modular tasks the key
  frequencies' neurons), each sample coded by its least-squares coordinates with all but the
  l0_target largest in magnitude set to 0.
- ``subspace-pca`` (H2): per part of the site's first Subspaces structure (a frequency's neurons,
  a circle's plane, an irrep), the principal directions of the training activations inside that
  part that carry all but 0.1% of its variance; dense codes (the coordinates).
- ``curve-tiles`` (H3, "answer" latents): per key frequency k, one atom per curve point psi_k = j
  (2p of them): the mean training activation at that point, inside the frequency's part. Each
  sample is coded by the atom of each frequency that best fits it, with its least-squares scale:
  exactly one latent per frequency.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from structure_bench.errors import MethodError
from structure_bench.metrics.latents import curves, home_structure
from structure_bench.metrics.reconstruction import principal_dimensions
from structure_bench.structures import Structure, Subspaces
from structure_bench_baselines.calibration import FixedDictionary, Oracle

# subspace-pca keeps the principal directions of a part that carry all but this share of its variance.
PART_VARIANCE = 0.999


def _subspaces(structures: Mapping[str, Structure]) -> Subspaces | None:
    return next((s for s in structures.values() if isinstance(s, Subspaces)), None)


class OracleTopK(Oracle):
    """H1, sparse: the oracle's dictionary with the l0_target largest least-squares coordinates."""

    calibration_role = None

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents]: least-squares coordinates, all but the k largest |.| zeroed."""
        codes = (np.asarray(X, dtype=np.float64) - self.decoder_bias_) @ self._pinv
        k = min(self._k(), codes.shape[1])
        drop = np.argpartition(-np.abs(codes), k - 1, axis=1)[:, k:]
        np.put_along_axis(codes, drop, 0.0, axis=1)
        return codes


def _part_components(X: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """[r, d]: the principal directions of X [n, d] inside the part spanned by basis [r_g, d] that
    carry all but 1 - PART_VARIANCE of the variance there (at least one)."""
    inside = X @ basis.T
    inside = inside - inside.mean(axis=0)
    keep = max(1, principal_dimensions(inside, PART_VARIANCE)) if np.any(inside) else 1
    _, _, vt = np.linalg.svd(inside, full_matrices=False)
    return vt[:keep] @ basis


class SubspacePCA(FixedDictionary):
    """H2: per part of the site's first Subspaces structure, its principal directions (dense codes)."""

    uses_ground_truth = True

    @classmethod
    def not_applicable(cls, X: np.ndarray, structures: dict) -> str | None:
        return None if _subspaces(structures) is not None else "it needs a Subspaces structure at the site"

    @classmethod
    def reference_size(cls, X: np.ndarray, truth: Structure, structures: dict) -> int:
        parts = _subspaces(structures)
        return sum(len(_part_components(np.asarray(X, dtype=np.float64), basis)) for basis in parts.bases)

    def fit(self, X: np.ndarray, truth: Structure | None = None, structures: dict | None = None) -> SubspacePCA:
        """X : [n_samples, d]; structures : the site's train structures (the first Subspaces is used)."""
        parts = _subspaces(structures or {})
        if parts is None:
            raise MethodError("subspace-pca needs a Subspaces structure at the site")
        X = np.asarray(X, dtype=np.float64)
        rows = np.vstack([_part_components(X, basis) for basis in parts.bases])
        if len(rows) != self.n_latents:
            raise MethodError(f"subspace-pca: n_latents={self.n_latents} but the parts give {len(rows)} directions")
        self._use_dictionary(rows, X)
        return self


class CurveTiles(FixedDictionary):
    """H3: per key frequency one atom per curve point; one latent per frequency fires per sample."""

    uses_ground_truth = True

    @classmethod
    def not_applicable(cls, X: np.ndarray, structures: dict) -> str | None:
        home = home_structure(structures)
        return None if home is not None and curves(home, structures) else "it needs key frequencies with curve points (psi_k)"

    @classmethod
    def reference_size(cls, X: np.ndarray, truth: Structure, structures: dict) -> int:
        home = home_structure(structures)
        return sum(curve.n_points for curve in curves(home, structures).values())

    def fit(self, X: np.ndarray, truth: Structure | None = None, structures: dict | None = None) -> CurveTiles:
        """X : [n_samples, d]; structures : the site's train structures (parts labelled k=K, psi_K)."""
        structures = structures or {}
        home = home_structure(structures)
        found = curves(home, structures) if home is not None else {}
        if not found:
            raise MethodError("curve-tiles needs key frequencies with curve points (psi_k) at the site")
        X = np.asarray(X, dtype=np.float64)
        atoms, self.blocks_ = [], []
        for g, curve in found.items():
            projector = home.bases[g].T @ home.bases[g]  # [d, d] onto the frequency's part
            means = np.zeros((curve.n_points, X.shape[1]))
            np.add.at(means, curve.points, X @ projector)
            counts = np.bincount(curve.points, minlength=curve.n_points)
            means /= np.maximum(counts, 1)[:, None]
            self.blocks_.append(slice(sum(len(a) for a in atoms), sum(len(a) for a in atoms) + curve.n_points))
            atoms.append(means)
        dictionary = np.vstack(atoms)
        if len(dictionary) != self.n_latents:
            raise MethodError(f"curve-tiles: n_latents={self.n_latents} but the curves give {len(dictionary)} atoms")
        self.decoder_ = dictionary
        # The part of the training mean outside the key frequencies' parts: no atom can give it.
        inside = sum(home.bases[g].T @ home.bases[g] for g in found)
        self.decoder_bias_ = X.mean(axis=0) - X.mean(axis=0) @ inside
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents]: per frequency, the least-squares scale of its best atom (0 elsewhere)."""
        residual = np.asarray(X, dtype=np.float64) - self.decoder_bias_
        codes = np.zeros((len(residual), self.n_latents))
        rows = np.arange(len(residual))
        for block in self.blocks_:
            atoms = self.decoder_[block]
            norms = np.maximum((atoms**2).sum(axis=1), 1e-300)
            fit = residual @ atoms.T  # [n, n_points]; atoms lie in the part, so this is its projection
            best = np.argmax(fit**2 / norms, axis=1)
            codes[rows, block.start + best] = fit[rows, best] / norms[best]
        return codes
