"""Task effect of splicing a reconstruction into the model (SPEC 2, Task effect)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy of logits [n, n_classes] against integer targets [n]."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    return float(np.mean(logsumexp(logits, axis=1) - logits[np.arange(len(targets)), targets]))


def accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Share of rows of logits [n, n_classes] whose argmax is the target [n]."""
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(targets)))


def task_effect(
    logits_clean: np.ndarray, logits_spliced: np.ndarray, logits_ablated: np.ndarray, targets: np.ndarray
) -> dict[str, float]:
    """spliced_accuracy, clean_accuracy and loss_recovered.

    logits_* : [n, n_classes] from the clean activations, the reconstruction spliced in, and the
    train-set mean spliced in (mean ablation). targets : [n] int.
    loss_recovered = (L_ablated - L_spliced) / (L_ablated - L_clean), NaN when ablation costs nothing.
    """
    loss_clean = cross_entropy(logits_clean, targets)
    loss_ablated = cross_entropy(logits_ablated, targets)
    gap = loss_ablated - loss_clean
    recovered = (loss_ablated - cross_entropy(logits_spliced, targets)) / gap if gap != 0 else float("nan")
    return {
        "spliced_accuracy": accuracy(logits_spliced, targets),
        "clean_accuracy": accuracy(logits_clean, targets),
        "loss_recovered": recovered,
    }
