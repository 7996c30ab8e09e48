"""What each latent is (SPEC 2, Latents): measurements per latent, a class per latent, and their
aggregate over one fit's test codes.

Per latent l (``latent_table``; decoder rows unit-normalised, as every geometric metric reads them):

- ``firing``: share of test samples on which it fires; ``variance``: Var(z_l) over them.
- ``home``, ``home_share``: the part g of the site's home structure with the largest share of the
  decoder row, and that share. The home structure is the site's first ``Subspaces`` truth (share
  ``||B_g d_l||^2``, as ``purity`` reads it); a site without one uses its first ``Directions`` truth,
  each direction a 1-D part (share ``cos^2``).
- ``best_cos``: the largest |cos(d_l, g)| over the site's first ``Directions`` truth (a neuron, on
  the modular-addition tasks).
- Curve measures, where the home part is a key frequency k (label ``k=K``) and the site's
  ``Variables`` have ``psi_K`` (the curve point, 2p levels) and ``scale_K`` = |cos(w_k (a - b)/2)|
  (the modular-addition tasks): ``eta2_psi``, the bias-corrected eta^2 of z_l against psi_k;
  ``r2_curve``, the R^2 of the best fit z_l ~ scale_k * g(psi_k) (g free on the 2p points: is the
  latent a function of its frequency's pizza state?); ``tuning_width``, the participation ratio
  (sum g^2)^2 / sum g^4 of that g as a share of the 2p curve points (1/(2p) for a latent on one
  point, 1/3 for a neuron ReLU(cos(psi + phi)), 2/3 for a linear read-out cos(psi + phi)). NaN
  elsewhere.
- ``class`` (``classify``), the first that applies, in this order: ``dead`` (never fires);
  ``aligned`` (best_cos >= 0.9: a true direction, a neuron on the modular tasks); ``dense`` (fires
  on more than half the samples); ``tile`` (home_share >= 0.9, r2_curve >= 0.7 and tuning_width at
  most a sixth of the curve points: a narrow function of one frequency's curve point);
  ``pure`` (home_share >= 0.9); ``mixture`` (the rest: spread over several parts).

Aggregates (``latent_profile``, stored as metrics ``latents/<name>``): per class the share of the
latents and the share of the summed code variance; on sites with curves, ``eta2_psi``,
``r2_curve`` and ``tuning_width`` averaged over alive latents weighted by Var(z_l) and
``one_per_frequency``, the share
of (test input, key frequency) pairs on which exactly one of the latents at home in that frequency
fires (1 for a code with one atom per frequency, near 0 for neurons).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from structure_bench.metrics.directions import RECOVERED_THRESHOLD, abs_cosines
from structure_bench.metrics.reconstruction import firing_mask
from structure_bench.metrics.subspaces import subspace_shares
from structure_bench.metrics.variables import adjusted_eta2, eta2_per_latent
from structure_bench.structures import Directions, Structure, Subspaces, Variables

CLASSES = ("dead", "aligned", "dense", "tile", "pure", "mixture")
CLASS_DESCRIPTIONS = {
    "dead": "never fires on the test split",
    "aligned": f"decoder row within |cos| >= {RECOVERED_THRESHOLD} of one true direction (a neuron, on the modular tasks)",
    "dense": "fires on more than half the test samples",
    "tile": "in one part (share >= 0.9), a function of its frequency's curve point (r2_curve >= 0.7) tuned to at "
    "most a sixth of the curve",
    "pure": "decoder row in one part of the home structure (share >= 0.9)",
    "mixture": "decoder row spread over several parts (largest share < 0.9)",
}
DENSE_FIRING = 0.5
PURE_SHARE = 0.9
TILE_R2 = 0.7
TILE_WIDTH = 1 / 6  # share of the curve's points
# The per-latent table's columns, in order (``class`` is a string, ``home`` an integer or -1).
COLUMNS = ("firing", "variance", "home", "home_share", "best_cos", "eta2_psi", "r2_curve", "tuning_width", "class")


@dataclass(frozen=True)
class Curve:
    """One key frequency's pizza state on the test split: points [n] (integers in [0, n_points)), scale [n]."""

    points: np.ndarray
    scale: np.ndarray
    n_points: int


