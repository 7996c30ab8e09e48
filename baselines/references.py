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
- ``tiles`` (H3 beyond modular addition: arc tiles on a circle, tiles along a curve): each part of
  the site's first Subspaces structure that is mostly a function of one circular or scalar
  variable (its coordinates' variance-weighted, bias-corrected eta^2 against the variable's bins
  at least ``TILED_SHARE``) gets one atom per occupied bin: the mean training activation there,
  inside the part. A tile fires when the sample's least-squares scale on the part's best atom is at
  least ``ON_SCALE``: one latent per part that is on. Every other part keeps the true directions
  that lie in it (a Directions structure of the site, e.g. circles-v1's linear features), coded by
  the pursuit below with one family per direction, or, where none lie in it, subspace-pca's
  directions with dense codes.
- ``element-tiles`` (group elements): the same, with each part tiled by the discrete variable (an
  input or the output element) that explains the most of it, whatever that share; off the
  modular tasks, where ``curve-tiles`` is the tiling.
- ``absorbed`` (feature absorption on a hierarchy, Chanin et al. 2024): parents and roots keep
  their true directions; each child's atom is the mean training activation of it with its parent
  (unit length), so it has absorbed the parent. A parent and its children form one family, of which
  at most one latent fires: the codes come from a pursuit that adds, per step, the atom most
  correlated with the residual among the families not yet used, refits the chosen atoms by least
  squares, and stops when the best code is below half the smallest true magnitude.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from structure_bench.errors import MethodError
from structure_bench.kinds.hierarchy import Hierarchy
from structure_bench.metrics.latents import curves, home_structure
from structure_bench.metrics.reconstruction import principal_dimensions
from structure_bench.metrics.variables import adjusted_eta2, eta2_per_latent, group_index
from structure_bench.structures import Directions, Structure, Subspaces, Variables
from structure_bench_baselines.calibration import FixedDictionary, Oracle

# subspace-pca keeps the principal directions of a part that carry all but this share of its variance.
PART_VARIANCE = 0.999
# tiles: a part is tiled by the circular or scalar variable that explains the largest share of its
# variance when that share is at least TILED_SHARE (element-tiles: any share); a tile fires at a
# least-squares scale of at least ON_SCALE (its atom is the mean activation at its bin, so an "on"
# sample's scale is near 1, an "off" part's near 0).
TILED_SHARE = 0.5
ON_SCALE = 0.5


def _first(structures: Mapping[str, Structure], kind: type) -> Any:
    """The site's first structure of this kind (Subspaces, Variables), or None."""
    return next((s for s in structures.values() if isinstance(s, kind)), None)


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
        return None if _first(structures, Subspaces) is not None else "it needs a Subspaces structure at the site"

    @classmethod
    def reference_size(cls, X: np.ndarray, truth: Structure, structures: dict) -> int:
        parts = _first(structures, Subspaces)
        return sum(len(_part_components(np.asarray(X, dtype=np.float64), basis)) for basis in parts.bases)

    def fit(self, X: np.ndarray, truth: Structure | None = None, structures: dict | None = None) -> SubspacePCA:
        """X : [n_samples, d]; structures : the site's train structures (the first Subspaces is used)."""
        parts = _first(structures or {}, Subspaces)
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
            means = _level_means(X @ (home.bases[g].T @ home.bases[g]), curve.points, curve.n_points)
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
            best, scale = _best_atoms(residual, self.decoder_[block], signed=True)
            codes[rows, block.start + best] = scale
        return codes


def _level_means(inside: np.ndarray, levels: np.ndarray, n_levels: int) -> np.ndarray:
    """[n_levels, d]: per level, the mean of inside [n, d] over its samples (levels [n] in
    [0, n_levels), -1 for a sample at none; a row of 0 for a level without samples)."""
    at = levels >= 0
    means = np.zeros((n_levels, inside.shape[1]))
    np.add.at(means, levels[at], inside[at])
    return means / np.maximum(np.bincount(levels[at], minlength=n_levels), 1)[:, None]


def _best_atoms(residual: np.ndarray, atoms: np.ndarray, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """(best [n], scale [n]): per row of residual [n, d], the atom of atoms [m, d] whose
    least-squares multiple explains the most of it (with signed False, positive multiples only), and
    that multiple. The atoms lie in one part, so residual @ atoms.T is the part's projection."""
    norms = np.maximum((atoms**2).sum(axis=1), 1e-300)
    fit = residual @ atoms.T  # [n, m]
    best = np.argmax((fit if signed else np.maximum(fit, 0.0)) ** 2 / norms, axis=1)
    rows = np.arange(len(residual))
    return best, fit[rows, best] / norms[best]


def _variable_bins(values: pd.Series, kind: str) -> np.ndarray:
    """int [n]: each sample's value (discrete) or bin (circular, scalar) of a variable
    (``group_index``), -1 where it is undefined (NaN: an off circle has no angle)."""
    defined = values.notna().to_numpy()
    bins = np.full(len(values), -1)
    bins[defined] = group_index(values[defined], kind)
    return bins


def _tiling_share(inside: np.ndarray, bins: np.ndarray) -> float:
    """The variance-weighted, bias-corrected eta^2 of the coordinates inside [n, r] against bins [n]
    (undefined samples, -1, form one more group): how far the part is a function of the variable."""
    groups = pd.factorize(bins, sort=True)[0]
    variance = inside.var(axis=0)
    if not variance.sum() > 0:
        return 0.0
    eta2 = np.nan_to_num(adjusted_eta2(eta2_per_latent(inside, groups), len(inside), int(groups.max()) + 1))
    return float(variance @ eta2 / variance.sum())


@dataclass(frozen=True)
class _Part:
    """One part of the tiles dictionary: its basis [r_g, d], its rows [r, d], the variable tiling
    it (None: directions), the largest share of it one variable explains, and for true directions
    the code at which their pursuit stops (0.0: dense principal directions)."""

    basis: np.ndarray
    rows: np.ndarray
    variable: str | None
    share: float
    threshold: float = 0.0


def _directions_in(basis: np.ndarray, structures: Mapping[str, Structure]) -> Directions | None:
    """The first Directions structure with coefficients whose vectors all lie in the part spanned
    by basis [r_g, d], or None."""
    for structure in structures.values():
        if isinstance(structure, Directions) and structure.coefficients is not None:
            if np.allclose(np.linalg.norm(structure.vectors @ basis.T, axis=1), 1.0, atol=1e-6):
                return structure
    return None


def _untiled(X: np.ndarray, basis: np.ndarray, share: float, structures: Mapping[str, Structure]) -> _Part:
    """A part no variable tiles: its true directions (sparse codes), else its principal directions."""
    truth = _directions_in(basis, structures)
    if truth is None:
        return _Part(basis, _part_components(X, basis), None, share)
    magnitudes = truth.coefficients[truth.coefficients > 0]
    return _Part(basis, truth.vectors, None, share, 0.5 * float(magnitudes.min()) if magnitudes.size else 0.0)


def _tiles_parts(
    X: np.ndarray, structures: Mapping[str, Structure], kinds: tuple[str, ...], min_share: float
) -> list[_Part]:
    """Per part of the site's first Subspaces: its tiles (when a variable of one of these kinds
    explains at least min_share of it: one atom per occupied bin or value) or else its true or
    principal directions (``_untiled``)."""
    variables = _first(structures, Variables)
    candidates = {} if variables is None else {
        column: _variable_bins(variables.values[column], kind)
        for column, kind in variables.kinds.items() if kind in kinds
    }
    found = []
    for basis in _first(structures, Subspaces).bases:
        projector = basis.T @ basis
        coordinates = X @ basis.T
        shares = {column: _tiling_share(coordinates, bins) for column, bins in candidates.items()}
        column = max(shares, key=shares.get, default=None)
        if column is None or shares[column] < min_share:
            found.append(_untiled(X, basis, max(shares.values(), default=0.0), structures))
            continue
        bins = candidates[column]
        occupied = np.flatnonzero(np.bincount(bins[bins >= 0]))
        means = _level_means(X @ projector, bins, int(bins.max()) + 1)
        found.append(_Part(basis, means[occupied], column, shares[column]))
    return found


class Tiles(FixedDictionary):
    """H3 on circles and curves: each part that one variable determines is tiled along it; one
    latent fires per part that is on; the other parts keep their true directions (or principal
    directions where the site has none there)."""

    uses_ground_truth = True
    # The variables a part may be tiled by, and the share of it one must explain.
    variable_kinds: ClassVar[tuple[str, ...]] = ("circular", "scalar")
    min_share: ClassVar[float] = TILED_SHARE

    @classmethod
    def _parts(cls, X: np.ndarray, structures: Mapping[str, Structure]) -> list[_Part]:
        return _tiles_parts(np.asarray(X, dtype=np.float64), structures, cls.variable_kinds, cls.min_share)

    @classmethod
    def _missing(cls, structures: Mapping[str, Structure]) -> str | None:
        """What the site lacks for tiles (a Subspaces, a variable of the kinds), or None."""
        if _first(structures, Subspaces) is None:
            return "it needs a Subspaces structure at the site"
        variables = _first(structures, Variables)
        if variables is None or not set(cls.variable_kinds) & set(variables.kinds.values()):
            return f"it needs a {' or '.join(cls.variable_kinds)} variable at the site"
        return None

    @classmethod
    def _untiled_reason(cls, parts: list[_Part]) -> str | None:
        """Why these parts give no tiles (no variable explains enough of any), or None."""
        if any(part.variable for part in parts):
            return None
        best = max(part.share for part in parts)
        return (f"no part is mostly a function of one {' or '.join(cls.variable_kinds)} variable "
                f"(largest share {best:.2f} < {cls.min_share})")

    @classmethod
    def not_applicable(cls, X: np.ndarray, structures: dict) -> str | None:
        return cls._missing(structures) or cls._untiled_reason(cls._parts(X, structures))

    @classmethod
    def reference_size(cls, X: np.ndarray, truth: Structure, structures: dict) -> int:
        return sum(len(part.rows) for part in cls._parts(X, structures))

    def fit(self, X: np.ndarray, truth: Structure | None = None, structures: dict | None = None) -> Tiles:
        """X : [n_samples, d]; structures : the site's train structures (the first Subspaces, the
        first Variables, Directions). The parts are taken as mutually orthogonal, as on circles-v1
        and manifold-v1."""
        X, structures = np.asarray(X, dtype=np.float64), structures or {}
        missing = self._missing(structures)
        self.parts_ = [] if missing else self._parts(X, structures)
        reason = missing or self._untiled_reason(self.parts_)
        if reason:
            raise MethodError(f"tiles: {reason}")
        self.decoder_ = np.vstack([part.rows for part in self.parts_])
        if len(self.decoder_) != self.n_latents:
            raise MethodError(f"tiles: n_latents={self.n_latents} but the parts give {len(self.decoder_)} rows")
        starts = np.cumsum([0, *(len(part.rows) for part in self.parts_)])
        self.blocks_ = [slice(a, b) for a, b in zip(starts, starts[1:])]
        self.tiled_by_ = [part.variable for part in self.parts_]
        dense = [i for block, part in zip(self.blocks_, self.parts_) if not part.variable and not part.threshold
                 for i in range(block.start, block.stop)]
        self.dense_ = np.array(dense, dtype=np.int64)
        self._pinv = np.linalg.pinv(self.decoder_[self.dense_]) if dense else np.zeros((X.shape[1], 0))
        # The mean outside the tiled and pursued parts and the dense rows' span: no latent gives it.
        mean = X.mean(axis=0)
        coded = [part.basis for part in self.parts_ if part.variable or part.threshold]
        outside = mean - sum(mean @ basis.T @ basis for basis in coded)
        self.decoder_bias_ = outside - (outside @ self._pinv) @ self.decoder_[self.dense_]
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents]: per tiled part, the scale of its best atom when at least
        ON_SCALE; per part of true directions, the pursuit's codes (``_pursuit``, one family per
        direction); the principal directions' least-squares coordinates."""
        residual = np.asarray(X, dtype=np.float64) - self.decoder_bias_
        codes = np.zeros((len(residual), self.n_latents))
        codes[:, self.dense_] = residual @ self._pinv
        rows = np.arange(len(residual))
        for block, part in zip(self.blocks_, self.parts_):
            if part.variable:
                best, scale = _best_atoms(residual, part.rows, signed=False)
                codes[rows, block.start + best] = np.where(scale >= ON_SCALE, scale, 0.0)
            elif part.threshold:
                inside = residual @ part.basis.T @ part.basis  # the pursuit's residual stays in the part
                codes[:, block] = _pursuit(inside, part.rows, np.arange(len(part.rows)), part.threshold)
        return codes


