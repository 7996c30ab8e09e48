"""``check_task``: a task checked as a whole against the task contract (SPEC 1), in the spirit of
scikit-learn's ``check_estimator`` and Gymnasium's environment checker.

It raises a one-line StructureBenchError naming the task and the first problem found:

1. the declaration (``TaskMetadata``, ``model_sites``, ``instance_seed``); a built-in is
   registered under the id it declares and has a card;
2. the arrays can be built; every declared site, and only those, has float32 activations
   [n, d] with finite values, n the rows of the inputs table;
3. train and test indices are disjoint and cover the n samples;
4. every structure at every site fits its site: its dictionary (``Kind.oracle_dictionary``:
   directions, subspace bases) in d dimensions, its per-sample arrays (``PER_SAMPLE_FIELDS``)
   with n rows;
5. the primary structure is at the default site and its kind has a dictionary (the oracle's);
6. the identity is stable (``generate`` computed again gives the same identity) and, for a
   built-in, comes from its pin;
7. at each model site, ``forward`` on the site's activations gives finite logits [n, n_classes]
   (n_classes above every target), its test-split rows on the test split alone, and the
   accuracy the task states in ``validate()`` (``ACCURACY_FIGURES``);
8. the oracle (the primary structure as dictionary) fitted and scored at the first grid cell at
   the primary's width (else the first cell): the main score is among the columns
   ``metrics.evaluate`` computes and finite, and the oracle scores at least ``ORACLE_MIN`` on
   every geometric score of the primary (``GEOMETRIC_METRICS``: the main score too, when it is
   one). A main score that also depends on the codes is only computed: hierarchy-v1's
   ``features/absorption_free`` is about 0.74 for the oracle's OMP codes at k = 2.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NoReturn

import numpy as np

from structure_bench.errors import StructureBenchError
from structure_bench.identity import compare, definition, identity_of, statistics
from structure_bench.kinds import kind_of
from structure_bench.registry import make
from structure_bench.structures import Structure
from structure_bench.task import Task, TaskArrays, check_declaration, is_builtin
from structure_bench.unit import fit_and_score

# validate() figures that state the model's accuracy on every sample (split "all").
ACCURACY_FIGURES = ("accuracy", "accuracy_all_pairs")
# The fields of the structure data classes that hold per-sample arrays (directions' coefficients,
# subspaces' membership, variables' values, curves' points and scales).
PER_SAMPLE_FIELDS = ("coefficients", "membership", "values", "points", "scales")
# The oracle's dictionary is the truth, so it scores 1 on these whatever its codes.
GEOMETRIC_METRICS = ("mcc", "mmcs_truth", "mmcs_learned", "recovered@0.9", "purity", "coverage", "subspace_f")
ORACLE_MIN = 0.99


def check_task(task: Task | str) -> dict[str, float]:
    """Check a task (or a registered task id) as a whole; see the module docstring for the checks.

    Returns the oracle's scores (``metrics.evaluate``'s columns) at the cell it was checked in.
    Raises a one-line StructureBenchError naming the task and the first problem.
    """
    task = make(task) if isinstance(task, str) else task
    check_declaration(task)
    if is_builtin(task):
        _check_builtin(task)
    with _calling(task, "building its arrays"):
        arrays = task.arrays
    _check_activations(task, arrays)
    _check_splits(task, arrays)
    _check_structures(task, arrays)
    _check_primary(task, arrays)
    _check_identity(task)
    if task.model_sites:
        _check_model(task, arrays)
    return _check_oracle(task)


def _fail(task: Task, problem: str) -> NoReturn:
    raise StructureBenchError(" ".join(f"task {task.id}: {problem}".split()))


@contextlib.contextmanager
def _calling(task: Task, what: str) -> Iterator[None]:
    """Report an exception from the task's own code as a failed check of ``what``."""
    try:
        yield
    except Exception as exc:  # whatever the task's code raises is the problem found
        _fail(task, f"{what} raised {type(exc).__name__}: {exc}")


def _check_builtin(task: Task) -> None:
    declared = type(task).metadata.id
    if task.id != declared:
        _fail(task, f"a built-in task is registered under the id it declares, {declared!r}")
    card = task.metadata.card
    if card is None or not card.exists():
        _fail(task, f"a built-in task has a card; {card} does not exist")


def _check_activations(task: Task, arrays: TaskArrays) -> None:
    declared, generated = task.metadata.sites, tuple(arrays.activations)
    if set(declared) != set(generated):
        _fail(task, f"declares sites {declared} but generates activations at {generated}")
    n = len(arrays.inputs)
    for site in declared:
        X = arrays.activations[site]
        if X.dtype != np.float32 or X.ndim != 2 or X.shape[0] != n:
            _fail(task, f"site {site!r}: activations must be float32 [{n}, d] (n: the inputs' rows), "
                        f"got {X.dtype} {X.shape}")
        bad = int(np.size(X) - np.count_nonzero(np.isfinite(X)))
        if bad:
            _fail(task, f"site {site!r}: {bad} activations are NaN or inf")


def _check_splits(task: Task, arrays: TaskArrays) -> None:
    n = len(arrays.inputs)
    train, test = arrays.train_idx, arrays.test_idx
    if not np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n)):
        _fail(task, f"train ({len(train)}) and test ({len(test)}) indices are not disjoint "
                    f"or do not cover the {n} samples")


