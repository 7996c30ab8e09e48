"""Which irreducible representations the trained network uses (Chughtai et al. 2023's analysis).

Every real function on S4 splits uniquely into irrep components (the projections onto the spans of
each irrep's matrix elements; together they are an orthogonal decomposition of L2(G)). We apply
that split to the embeddings, to each neuron's pre-activation and to the logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from structure_bench_tasks.group.model import embed, hidden_from_embed, logits_from_hidden
from structure_bench_tasks.group.symmetric import ORDER, inverse, irreps, multiplication_table
from structure_bench_tasks.group.train import all_pairs

# An irrep is key when its character explains at least this share of the logits' variance.
KEY_LOGIT_SHARE = 0.02
# The embedding subspace of an irrep keeps the leading directions carrying this share of its energy.
EMBED_ENERGY = 0.99


def irrep_energy(functions: np.ndarray) -> dict[str, np.ndarray]:
    """Squared norm of each column's component in each non-trivial irrep.

    functions : [ORDER, k], column j a function on the group.
    Returns irrep name -> [k]. The trivial irrep (constants) is left out: a bias absorbs it.
    """
    return {rho.name: ((rho.projector() @ functions) ** 2).sum(0) for rho in irreps()[1:]}


def irrep_component(functions: np.ndarray, name: str) -> np.ndarray:
    """The component [ORDER, k] of functions [ORDER, k] in irrep ``name``."""
    (rho,) = (r for r in irreps() if r.name == name)
    return rho.projector() @ functions


@dataclass(frozen=True)
class NeuronIrreps:
    """Per-neuron irrep assignment, from the pre-activation u_i(x) + v_i(y) + c_i.

    alive : [d_hidden] bool, the neuron fires on some pair.
    irrep : [d_hidden] name of the irrep with the largest share of the pre-activation's variance.
    share : [d_hidden] that share (the trivial part, a constant, is excluded).
    """

    alive: np.ndarray
    irrep: np.ndarray
    share: np.ndarray


def neuron_irreps(weights: dict[str, np.ndarray]) -> NeuronIrreps:
    """Assign each neuron to the irrep explaining most of its pre-activation's variance."""
    d_embed = weights["embed_left"].shape[1]
    W_in = weights["mlp.weight"]
    # The pre-activation is additive: a function of x plus a function of y, [ORDER, d_hidden] each.
    left = weights["embed_left"] @ W_in[:, :d_embed].T
    right = weights["embed_right"] @ W_in[:, d_embed:].T
    energy = {name: e + irrep_energy(right)[name] for name, e in irrep_energy(left).items()}
    names = np.array(list(energy))
    table = np.stack(list(energy.values()))  # [n_irreps, d_hidden]
    x, y, _ = all_pairs()
    alive = hidden_from_embed(weights, embed(weights, x, y)).max(0) > 0
    return NeuronIrreps(alive, names[table.argmax(0)], table.max(0) / table.sum(0))


def logit_shares(logits: np.ndarray) -> dict[str, float]:
    """Share of the logits' variance explained by each irrep's character chi(x y z^-1).

    logits : [ORDER^2, ORDER], row x * ORDER + y. Logits are centred per pair first (softmax
    ignores a shift), which removes the trivial irrep. Characters of distinct irreps are orthogonal
    over the triples, so the shares add up to at most 1.
    """
    centred = logits - logits.mean(1, keepdims=True)
    x, y, _ = all_pairs()
    inverses = np.array([inverse(z) for z in range(ORDER)])
    g = multiplication_table()[multiplication_table()[x, y][:, None], inverses[None, :]]
    total = (centred**2).sum()
    shares = {}
    for rho in irreps()[1:]:
        chi = rho.character[g]
        shares[rho.name] = float((centred * chi).sum() ** 2 / ((chi**2).sum() * total))
    return shares


def key_irreps(weights: dict[str, np.ndarray]) -> list[str]:
    """Irreps whose character explains at least KEY_LOGIT_SHARE of the logit variance, in irreps() order."""
    x, y, _ = all_pairs()
    logits = logits_from_hidden(weights, hidden_from_embed(weights, embed(weights, x, y)))
    return [name for name, share in logit_shares(logits).items() if share >= KEY_LOGIT_SHARE]


def embedding_subspace(weights: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Orthonormal basis [r, 2 * d_embed] of the MLP-input directions carrying irrep ``name``.

    The span of the rows of [P E_left, 0] and [0, P E_right] (P the irrep's projector), truncated to
    the leading singular directions that hold EMBED_ENERGY of their squared norm.
    """
    left = irrep_component(weights["embed_left"], name)
    right = irrep_component(weights["embed_right"], name)
    stacked = np.block([[left, np.zeros_like(right)], [np.zeros_like(left), right]])
    _, singular, vt = np.linalg.svd(stacked, full_matrices=False)
    energy = np.cumsum(singular**2) / (singular**2).sum()
    rank = int(np.searchsorted(energy, EMBED_ENERGY) + 1)
    return vt[:rank]


def embedding_shares(weights: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of the (centred) left and right embeddings' variance in each non-trivial irrep."""
    both = np.concatenate([weights["embed_left"], weights["embed_right"]], axis=1)
    energy = irrep_energy(both)
    total = ((both - both.mean(0)) ** 2).sum()
    return {name: float(e.sum() / total) for name, e in energy.items()}
