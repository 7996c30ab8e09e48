"""Clock-versus-pizza diagnostics of Zhong et al. 2023 (arXiv 2306.17844, section 4), computed with
the definitions of their evaluation notebook, and the mechanism checks that separate a pizza from a
clock: the |cos(w_k (a - b) / 2)| signature and the integration check.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import torch

from structure_bench_tasks.pizza.fourier import angular_frequency
from structure_bench_tasks.pizza.model import ModAddTransformer


def correct_logits(logits: np.ndarray, p: int) -> np.ndarray:
    """The logit of the correct answer per pair, [p * p], from logits [p * p, p] (row-major (a, b))."""
    a, b = np.divmod(np.arange(p * p), p)
    return logits[np.arange(p * p), (a + b) % p]


def distance_irrelevance(logits: np.ndarray, p: int) -> float:
    """Zhong et al.'s definition 4.2 on logits [p * p, p].

    With L[(a + b) % p, (a - b) % p] the correct logit: the mean over distances d of the std of
    L[:, d], over the std of all of L. Near 1 when the correct logit ignores a - b (clock),
    low when it depends on it (pizza).
    """
    a, b = np.divmod(np.arange(p * p), p)
    L = np.empty((p, p))
    L[(a + b) % p, (a - b) % p] = correct_logits(logits, p)
    return float(L.std(axis=0).mean() / L.std())


def gradient_symmetricity(model: ModAddTransformer, n_triples: int = 100, seed: int = 42) -> float:
    """Zhong et al.'s definition 4.1, as their evaluation notebook computes it: the mean cosine
    between the gradients of logit c with respect to the two input embeddings E_a and E_b, over the
    first ``n_triples`` of all p^3 triples (a, b, c) in the order ``random.Random(seed).shuffle``
    leaves them (c any output, not only the answer).
    """
    p = model.config.p
    triples = [(a, b, c) for a in range(p) for b in range(p) for c in range(p)]
    random.Random(seed).shuffle(triples)  # Python's Mersenne Twister: the same order everywhere
    a, b, c = np.array(triples[:n_triples]).T
    e_a = model.W_E[a].detach().clone().requires_grad_(True)
    e_b = model.W_E[b].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model.logits_from_embeddings(e_a, e_b)
        # Rows are independent, so the gradient of the sum holds each row's own gradient.
        logits[np.arange(n_triples), c].sum().backward()
    return float(torch.nn.functional.cosine_similarity(e_a.grad, e_b.grad, dim=1).mean())


def circularity(embedding: np.ndarray, p: int, n_components: int = 4) -> float:
    """Zhong et al.'s circularity of embeddings [p, d]: for each of the leading principal components,
    the share of its energy over tokens at its best single frequency; averaged (1 = perfect circles).
    """
    centered = embedding - embedding.mean(axis=0)
    u, s, _ = np.linalg.svd(centered, full_matrices=False)
    scores = u[:, :n_components] * s[:n_components]  # [p, n_components]
    power = np.abs(np.fft.fft(scores, axis=0)) ** 2
    # A real signal's energy at k and p - k is equal: the pair together holds 2 |F_k|^2 / p.
    share = 2 * power[1 : (p - 1) // 2 + 1].max(axis=0) / (p * np.sum(scores**2, axis=0))
    return float(np.clip(share, 0, 1).mean())


def scale_dependence(logits: np.ndarray, p: int, keys: list[int]) -> float:
    """Multiple correlation of the correct logit with |cos(w_k (a - b) / 2)| over the key frequencies.

    Near 1 for a pizza (the integration's scale factor), near 0 for a clock.
    """
    a, b = np.divmod(np.arange(p * p), p)
    features = np.abs(np.cos(np.outer(a - b, angular_frequency(p, np.asarray(keys))) / 2))
    design = np.column_stack([np.ones(p * p), features])
    y = correct_logits(logits, p)
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    return float(np.sqrt(max(0.0, 1 - residual.var() / y.var())))


def integration_check(
    model: ModAddTransformer, hidden: np.ndarray, resid: np.ndarray, fits: pd.DataFrame, assigned: np.ndarray
) -> dict[str, float]:
    """Replace each assigned neuron by the ideal integrand sample of its frequency,
    ReLU(A [cos(w_k a + phi) + cos(w_k b + phi)]) with its fitted A, phi (no constant: Yip et al.'s
    integrand), keep the other neurons, and report what survives over all p^2 pairs:
    ``integration_accuracy`` and ``integration_logit_correlation`` (Pearson, between the
    per-pair-centred logits of the replaced and the real network).

    hidden : [p * p, d_mlp] post-ReLU, resid : [p * p, d_model] the MLP input (row-major (a, b));
    fits : ``fourier.fit_neurons``; assigned : bool [d_mlp].
    """
    p = model.config.p
    a, b = np.divmod(np.arange(p * p), p)
    w = angular_frequency(p, fits.k.to_numpy()[assigned])
    phi, amplitude = fits.phi.to_numpy()[assigned], fits.amplitude.to_numpy()[assigned]
    replaced = hidden.copy()
    replaced[:, assigned] = np.maximum(amplitude * (np.cos(np.outer(a, w) + phi) + np.cos(np.outer(b, w) + phi)), 0)
    with torch.no_grad():
        logits = model.logits_from_hidden(torch.from_numpy(replaced), torch.from_numpy(resid)).numpy()
        real = model.logits_from_hidden(torch.from_numpy(hidden), torch.from_numpy(resid)).numpy()
    centred = [x - x.mean(axis=1, keepdims=True) for x in (logits, real)]
    return {
        "integration_accuracy": float(np.mean(logits.argmax(axis=1) == (a + b) % p)),
        "integration_logit_correlation": float(np.corrcoef(centred[0].ravel(), centred[1].ravel())[0, 1]),
    }
