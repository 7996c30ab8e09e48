"""The task base class: activations, inputs, ground truth, an optional model, and a card.

A task subclass declares what it is once, as a class attribute ``metadata = TaskMetadata(...)``
(checked when the class is defined), and implements ``generate()`` (pure and deterministic: it
returns the same bytes on every call; on another CPU float arrays may differ in the last bit); the
base class caches what it returns, verifies the cache against its exact fingerprint, gives the task
a portable ``identity`` (``structure_bench.identity``), and serves splits. Tasks with a model also
implement ``forward``. ``structure_bench.check_task`` checks a task as a whole.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from structure_bench.errors import StructureBenchError
from structure_bench.storage import TaskArrays
from structure_bench.structures import Structure

if TYPE_CHECKING:
    from structure_bench.identity import IdentityCheck

Split = Literal["train", "test", "all"]
_ID_PATTERN = re.compile(r"^(?:(?P<module>[\w.]+):)?(?P<name>[A-Za-z0-9_.\-]+?)-v(?P<version>\d+)$")


def parse_task_id(task_id: str) -> tuple[str | None, str, int]:
    """Split a versioned task id ``[module:]name-vN`` into (module, name, version); a one-line
    error otherwise."""
    match = _ID_PATTERN.match(task_id)
    if not match:
        raise StructureBenchError(
            f"malformed task id {task_id!r}: expected 'name-vN' (e.g. 'pizza-v1'), "
            "optionally prefixed by 'module:'"
        )
    return match["module"], match["name"], int(match["version"])


class VersionedId:
    """The name and version of an object's versioned task ``id`` (``parse_task_id``)."""

    id: str

    @property
    def name(self) -> str:
        """The id without its version: "pizza" for "pizza-v1"."""
        return parse_task_id(self.id)[1]

    @property
    def version(self) -> int:
        """The id's version: 1 for "pizza-v1"."""
        return parse_task_id(self.id)[2]


@dataclass(frozen=True)
class Cell:
    """One (n_latents, l0_target) configuration of a task's grid (SPEC 3)."""

    n_latents: int
    l0_target: int

    @property
    def name(self) -> str:
        return f"w{self.n_latents}-k{self.l0_target}"


# Main scores: a result column "<structure>/<metric>" (e.g. "frequencies/subspace_f"), or one of these.
PLAIN_MAIN_SCORES = ("fvu", "l0")
_MAIN_SCORE = re.compile(r"^[^/\s]+/[^/\s]+$")


