"""The data of the three basic kinds of ground-truth structure (SPEC section 1).

Every structure holds its geometry and, optionally, per-sample arrays over *all* of the
task's samples; ``take(idx)`` restricts the per-sample arrays to a split. What the benchmark
does with each kind (storing, scoring, summarising, drawing it) lives in its module of
``structure_bench.kinds``, which also holds the kinds built on these (``Hierarchy``, ``Curves``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, Protocol

import numpy as np
import pandas as pd

VariableKind = Literal["discrete", "circular", "scalar"]


def _as_float_matrix(name: str, value: np.ndarray, ncols: int | None = None) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {array.shape}")
    if ncols is not None and array.shape[1] != ncols:
        raise ValueError(f"{name} must have {ncols} columns, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf")
    return array


@dataclass(frozen=True)
class Directions:
    """A set of true feature directions.

    vectors : [m, d] rows normalised to unit length on construction.
    coefficients : [n_samples, m] or None, how strongly each feature is on in each sample.
    labels : DataFrame with m rows or None, per-direction annotations (e.g. frequency, phase).
    """

    name: str
    vectors: np.ndarray
    coefficients: np.ndarray | None = None
    labels: pd.DataFrame | None = None
    kind: ClassVar[str] = "directions"

    def __post_init__(self) -> None:
        vectors = _as_float_matrix(f"Directions {self.name!r} vectors", self.vectors)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError(f"Directions {self.name!r} has a zero vector")
        object.__setattr__(self, "vectors", vectors / norms)
        if self.coefficients is not None:
            coefficients = _as_float_matrix(
                f"Directions {self.name!r} coefficients", self.coefficients, len(vectors)
            )
            object.__setattr__(self, "coefficients", coefficients)
        if self.labels is not None and len(self.labels) != len(vectors):
            raise ValueError(
                f"Directions {self.name!r} has {len(vectors)} vectors but {len(self.labels)} labels"
            )

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def size(self) -> int:
        """Number of true features, m."""
        return self.vectors.shape[0]

    def take(self, idx: np.ndarray) -> Directions:
        if self.coefficients is None:
            return self
        return replace(self, coefficients=self.coefficients[idx])


@dataclass(frozen=True)
class Subspaces:
    """A list of subspaces, each given by an orthonormal basis.

    bases : list of [r_g, d] arrays; each is orthonormalised on construction.
    labels : one name per subspace.
    membership : [n_samples, G] or None, how strongly each subspace is active in each sample.
    """

    name: str
    bases: list[np.ndarray]
    labels: list[str] = field(default_factory=list)
    membership: np.ndarray | None = None
    kind: ClassVar[str] = "subspaces"

    def __post_init__(self) -> None:
        if not self.bases:
            raise ValueError(f"Subspaces {self.name!r} has no subspaces")
        dim = np.asarray(self.bases[0]).shape[-1]
        bases = []
        for g, basis in enumerate(self.bases):
            basis = _as_float_matrix(f"Subspaces {self.name!r} basis {g}", basis, dim)
            # Orthonormal rows via QR of the transpose; rank-deficient input is an error.
            q, r = np.linalg.qr(basis.T)
            diagonal = np.diag(r)
            if np.min(np.abs(diagonal)) < 1e-8 * max(1.0, np.max(np.abs(r))):
                raise ValueError(f"Subspaces {self.name!r} basis {g} is rank-deficient")
            # Signs from diag(R) make this idempotent: an orthonormal basis comes back unchanged.
            bases.append((q * np.sign(diagonal)).T)
        object.__setattr__(self, "bases", bases)
        labels = list(self.labels) or [str(g) for g in range(len(bases))]
        if len(labels) != len(bases):
            raise ValueError(
                f"Subspaces {self.name!r} has {len(bases)} bases but {len(labels)} labels"
            )
        object.__setattr__(self, "labels", labels)
        if self.membership is not None:
            membership = _as_float_matrix(
                f"Subspaces {self.name!r} membership", self.membership, len(bases)
            )
            object.__setattr__(self, "membership", membership)

    @property
    def dim(self) -> int:
        return self.bases[0].shape[1]

    @property
    def size(self) -> int:
        """Total dimension of all subspaces, sum of r_g."""
        return sum(b.shape[0] for b in self.bases)

    def take(self, idx: np.ndarray) -> Subspaces:
        if self.membership is None:
            return self
        return replace(self, membership=self.membership[idx])


@dataclass(frozen=True)
class Variables:
    """Per-sample variables a latent may respond to.

    values : DataFrame [n_samples, v], one column per variable.
    kinds : variable name -> "discrete", "circular" (radians) or "scalar".
    """

    name: str
    values: pd.DataFrame
    kinds: dict[str, VariableKind]
    kind: ClassVar[str] = "variables"

    def __post_init__(self) -> None:
        if set(self.kinds) != set(self.values.columns):
            raise ValueError(
                f"Variables {self.name!r}: kinds {sorted(self.kinds)} do not match "
                f"columns {sorted(self.values.columns)}"
            )
        for column, kind in self.kinds.items():
            if kind not in ("discrete", "circular", "scalar"):
                raise ValueError(f"Variables {self.name!r}: unknown kind {kind!r} for {column!r}")

    @property
    def size(self) -> int:
        return self.values.shape[1]

    def take(self, idx: np.ndarray) -> Variables:
        return replace(self, values=self.values.iloc[idx].reset_index(drop=True))


class Structure(Protocol):
    """A ground-truth structure of any kind: a frozen dataclass whose ``kind`` names its entry in
    ``structure_bench.kinds``."""

    name: str
    kind: ClassVar[str]

    @property
    def size(self) -> int:
        """How many features, dimensions, variables or curves the structure has."""
        ...

    def take(self, idx: np.ndarray) -> Structure:
        """The structure with its per-sample arrays restricted to the samples idx [n_split]."""
        ...


def frame_to_arrays(prefix: str, frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], list[str]]:
    """A DataFrame as one storable array per column, named ``<prefix>/<column>``, and its column names.

    Columns of strings become fixed-width unicode: storable without pickle and hashable by content.
    """
    columns = [str(c) for c in frame.columns]
    arrays = {}
    for column in columns:
        values = frame[column].to_numpy()
        if values.dtype.hasobject and all(isinstance(v, str) for v in values):
            values = values.astype(str)
        arrays[f"{prefix}/{column}"] = values
    return arrays, columns


def frame_from_arrays(prefix: str, columns: list[str], arrays: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The DataFrame that ``frame_to_arrays(prefix, ...)`` stored as ``arrays`` with these columns."""
    return pd.DataFrame({c: arrays[f"{prefix}/{c}"] for c in columns})