def home_structure(structures: Mapping[str, Structure]) -> Subspaces | None:
    """The structure a latent's home is a part of: the first Subspaces, else the first Directions
    as one 1-D part per direction; None when the site has neither."""
    for structure in structures.values():
        if isinstance(structure, Subspaces):
            return structure
    for structure in structures.values():
        if isinstance(structure, Directions):
            return Subspaces(structure.name, [row[None, :] for row in structure.vectors], [str(i) for i in range(len(structure.vectors))])
    return None


def curves(home: Subspaces, structures: Mapping[str, Structure]) -> dict[int, Curve]:
    """Part index -> its frequency's curve, for the parts labelled ``k=K`` whose site has the
    variables psi_K and scale_K (the modular-addition tasks); empty elsewhere."""
    variables = next((s for s in structures.values() if isinstance(s, Variables)), None)
    found = {}
    for g, label in enumerate(home.labels):
        key = label[2:] if label.startswith("k=") else None
        if variables is None or key is None or {f"psi_{key}", f"scale_{key}"} - set(variables.values.columns):
            continue
        points = variables.values[f"psi_{key}"].to_numpy(dtype=np.int64)
        found[g] = Curve(points, variables.values[f"scale_{key}"].to_numpy(dtype=np.float64), int(points.max()) + 1)
    return found


def curve_fit(Z: np.ndarray, curve: Curve) -> tuple[np.ndarray, np.ndarray]:
    """(r2_curve [L], g [n_points, L]) of the least-squares fit z_l ~ scale * g_l(point) for codes Z [n, L].

    Per point m: g(m) = sum z s / sum s^2 over its samples (0 at points without a sample or with
    zero scale). r2_curve = 1 - residual / sum (z - mean z)^2; it can be below 0 (the fit has no
    intercept) and is NaN for a latent without variance.
    """
    n = len(curve.points)
    one_hot = sparse.csr_matrix((np.ones(n), (curve.points, np.arange(n))), shape=(curve.n_points, n))
    scaled = np.asarray(one_hot @ (Z * curve.scale[:, None]))  # [n_points, L]: sum of z s per point
    weight = np.bincount(curve.points, weights=curve.scale**2, minlength=curve.n_points)
    g = np.divide(scaled, weight[:, None], out=np.zeros_like(scaled), where=weight[:, None] > 0)
    residual = (Z**2).sum(axis=0) - (g * scaled).sum(axis=0)
    total = ((Z - Z.mean(axis=0)) ** 2).sum(axis=0)
    r2 = np.divide(total - residual, total, out=np.full(total.shape, np.nan), where=total > 0)
    return r2, g


def participation_ratio(g: np.ndarray) -> np.ndarray:
    """(sum g^2)^2 / sum g^4 over axis 0 of g [n_points, L]: [L] (NaN where g is 0 everywhere)."""
    second, fourth = (g**2).sum(axis=0), (g**4).sum(axis=0)
    return np.divide(second**2, fourth, out=np.full(second.shape, np.nan), where=fourth > 0)


def latent_table(Z: np.ndarray, decoder: np.ndarray, structures: Mapping[str, Structure]) -> pd.DataFrame:
    """One row per latent with the ``COLUMNS`` measurements (see the module docstring).

    Z : [n_samples, n_latents] test codes. decoder : [n_latents, d]. structures : the site's test
    structures (per-sample arrays with n_samples rows).
    """
    Z = np.asarray(Z, dtype=np.float64)
    n_latents = Z.shape[1]
    fires = firing_mask(Z)
    table = pd.DataFrame({"firing": fires.mean(axis=0), "variance": Z.var(axis=0)})
    nan = np.full(n_latents, np.nan)
    home = home_structure(structures)
    if home is None:
        table["home"], table["home_share"] = -1, nan
    else:
        shares = subspace_shares(decoder, home)
        table["home"], table["home_share"] = shares.argmax(axis=1), shares.max(axis=1)
    directions = next((s for s in structures.values() if isinstance(s, Directions)), None)
    table["best_cos"] = nan if directions is None else abs_cosines(decoder, directions.vectors).max(axis=1)
    eta2, r2, width = nan.copy(), nan.copy(), nan.copy()
    for g, curve in ({} if home is None else curves(home, structures)).items():
        members = np.flatnonzero(table["home"].to_numpy() == g)
        if not len(members):
            continue
        codes = Z[:, members]
        n_groups = int(np.count_nonzero(np.bincount(curve.points)))
        eta2[members] = adjusted_eta2(eta2_per_latent(codes, curve.points), len(codes), n_groups)
        r2[members], tuning = curve_fit(codes, curve)
        width[members] = participation_ratio(tuning) / curve.n_points
    table["eta2_psi"], table["r2_curve"], table["tuning_width"] = eta2, r2, width
    table["class"] = classify(table)
    return table