class ElementTiles(Tiles):
    """Group elements: each part tiled by the discrete variable (an input or the output element)
    that explains the most of it, one atom per value, whatever that share; not on the modular
    tasks, where ``curve-tiles`` tiles each frequency by its curve point."""

    variable_kinds = ("discrete",)
    min_share = 0.0

    @classmethod
    def not_applicable(cls, X: np.ndarray, structures: dict) -> str | None:
        home = home_structure(structures)
        if home is not None and curves(home, structures):
            return "curve-tiles tiles the modular tasks by their curve points"
        return super().not_applicable(X, structures)


def _pursuit(residual: np.ndarray, atoms: np.ndarray, families: np.ndarray, threshold: float) -> np.ndarray:
    """Codes [n, m] of residual [n, d] on unit atoms [m, d]: per step, the atom most correlated with
    what is left, among the families [m] (integer labels) not used yet, is added and the chosen
    atoms are refitted by least squares; a sample stops when its new atom's code is below threshold."""
    rows = np.arange(len(residual))
    family_of = np.unique(families, return_inverse=True)[1]
    members = np.eye(family_of.max() + 1, dtype=bool)[family_of]  # [m, n_families]
    gram, projections = atoms @ atoms.T, residual @ atoms.T
    selected = np.zeros(projections.shape, dtype=bool)
    codes = np.zeros(projections.shape)
    adding = np.ones(len(residual), dtype=bool)
    for _ in range(members.shape[1]):
        correlation = projections - codes @ gram  # what is left, projected on the unit atoms
        correlation[(selected @ members)[:, family_of]] = -np.inf
        pick = np.argmax(correlation, axis=1)
        trial = selected.copy()
        trial[rows, pick] = True
        refit = _masked_least_squares(gram, projections, trial)
        adding &= np.isfinite(correlation[rows, pick]) & (refit[rows, pick] >= threshold)
        if not adding.any():
            break
        selected[adding], codes[adding] = trial[adding], refit[adding]
    return codes


