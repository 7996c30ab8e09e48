"""Top-k selection as an SAE step meets it: a fresh batch every call.

A benchmark that selects from one batch over and over trains the CPU's branch predictor on that
batch, and both torch's top-k and numpy's introselect are branchy: on the same [256, 48] batch at
k = 3 torch's top-k took 17 us a call, inside a fit 100 us (README, Performance, "Top-k selection
on fresh batches"). Each round here selects once from each of ``POOL`` different random batches.

Per shape of the default suite's top-k cells: ``sae.top_k`` (the library's route) against torch's
top-k and numpy's ``argpartition``; and BatchTopK's batch selection (the k * 256 largest of a batch's
positive pre-activations, kept in index order) by torch's top-k and sort against numpy's
``argpartition`` and ``np.sort``. ``summary.py`` prints the time per call.
"""

from collections.abc import Callable

import numpy as np
import pytest
import torch

from structure_bench.sae import top_k, top_k_by_partition

POOL = 64
BATCH = 256
# (n_latents, k) of top-k cells of the default suite, small to wide.
ROWS = [(25, 2), (48, 3), (96, 3), (128, 3), (217, 4), (91, 14), (100, 1), (512, 3), (512, 12), (2048, 3)]
# (positive pre-activations in a batch, k * batch kept), as in BatchTopK steps.
FLAT = [(1500, 768), (5000, 768), (20000, 5120)]


def _torch_rows(pre: torch.Tensor, k: int) -> object:
    return pre.topk(k, dim=1, sorted=False)


def _torch_flat(values: torch.Tensor, kept: int) -> torch.Tensor:
    return values.topk(kept, sorted=False).indices.sort().values


def _numpy_flat(values: torch.Tensor, kept: int) -> torch.Tensor:
    top = np.argpartition(values.numpy(), len(values) - kept)[len(values) - kept :]
    return torch.from_numpy(np.sort(top))


def _rounds(benchmark, select: Callable, pool: list[torch.Tensor], k: int) -> None:
    benchmark.pedantic(lambda: [select(x, k) for x in pool], rounds=20, warmup_rounds=2)
    benchmark.extra_info["us_per_call"] = round(benchmark.stats.stats.min / len(pool) * 1e6, 1)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("route", ["sae.top_k", "torch", "numpy"])
@pytest.mark.parametrize(("n", "k"), ROWS, ids=[f"n{n}-k{k}" for n, k in ROWS])
def test_row_top_k(benchmark, n: int, k: int, route: str) -> None:
    generator = torch.Generator().manual_seed(n * 100 + k)
    pool = [torch.randn(BATCH, n, generator=generator) for _ in range(POOL)]
    select = {"sae.top_k": top_k, "torch": _torch_rows, "numpy": top_k_by_partition}[route]
    chosen, expected = select(pool[0], k)[1].sort(dim=1).values, pool[0].topk(k, dim=1).indices.sort(dim=1).values
    assert torch.equal(chosen, expected)  # the same entries (random floats: no ties)
    _rounds(benchmark, select, pool, k)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("route", ["torch", "numpy"])
@pytest.mark.parametrize(("size", "kept"), FLAT, ids=[f"{s}-keep{k}" for s, k in FLAT])
def test_batch_top_k(benchmark, size: int, kept: int, route: str) -> None:
    generator = torch.Generator().manual_seed(size + kept)
    pool = [torch.rand(size, generator=generator) for _ in range(POOL)]
    assert torch.equal(_torch_flat(pool[0], kept), _numpy_flat(pool[0], kept))  # the same entries, in the same order
    _rounds(benchmark, {"torch": _torch_flat, "numpy": _numpy_flat}[route], pool, kept)
