"""Hidden instances: a task as ``verify`` re-runs it, drawn from a secret only at verify time.

A hidden instance of task T is T with, at every site, its units put through a secret signed
permutation x'[j] = s_j x[p_j] (signs only at sites with negative values, so non-negative sites
stay non-negative); a *fresh* one is first rebuilt with a secret value of T's ``instance_seed``
parameter (a synthetic task's generator seed: new directions, codes, noise and split; TMS's
sample seed), so it is an instance nobody has seen. Every metric is invariant under such a map once the ground truth is mapped with it:
cosines between decoder rows and true directions, projections onto true subspaces, FVU, and codes
(hence L0 and every eta^2) do not change, and the model's forward pass undoes the map before it
runs. So an honest method scores on a hidden instance what it scores on T, up to seed and
instance noise, while a method that reads T's published truth, or ships T's answer, is scored
against a truth it has never seen.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from pathlib import Path

import numpy as np

from structure_bench.cache import discard
from structure_bench.kinds import kind_of
from structure_bench.registry import make, parse_task_id
from structure_bench.structures import Structure
from structure_bench.task import Split, Task, TaskArrays


def hidden_task_id(task_id: str, secret: int, fresh: bool = False) -> str:
    """The id a hidden instance registers under: ``pizza-v1`` -> ``pizza.hidden-<secret hex>-v1``
    (``pizza.fresh-<secret hex>-v1`` when fresh)."""
    _, name, version = parse_task_id(task_id)
    return f"{name}.{'fresh' if fresh else 'hidden'}-{secret:x}-v{version}"


class SignedPermutation:
    """x'[..., j] = signs[j] * x[..., perm[j]]: an orthogonal map of R^d onto itself.

    perm : [d] a permutation of range(d). signs : [d] of +-1.
    """

    def __init__(self, perm: np.ndarray, signs: np.ndarray) -> None:
        self.perm, self.signs = np.asarray(perm), np.asarray(signs)

    @classmethod
    def draw(cls, rng: np.random.Generator, d: int, signed: bool) -> SignedPermutation:
        signs = rng.choice([-1.0, 1.0], size=d) if signed else np.ones(d)
        return cls(rng.permutation(d), signs)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """X [..., d] -> the mapped X' [..., d], same dtype."""
        return (X[..., self.perm] * self.signs).astype(X.dtype, copy=False)

    def invert(self, X: np.ndarray) -> np.ndarray:
        """X' [..., d] -> X [..., d] (``apply``'s inverse)."""
        out = np.empty_like(X)
        out[..., self.perm] = X * self.signs.astype(X.dtype)
        return out

    def structure(self, s: Structure) -> Structure:
        """The structure with its geometry (direction rows, subspace bases) mapped (``Kind.map_units``)."""
        return kind_of(s).map_units(s, self.apply)


class HiddenInstance(Task):
    """Task ``base`` with its units mapped by a secret permutation, and when ``fresh`` (and the task
    has an ``instance_seed``) rebuilt from ``secret`` first (see the module docstring).

    Register it under ``hidden_task_id(base, secret, fresh)`` so that the runner and its workers
    build it.
    """

    def __init__(self, id: str, base: str, secret: int, fresh: bool = False) -> None:
        super().__init__(id, base=base, secret=secret, fresh=fresh)
        self.secret = secret
        public = make(base)
        seed_param = type(public).instance_seed
        self.reseeded = bool(fresh and seed_param)
        self.base = make(base, **{seed_param: secret}) if self.reseeded else public
        self.metadata = replace(self.base.metadata, id=id, card=None)
        self.model_sites = self.base.model_sites

    @cached_property
    def maps(self) -> dict[str, SignedPermutation]:
        """site -> the secret signed permutation of its units."""
        rng = np.random.default_rng([self.secret, 0x48494445])  # a stream apart from the task's own
        return {
            site: SignedPermutation.draw(rng, X.shape[1], signed=bool((X < 0).any()))
            for site, X in self.base.arrays.activations.items()
        }

    def generate(self) -> TaskArrays:
        arrays, maps = self.base.arrays, self.maps
        return TaskArrays(
            activations={site: maps[site].apply(X) for site, X in arrays.activations.items()},
            inputs=arrays.inputs,
            structures={
                site: {name: maps[site].structure(s) for name, s in structures.items()}
                for site, structures in arrays.structures.items()
            },
            train_idx=arrays.train_idx,
            test_idx=arrays.test_idx,
            targets=arrays.targets,
        )

    def forward(self, X: np.ndarray, site: str | None = None, split: Split = "test") -> np.ndarray:
        """The base model's logits on the un-mapped X [n_split, d_site]."""
        site = self._site(site)
        return self.base.forward(self.maps[site].invert(X), site, split)

    def source_files(self) -> list[Path]:
        return [*self.base.source_files(), Path(__file__)]

    def discard_cache(self) -> None:
        """Delete what building this single-use instance stored in the activation cache: its own
        entry and, when fresh, its secretly seeded base's (the public task's entry stays)."""
        discard(self)
        if self.reseeded:
            discard(self.base)