def _masked_least_squares(gram: np.ndarray, projections: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[n, m]: per sample, the least-squares codes on the atoms its mask [n, m] selects (0 on the
    others), from the atoms' gram [m, m] and the sample's projections on them [n, m]."""
    both = mask[:, :, None] & mask[:, None, :]
    systems = np.where(both, gram[None], 0.0) + np.eye(len(gram))[None] * ~mask[:, None, :]
    return np.linalg.solve(systems, (projections * mask)[:, :, None])[:, :, 0]


def _hierarchy(structures: Mapping[str, Structure], truth: Structure | None = None) -> Hierarchy | None:
    found = [s for s in [truth, *structures.values()] if isinstance(s, Hierarchy)]
    return next((s for s in found if np.any(s.labels["parent"].to_numpy() >= 0)), None)


class Absorbed(FixedDictionary):
    """Absorption realised: child atoms carry their parent, and one latent per family fires."""

    uses_ground_truth = True

    @classmethod
    def not_applicable(cls, X: np.ndarray, structures: dict) -> str | None:
        return None if _hierarchy(structures) is not None else "it needs a Hierarchy with parents at the site"

    def fit(self, X: np.ndarray, truth: Structure | None = None, structures: dict | None = None) -> Absorbed:
        """X : [n_samples, d]; truth : the site's Hierarchy (directions, coefficients [n_samples, m]
        of the training split, labels with ``parent``)."""
        hierarchy = _hierarchy(structures or {}, truth)
        if hierarchy is None or hierarchy.coefficients is None:
            raise MethodError("absorbed needs a Hierarchy with parents and coefficients at the site")
        if hierarchy.size != self.n_latents:
            raise MethodError(f"absorbed: n_latents={self.n_latents} but the hierarchy has {hierarchy.size} features")
        parents, A, G = hierarchy.labels["parent"].to_numpy(), hierarchy.coefficients, hierarchy.vectors
        atoms = G.copy()
        for child in np.flatnonzero(parents >= 0):
            both = (A[:, child] > 0) & (A[:, parents[child]] > 0)
            if both.any():
                mean = A[both][:, [child, parents[child]]].mean(axis=0) @ G[[child, parents[child]]]
                atoms[child] = mean / np.linalg.norm(mean)
        self.families_ = np.where(parents >= 0, parents, np.arange(len(parents)))  # [m] family = top feature
        self.threshold_ = 0.5 * float(A[A > 0].min())
        self._use_dictionary(atoms, X)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents] of the family-exclusive pursuit (``_pursuit``)."""
        residual = np.asarray(X, dtype=np.float64) - self.decoder_bias_
        return _pursuit(residual, self.decoder_, self.families_, self.threshold_)

