"""A tiny planted task and a few methods for testing the harness (importable as ``toy_task``)."""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
import pandas as pd

from structure_bench import Cell, Directions, Method, Task, TaskArrays, TaskMetadata, Variables, register_task


class ToyTask(Task):
    """m sparse non-negative features in d dims; a linear read-out 'model' picks the strongest."""

    metadata = TaskMetadata(
        id="toy-v1",
        description="planted sparse features (test fixture)",
        references=(),
        sites=("hidden",),
        default_site="hidden",
        primary="features",
        main_score="features/mcc",
        grid=(Cell(6, 1), Cell(12, 2)),  # the m = 6 features, and twice as many latents
    )
    model_sites = ("hidden",)
    instance_seed = "seed"

    def __init__(self, id: str, n_samples: int = 600, d: int = 8, m: int = 6, seed: int = 0) -> None:
        super().__init__(id, n_samples=n_samples, d=d, m=m, seed=seed)
        self.n_samples, self.d, self.m, self.seed = n_samples, d, m, seed

    def generate(self) -> TaskArrays:
        rng = np.random.default_rng(self.seed)
        G = rng.normal(size=(self.m, self.d))
        G /= np.linalg.norm(G, axis=1, keepdims=True)
        on = rng.random((self.n_samples, self.m)) < 0.2
        A = on * rng.uniform(0.5, 1.5, size=on.shape)
        X = (A @ G).astype(np.float32)
        strongest = A.argmax(axis=1)
        perm = rng.permutation(self.n_samples)
        return TaskArrays(
            activations={"hidden": X},
            inputs=pd.DataFrame({"strongest": strongest}),
            structures={
                "hidden": {
                    "features": Directions("features", G, A),
                    "inputs": Variables("inputs", pd.DataFrame({"strongest": strongest}), {"strongest": "discrete"}),
                }
            },
            train_idx=np.sort(perm[: self.n_samples * 3 // 4]),
            test_idx=np.sort(perm[self.n_samples * 3 // 4 :]),
            targets=strongest,
            extra={"directions": G},
        )

    def forward(self, X: np.ndarray, site: str | None = None, split: str = "test") -> np.ndarray:
        """Logits [n, m]: X [n, d] read out along the m feature directions."""
        return X @ self.arrays.extra["directions"].T

    def validate(self) -> dict[str, float]:
        """The read-out's accuracy on every sample, from the noiseless codes A G (float64)."""
        G = self.arrays.extra["directions"]
        codes = self.arrays.structures["hidden"]["features"].coefficients
        return {"accuracy": float(np.mean((codes @ G @ G.T).argmax(axis=1) == self.arrays.targets))}


register_task("toy-v1", entry_point=ToyTask)


class LeastSquares(Method):
    """Random dictionary with least-squares codes: a well-behaved method. ``solver`` is a choice
    parameter, for the tests of how the command line checks one."""

    def __init__(
        self, n_latents: int, l0_target: int | None = None, seed: int = 0, solver: Literal["lstsq", "pinv"] = "lstsq"
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed)
        self.solver = solver

    def fit(self, X: np.ndarray) -> LeastSquares:
        rng = np.random.default_rng(1000 + self.seed)  # not the task's own seed
        self.decoder_ = rng.normal(size=(self.n_latents, X.shape[1]))
        self.decoder_ /= np.linalg.norm(self.decoder_, axis=1, keepdims=True)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        if self.solver == "pinv":
            return X @ np.linalg.pinv(self.decoder_)
        return np.linalg.lstsq(self.decoder_.T, X.T, rcond=None)[0].T


class Raises(LeastSquares):
    def fit(self, X: np.ndarray) -> Raises:
        raise RuntimeError("optimiser diverged")


class RaisesSharingItsFit(Raises):
    """Raises in fit, and does not read l0_target: the cells of one width share that failed fit.
    ``fits`` counts the fits tried in this process."""

    reads_l0_target = False
    fits = 0

    def fit(self, X: np.ndarray) -> RaisesSharingItsFit:
        type(self).fits += 1
        return super().fit(X)


class ReturnsNaN(LeastSquares):
    def encode(self, X: np.ndarray) -> np.ndarray:
        Z = super().encode(X)
        Z[0, 0] = np.nan
        return Z


class ClaimsNonnegativeCodes(LeastSquares):
    """Declares non-negative codes but returns least-squares codes of both signs: a protocol bug."""

    nonnegative_codes = True


class ClaimsToIgnoreL0Target(LeastSquares):
    """Declares ``reads_l0_target = False`` but keeps each sample's l0_target largest codes: a protocol bug."""

    reads_l0_target = False

    def encode(self, X: np.ndarray) -> np.ndarray:
        Z = super().encode(X)
        smaller = np.argsort(-np.abs(Z), axis=1)[:, self.l0_target :]
        np.put_along_axis(Z, smaller, 0.0, axis=1)
        return Z


class Slow(LeastSquares):
    """Sleeps in fit so that a test can kill a run half-way."""

    def fit(self, X: np.ndarray) -> Slow:
        time.sleep(0.4)
        return super().fit(X)