def _check_structures(task: Task, arrays: TaskArrays) -> None:
    for site, structures in arrays.structures.items():
        n, d = arrays.activations[site].shape
        for name, structure in structures.items():
            problem = _structure_problem(structure, n, d)
            if problem:
                _fail(task, f"structure {name!r} at site {site!r} {problem}")


def _structure_problem(structure: Structure, n: int, d: int) -> str | None:
    """What does not fit a site of n samples and d dimensions, or None."""
    dictionary = kind_of(structure).oracle_dictionary(structure)
    if dictionary is not None and dictionary.shape[1] != d:
        return f"lives in {dictionary.shape[1]} dimensions, its site in {d}"
    for name in PER_SAMPLE_FIELDS:
        values = getattr(structure, name, None)
        if values is not None and len(values) != n:
            return f"has {name} for {len(values)} samples, not {n}"
    return None


def _check_primary(task: Task, arrays: TaskArrays) -> None:
    site, primary = task.metadata.default_site, task.metadata.primary
    structures = arrays.structures.get(site, {})
    if primary not in structures:
        _fail(task, f"the primary structure {primary!r} is not at the default site {site!r} "
                    f"(it has {sorted(structures)})")
    if kind_of(structures[primary]).oracle_dictionary(structures[primary]) is None:
        _fail(task, f"the primary structure {primary!r} is {structures[primary].kind}, "
                    "a kind without a dictionary (the oracle's)")


def _check_identity(task: Task) -> None:
    with _calling(task, "generate() computed again"):
        again = statistics(task.generate())
    task_definition = definition(task)
    if identity_of(task_definition, again) != identity_of(task_definition, task.statistics):
        detail = compare(again, task.statistics) or "past a rounding edge"
        _fail(task, f"its identity is not stable: generate() computed again differs ({detail})")
    if is_builtin(task):
        check = task.identity_check
        if check.status != "pinned":
            _fail(task, f"a built-in task's identity comes from its pin, but it is {check.status!r}: {check.detail}")


def _check_model(task: Task, arrays: TaskArrays) -> None:
    if arrays.targets is None:
        _fail(task, f"has a model at {task.model_sites} but no targets")
    targets, n = arrays.targets, len(arrays.inputs)
    n_classes = int(targets.max()) + 1
    with _calling(task, "validate()"):
        figures = task.validate()
    stated = {key: figures[key] for key in ACCURACY_FIGURES if key in figures}
    for site in task.model_sites:
        with _calling(task, f"forward at site {site!r}"):
            logits = np.asarray(task.forward(task.activations(site, "all"), site, "all"))
            test_logits = np.asarray(task.forward(task.activations(site, "test"), site, "test"))
        if logits.ndim != 2 or logits.shape[0] != n or logits.shape[1] < n_classes:
            _fail(task, f"forward at site {site!r} gives shape {logits.shape}, not [{n}, n_classes >= {n_classes}]")
        if not np.all(np.isfinite(logits)):
            _fail(task, f"forward at site {site!r} gives NaN or inf logits")
        scale = float(np.abs(logits).max())
        if test_logits.shape != (len(arrays.test_idx), logits.shape[1]) or not np.allclose(
            test_logits, logits[arrays.test_idx], rtol=1e-5, atol=1e-6 * scale
        ):
            _fail(task, f"forward at site {site!r} on the test split differs from its test rows on all samples "
                        "(row i of X stands for sample i of the split)")
        correct = int(np.sum(logits.argmax(axis=1) == targets))
        for key, value in stated.items():
            if correct != round(value * n):
                _fail(task, f"forward at site {site!r} has accuracy {correct / n:.4f} on all samples, "
                            f"but validate() states {key} = {value:.4f}")


def _check_oracle(task: Task) -> dict[str, float]:
    """Fit and score the oracle at one cell, as a sweep's unit does (``unit.fit_and_score``), on a
    task that need not be registered, without a record."""
    meta = task.metadata
    site, primary, main = meta.default_site, meta.primary, meta.main_score
    truth = task.primary_structure(site, "train")
    cell = next((c for c in meta.grid if c.n_latents == truth.size), meta.grid[0])
    with _calling(task, f"the oracle at {cell.name}"):
        scores = fit_and_score(task, site, "oracle", cell).metrics
    if main not in scores:
        own = sorted(k for k in scores if "/" not in k or k.startswith(f"{primary}/"))
        _fail(task, f"the main score {main!r} is not among the columns metrics.evaluate computes (e.g. {own})")
    if not np.isfinite(scores[main]):
        _fail(task, f"the main score {main!r} is NaN for the oracle at {cell.name}")
    for metric in (f"{primary}/{name}" for name in GEOMETRIC_METRICS):
        if metric in scores and not scores[metric] >= ORACLE_MIN:
            _fail(task, f"the oracle (the true {primary!r} as dictionary) scores {metric} = {scores[metric]:.4f} "
                        f"at {cell.name}, below {ORACLE_MIN}")
    return scores


__all__ = ["ACCURACY_FIGURES", "GEOMETRIC_METRICS", "ORACLE_MIN", "check_task"]
