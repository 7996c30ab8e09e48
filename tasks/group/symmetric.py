"""The symmetric group S4: elements, composition table and its five real irreducible representations.

Elements are permutations of (0, 1, 2, 3) as tuples, in ``itertools.permutations`` order (index 0 is
the identity). Composition applies the right operand first: ``(x * y)(i) = x(y(i))``. Every irrep is
built explicitly (orthogonal real matrices), so nothing depends on an eigen-solver's choices.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np

DEGREE = 4
ELEMENTS: tuple[tuple[int, ...], ...] = tuple(itertools.permutations(range(DEGREE)))
ORDER = len(ELEMENTS)
_INDEX = {perm: i for i, perm in enumerate(ELEMENTS)}
# The three ways to split {0, 1, 2, 3} into two pairs; S4 permutes them (the map S4 -> S3).
_PAIRINGS = (
    frozenset({frozenset({0, 1}), frozenset({2, 3})}),
    frozenset({frozenset({0, 2}), frozenset({1, 3})}),
    frozenset({frozenset({0, 3}), frozenset({1, 2})}),
)


@dataclass(frozen=True)
class Irrep:
    """A real irreducible representation: ``matrices[g]`` is rho(g), an orthogonal [dim, dim] matrix."""

    name: str
    matrices: np.ndarray  # [ORDER, dim, dim]

    @property
    def dim(self) -> int:
        return self.matrices.shape[1]

    @property
    def character(self) -> np.ndarray:
        """chi(g) = trace rho(g), [ORDER]."""
        return np.trace(self.matrices, axis1=1, axis2=2)

    def matrix_elements(self) -> np.ndarray:
        """The functions g -> rho(g)_ij as columns: [ORDER, dim * dim]."""
        return self.matrices.reshape(ORDER, -1)

    def projector(self) -> np.ndarray:
        """Orthogonal projector [ORDER, ORDER] onto the span of the matrix elements in L2(G).

        Schur orthogonality: the dim^2 matrix elements are orthogonal with squared norm ORDER / dim.
        """
        elements = self.matrix_elements()
        return (self.dim / ORDER) * elements @ elements.T


def compose(x: int, y: int) -> int:
    """Index of x * y (apply y, then x)."""
    px, py = ELEMENTS[x], ELEMENTS[y]
    return _INDEX[tuple(px[py[i]] for i in range(DEGREE))]


@cache
def multiplication_table() -> np.ndarray:
    """[ORDER, ORDER] int64 table with entry (x, y) = index of x * y."""
    return np.array([[compose(x, y) for y in range(ORDER)] for x in range(ORDER)], dtype=np.int64)


def inverse(x: int) -> int:
    """Index of x^-1."""
    return int(np.flatnonzero(multiplication_table()[x] == 0)[0])


def _permutation_matrix(perm: tuple[int, ...]) -> np.ndarray:
    """P with P e_i = e_perm(i), so P(x) P(y) = P(x * y)."""
    matrix = np.zeros((len(perm), len(perm)))
    matrix[list(perm), range(len(perm))] = 1.0
    return matrix


def _sum_zero_basis(k: int) -> np.ndarray:
    """Orthonormal basis [k, k - 1] of the vectors in R^k whose entries sum to zero (Helmert)."""
    basis = np.zeros((k, k - 1))
    for j in range(1, k):
        basis[:j, j - 1] = 1.0
        basis[j, j - 1] = -float(j)
        basis[:, j - 1] /= np.sqrt(j * (j + 1))
    return basis


def _standard(perm: tuple[int, ...]) -> np.ndarray:
    """The (k-1)-dim standard irrep of S_k: the permutation action restricted to sum-zero vectors."""
    basis = _sum_zero_basis(len(perm))
    return basis.T @ _permutation_matrix(perm) @ basis


def _pairing_action(perm: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation of the three pairings induced by ``perm`` (the quotient S4 -> S3)."""
    moved = [frozenset(frozenset(perm[i] for i in pair) for pair in pairing) for pairing in _PAIRINGS]
    return tuple(_PAIRINGS.index(p) for p in moved)


@cache
def irreps() -> tuple[Irrep, ...]:
    """The five irreps of S4: trivial (1), sign (1), 2-d (via S3), standard (3), standard x sign (3)."""
    sign = np.array([np.linalg.det(_permutation_matrix(p)) for p in ELEMENTS]).round()
    standard = np.stack([_standard(p) for p in ELEMENTS])
    return (
        Irrep("trivial", np.ones((ORDER, 1, 1))),
        Irrep("sign", sign[:, None, None]),
        Irrep("2d", np.stack([_standard(_pairing_action(p)) for p in ELEMENTS])),
        Irrep("standard", standard),
        Irrep("standard_sign", sign[:, None, None] * standard),
    )