def classify(table: pd.DataFrame) -> np.ndarray:
    """The class of each latent of a ``latent_table`` (its rules in the module docstring): [n_latents] str."""
    alive = table["firing"].to_numpy() > 0
    pure = table["home_share"].to_numpy() >= PURE_SHARE
    with np.errstate(invalid="ignore"):
        rules = [
            ~alive,
            table["best_cos"].to_numpy() >= RECOVERED_THRESHOLD,
            table["firing"].to_numpy() > DENSE_FIRING,
            pure & (table["r2_curve"].to_numpy() >= TILE_R2) & (table["tuning_width"].to_numpy() <= TILE_WIDTH),
            pure,
        ]
    return np.select(rules, list(CLASSES[:-1]), default=CLASSES[-1])


def one_per_frequency(Z: np.ndarray, table: pd.DataFrame, structures: Mapping[str, Structure]) -> float:
    """Share of (test sample, key frequency) pairs on which exactly one latent at home in that
    frequency fires; NaN without curves. Z : [n_samples, n_latents]."""
    home = home_structure(structures)
    frequencies = [] if home is None else list(curves(home, structures))
    if not frequencies:
        return float("nan")
    fires = firing_mask(np.asarray(Z, dtype=np.float64))
    homes = table["home"].to_numpy()
    return float(np.mean([(fires[:, homes == g].sum(axis=1) == 1).mean() for g in frequencies]))


def latent_profile(Z: np.ndarray, table: pd.DataFrame, structures: Mapping[str, Structure]) -> dict[str, float]:
    """The fit's aggregate of its ``latent_table``: ``share[<class>]`` and ``variance_share[<class>]``
    always; on a site with curves also the Var(z_l)-weighted means of eta2_psi, r2_curve and
    tuning_width over alive latents, and ``one_per_frequency``. Z : [n_samples, n_latents] test codes."""
    variance = table["variance"].to_numpy()
    total = variance.sum()
    profile = {}
    for name in CLASSES:
        members = (table["class"] == name).to_numpy()
        profile[f"share[{name}]"] = float(members.mean())
        profile[f"variance_share[{name}]"] = float(variance[members].sum() / total) if total > 0 else float("nan")
    home = home_structure(structures)
    if home is None or not curves(home, structures):
        return profile
    alive = table["firing"].to_numpy() > 0
    for column in ("eta2_psi", "r2_curve", "tuning_width"):
        values = table[column].to_numpy()
        defined = alive & np.isfinite(values) & (variance > 0)
        profile[column] = float(np.average(values[defined], weights=variance[defined])) if defined.any() else float("nan")
    profile["one_per_frequency"] = one_per_frequency(Z, table, structures)
    return profile


def table_to_json(table: pd.DataFrame) -> dict[str, list]:
    """The table as stored in a record: column -> list (floats rounded to 4 decimals, NaN as None)."""
    stored = {}
    for column in COLUMNS:
        values = table[column].to_numpy()
        if values.dtype.kind == "f":
            stored[column] = [None if not np.isfinite(v) else round(float(v), 4) for v in values]
        else:
            stored[column] = values.tolist()
    return stored


def table_from_json(stored: Mapping[str, list]) -> pd.DataFrame:
    """A stored table back as a DataFrame (None as NaN)."""
    exact = ("home", "class")
    return pd.DataFrame({
        column: stored[column] if column in exact else np.array(stored[column], dtype=np.float64) for column in COLUMNS
    })
