"""Floating-point modes for methods' fits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def subnormals_flushed() -> bool:
    """Whether this thread flushes subnormals now: with DAZ a subnormal input reads as 0."""
    return bool(torch.tensor([1e-41]).mul(1.0).item() == 0)


@contextmanager
def flushed_subnormals() -> Iterator[None]:
    """Flush subnormal floats to zero (the CPU's FTZ/DAZ modes, this thread) inside the block, and
    restore the previous mode after it.

    Values that shrink geometrically towards 0 pass through float32's subnormal range (below
    1.2e-38): NMF's codes and atoms where a latent is unused; an SAE's Adam moments for latents
    that get no gradient for a few hundred steps (about 8% of the moments at a time on the authors'
    pizza at 2048 latents). CPUs that take a microcode trap per subnormal (Intel's: one
    1000x2048x2048 sgemm 24 s instead of 0.15 s) slow down by orders of magnitude; flushed, they are
    exact zeros on every machine. BLAS threads other than the caller's keep their own modes: the
    runner gives each fit one thread.
    """
    previous = subnormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(previous)