@dataclass(frozen=True)
class TaskMetadata(VersionedId):
    """What a task is, declared once on its class (``metadata = TaskMetadata(...)``), in the style
    of MTEB's task metadata; every field is checked on construction (a one-line StructureBenchError).

    id : "name-vN", the id the task is registered under (a class registered under another id, a
        variant with other kwargs, gets this declaration under that id).
    sites : the sites ``generate`` returns activations for; ``default_site`` is one of them.
    primary : name of the structure at ``default_site`` that the authors consider the mechanism.
    main_score : the result column that ranks methods on this task, "<structure>/<metric>" (e.g.
        "frequencies/subspace_f") or one of ``PLAIN_MAIN_SCORES``; ``higher_is_better`` its direction.
    grid : the cells methods are compared in (SPEC 3.1), each with 1 <= l0_target <= n_latents.
    references : the sources the task follows (a built-in task names at least one).
    card : the task's README, or None (``description`` stands in for it).
    superseded_by : the id of a newer task that replaces this one in the default suite (it stays
        registered, so results on it stay comparable), or None: the task is in the default suite.
    """

    id: str
    description: str
    references: tuple[str, ...]
    sites: tuple[str, ...]
    default_site: str
    primary: str
    main_score: str
    grid: tuple[Cell, ...]
    higher_is_better: bool = True
    card: Path | None = None
    superseded_by: str | None = None

    def __post_init__(self) -> None:
        for name in ("references", "sites", "grid"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problem = self._problem()
        if problem:
            raise StructureBenchError(f"task metadata {self.id!r}: {problem}")

    def _problem(self) -> str | None:
        """The first thing wrong with the declaration, or None."""
        try:
            plain = parse_task_id(self.id)[0] is None
        except (StructureBenchError, TypeError):
            plain = False
        if not plain:
            return "the id must be 'name-vN' (e.g. 'pizza-v1')"
        if not _is_name(self.description):
            return "description must be a non-empty string"
        if not all(_is_name(ref) for ref in self.references):
            return "references must be non-empty strings"
        if not self.sites or not all(_is_name(site) for site in self.sites) or len(set(self.sites)) < len(self.sites):
            return f"sites must be distinct non-empty names, got {self.sites}"
        if self.default_site not in self.sites:
            return f"default_site {self.default_site!r} is not one of its sites {self.sites}"
        if not _is_name(self.primary) or "/" in self.primary:
            return f"primary must name a structure, got {self.primary!r}"
        if not isinstance(self.main_score, str) or not (
            self.main_score in PLAIN_MAIN_SCORES or _MAIN_SCORE.match(self.main_score)
        ):
            return f"main_score must be '<structure>/<metric>' or one of {PLAIN_MAIN_SCORES}, got {self.main_score!r}"
        if not self.grid:
            return "the grid is empty"
        for cell in self.grid:
            if not isinstance(cell, Cell) or not 1 <= cell.l0_target <= cell.n_latents:
                return f"grid cell {cell!r} must be a Cell with 1 <= l0_target <= n_latents"
        if len(set(self.grid)) < len(self.grid):
            return "the grid repeats a cell"
        if not isinstance(self.higher_is_better, bool):
            return "higher_is_better must be True or False"
        if self.card is not None and not isinstance(self.card, Path):
            return f"card must be a Path or None, got {type(self.card).__name__}"
        if self.superseded_by is not None:
            try:
                parse_task_id(self.superseded_by)
            except (StructureBenchError, TypeError):
                return f"superseded_by must be a task id 'name-vN' or None, got {self.superseded_by!r}"
            if self.superseded_by == self.id:
                return "a task cannot supersede itself"
        return None


def _is_name(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


class Task:
    """Base class of every task. Build one with ``structure_bench.make(task_id)``.

    Subclasses declare ``metadata = TaskMetadata(...)`` as a class attribute, checked with
    ``model_sites`` and ``instance_seed`` when the class is defined (``check_declaration``), and
    implement ``generate``. Tasks whose activations feed a model implement ``forward`` and list
    the sites in ``model_sites``. The declaration describes the registered task: ``make``'s kwarg
    overrides change the arrays (and the identity), not the grid or description.
    """

    metadata: TaskMetadata
    model_sites: tuple[str, ...] = ()
    # The constructor parameter that draws a fresh instance of the same task (a synthetic task's
    # generator seed, fresh samples through a trained model); verify ranks by instances drawn
    # with a secret value of it. None: the task is one instance (a trained model on all its inputs).
    instance_seed: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Abstract bases (SyntheticTask) declare nothing; nor does a task whose instances set
        # their own metadata (a hidden instance takes its base task's).
        if hasattr(cls, "metadata"):
            check_declaration(cls)

    def __init__(self, id: str, **params: Any) -> None:
        # Subclasses call this with their parameters (they key the cache and the identity).
        self.kwargs = params
        declared = getattr(type(self), "metadata", None)
        if declared is not None and declared.id != id:
            # Registered under another id (a variant with other kwargs): the declaration under that id.
            self.metadata = replace(declared, id=id)

    # -- to implement -------------------------------------------------------------------
    def generate(self) -> TaskArrays:
        """Compute the task's arrays from scratch (deterministically)."""
        raise NotImplementedError

    def forward(self, X: np.ndarray, site: str | None = None, split: Split = "test") -> np.ndarray:
        """The model's logits [n_split, n_classes] from activations X [n_split, d_site] at ``site``.

        Row i of X stands for sample i of ``split``, so a model with a residual path can add the
        parts that do not pass through the site.
        """
        raise StructureBenchError(f"task {self.id} has no model at site {site!r}")

    def validate(self) -> dict[str, Any]:
        """Validation figures for the card, recomputed from the task's model and arrays.

        A task with a model states the model's accuracy on all samples as ``accuracy`` (group-v1:
        ``accuracy_all_pairs``); ``check_task`` compares ``forward`` with it.
        """
        return {}

    def data_files(self) -> list[Path]:
        """Shipped data files that define the task (checkpoints); their sha256 is part of its identity."""
        return []

    def source_files(self) -> list[Path]:
        """Files whose content defines the stored arrays (the task's code and data files); they key the cache."""
        return [Path(inspect.getfile(type(self))), *self.data_files()]

    # -- provided -----------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.metadata.id

    @cached_property
    def arrays(self) -> TaskArrays:
        from structure_bench.cache import load_or_generate

        arrays, self._fingerprint, self._statistics = load_or_generate(self)
        return arrays

    @property
    def fingerprint(self) -> str:
        """sha256 of the exact bytes of every array: the integrity check of this machine's cache only.

        Float arrays differ in the last bit from one CPU to another, so compare tasks (records,
        submissions) by ``identity``.
        """
        self.arrays  # noqa: B018  (loading sets the fingerprint)
        return self._fingerprint

    @property
    def statistics(self) -> dict[str, Any]:
        """The reference statistics of the task's arrays (``structure_bench.identity.statistics``)."""
        self.arrays  # noqa: B018  (loading sets the statistics)
        return self._statistics

    @cached_property
    def identity_check(self) -> IdentityCheck:
        """The identity and whether it came from the task's pin (warns once if it differs from it)."""
        from structure_bench.identity import check_identity

        return check_identity(self)

    @property
    def identity(self) -> str:
        """64-hex sha256 of what defines the task (id, kwargs, data files, reference statistics),
        the same on every machine for a pinned task (see ``structure_bench.identity``)."""
        return self.identity_check.identity

    @property
    def sites(self) -> list[str]:
        return list(self.arrays.activations)

    def _site(self, site: str | None) -> str:
        site = site or self.metadata.default_site
        if site not in self.arrays.activations:
            raise StructureBenchError(f"task {self.id} has no site {site!r} (sites: {self.sites})")
        return site

    def _index(self, split: Split) -> np.ndarray:
        if split == "train":
            return self.arrays.train_idx
        if split == "test":
            return self.arrays.test_idx
        if split == "all":
            return np.arange(len(self.arrays.inputs))
        raise StructureBenchError(f"unknown split {split!r}: use 'train', 'test' or 'all'")

    def activations(self, site: str | None = None, split: Split = "train") -> np.ndarray:
        """Activations at ``site`` for ``split``: float32 [n_split, d_site]."""
        return self.arrays.activations[self._site(site)][self._index(split)]

    def inputs(self, split: Split = "train") -> pd.DataFrame:
        """The inputs table for ``split``: one row per sample."""
        return self.arrays.inputs.iloc[self._index(split)].reset_index(drop=True)

    def targets(self, split: Split = "train") -> np.ndarray:
        """Model targets [n_split] (int class labels)."""
        if self.arrays.targets is None:
            raise StructureBenchError(f"task {self.id} has no targets")
        return self.arrays.targets[self._index(split)]

    def structures(self, site: str | None = None, split: Split = "test") -> dict[str, Structure]:
        """Ground-truth structures at ``site``, per-sample arrays restricted to ``split``."""
        idx = self._index(split)
        return {name: s.take(idx) for name, s in self.arrays.structures.get(self._site(site), {}).items()}

    def primary_structure(self, site: str | None = None, split: Split = "test") -> Structure:
        """The structure the task's authors consider the mechanism (at the default site)."""
        site = self._site(site)
        structures = self.structures(site, split)
        if site == self.metadata.default_site:
            return structures[self.metadata.primary]
        # Elsewhere: the first structure that is not a set of variables.
        for structure in structures.values():
            if structure.kind != "variables":
                return structure
        raise StructureBenchError(f"task {self.id} has no geometric structure at site {site!r}")

    def has_model(self, site: str | None = None) -> bool:
        return self._site(site) in self.model_sites

    @property
    def card_text(self) -> str:
        card = self.metadata.card
        return card.read_text() if card and card.exists() else self.metadata.description

    def __repr__(self) -> str:
        return f"<Task {self.id}>"


# The package the built-in tasks install as (``tasks/``): they must name references and be pinned.
BUILTIN_TASK_PACKAGE = "structure_bench_tasks"


def is_builtin(task: Task | type[Task]) -> bool:
    """Whether the task (or task class) is one of the built-in tasks shipped in ``tasks/``."""
    cls = task if isinstance(task, type) else type(task)
    return cls.__module__.split(".")[0] == BUILTIN_TASK_PACKAGE


def check_declaration(task: Task | type[Task]) -> None:
    """Check what a task class (or task) declares beyond its ``TaskMetadata``: its model sites are
    declared sites, its ``instance_seed`` is a constructor parameter, a built-in names references.

    Raises a one-line StructureBenchError naming the class and the problem.
    """
    cls = task if isinstance(task, type) else type(task)
    metadata = task.metadata
    if not isinstance(metadata, TaskMetadata):
        raise StructureBenchError(
            f"task class {cls.__qualname__}: metadata must be a TaskMetadata, got {type(metadata).__name__}"
        )
    where = f"task class {cls.__qualname__} ({metadata.id})"
    undeclared = [site for site in task.model_sites if site not in metadata.sites]
    if undeclared:
        raise StructureBenchError(f"{where}: model_sites {undeclared} are not among its sites {metadata.sites}")
    parameters = inspect.signature(cls.__init__).parameters
    if task.instance_seed is not None and task.instance_seed not in parameters:
        raise StructureBenchError(
            f"{where}: instance_seed {task.instance_seed!r} is not a parameter of its constructor"
        )
    if is_builtin(cls) and not metadata.references:
        raise StructureBenchError(f"{where}: a built-in task names its references")
