"""The dictionary-learner protocol (SPEC section 1) and its boundary checks.

A method is an sklearn-style estimator constructed with ``n_latents``, ``l0_target`` and ``seed``
(plus its own hyperparameters); the constructor only stores them. ``fit(X)`` learns,
``encode(X)`` gives codes, ``decode(Z)`` reconstructions, and ``decoder_`` the dictionary.
Subclassing ``Method`` is optional: any object with these members works.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from structure_bench.errors import MethodError


CALIBRATION_ROLES = ("oracle", "random")  # normalised score 1 and 0


class Method(BaseEstimator):
    """Base class for dictionary learners; gives ``get_params``/``set_params``/``clone``.

    Parameters
    ----------
    n_latents : number of dictionary elements.
    l0_target : desired mean number of active latents per sample (a hint: top-k methods use it
        as k, L1 methods tune to it, dense methods ignore it).
    seed : random seed; a fit is deterministic for a given seed.

    Fitted attributes
    -----------------
    decoder_ : [n_latents, d] dictionary rows.
    decoder_bias_ : [d] added by ``decode`` (zero when the method has none).
    training_ : optional, for iteratively trained methods: ``{"steps": int, "converged": bool,
        "final_loss": float | None, ...}`` (more numeric keys allowed, e.g. "dead_fraction"):
        steps taken, whether the method's stopping rule held before its cap, and the training
        loss at the end. The record keeps it (``training``); see ``training_report``.
    """

    # Calibration methods (oracle) and hypothesis references are handed the truth:
    # fit(X, truth=<the primary structure>), and also structures=<every structure at the site, by
    # name> when their fit names that parameter. They are built at ``reference_size`` latents.
    uses_ground_truth: ClassVar[bool] = False
    # The calibration references normalised scores are computed against: "oracle" (scores 1) or
    # "random" (scores 0). Found by this role, never by name (CALIBRATION_ROLES).
    calibration_role: ClassVar[str | None] = None
    # Methods that only make sense on non-negative sites (NMF); a sweep leaves out the others.
    requires_nonnegative: ClassVar[bool] = False
    # Methods whose codes are non-negative by construction (SAEs, NMF): a negative code is a bug,
    # caught at the boundary (sign-based metrics such as detector_f1 read z > 0 as "on").
    nonnegative_codes: ClassVar[bool] = False
    # False for methods whose fit and codes do not depend on l0_target (dense and clustering
    # methods): a sweep fits them once per width and seed and scores that fit at each of the
    # width's cells (``planning.shared_fits``).
    reads_l0_target: ClassVar[bool] = True

    def __init__(self, n_latents: int, l0_target: int | None = None, seed: int = 0) -> None:
        self.n_latents = n_latents
        self.l0_target = l0_target
        self.seed = seed

    @classmethod
    def reference_size(cls, X: np.ndarray, truth: Any, structures: dict[str, Any]) -> int:
        """For a method that ``uses_ground_truth``: its number of latents on a site with training
        activations X [n_samples, d], primary structure ``truth`` and ``structures`` (the cell's
        width is not used). Default: the primary structure's size (the oracle)."""
        return int(truth.size)

    @classmethod
    def not_applicable(cls, X: np.ndarray, structures: dict[str, Any]) -> str | None:
        """Why the method cannot run on a site with training activations X [n_samples, d] and
        ``structures``, in a few words ("it needs non-negative activations"), or None when it can.
        A sweep leaves the method out there (``planning.plan``) instead of recording a failure."""
        if cls.requires_nonnegative and X.size and X.min() < 0:
            return "it needs non-negative activations"
        return None

    def validate_params(self) -> None:
        """Raise a one-line MethodError naming a hyperparameter out of its range (``lr <= 0``, say).

        ``fit`` should call it first; a sweep calls it on every unit before it fits any
        (``planning.plan``), so a bad ``--param`` is one error at once, not a failed fit per cell.
        The types are checked before that (``check_params``). Default: nothing more to check.
        """

    def fit(self, X: np.ndarray) -> Method:
        """Learn the dictionary from X [n_samples, d]; returns self."""
        raise NotImplementedError

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes Z [n_samples, n_latents] for X [n_samples, d]."""
        raise NotImplementedError

    def decode(self, Z: np.ndarray) -> np.ndarray:
        """Reconstructions X_hat [n_samples, d] from codes Z [n_samples, n_latents]."""
        return np.asarray(Z) @ self.decoder_ + getattr(self, "decoder_bias_", 0.0)


def _finite_matrix(method_name: str, what: str, value: Any, shape: tuple[int, int]) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MethodError(f"method {method_name}: {what} is not a numeric array ({exc})") from None
    if array.shape != shape:
        raise MethodError(f"method {method_name}: {what} has shape {array.shape}, expected {shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise MethodError(f"method {method_name}: {what} contains {int(bad.sum())} NaN/inf values")
    return array


def checked_outputs(
    method: Any, method_name: str, X: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Encode and decode X through a fitted method, checking every output at the boundary.

    Returns (Z [n, n_latents], X_hat [n, d], decoder [n_latents, d], decoder_bias [d]);
    raises MethodError naming the method and the problem (non-finite values, a wrong shape, a
    negative code from a method that declares ``nonnegative_codes``).
    """
    n, d = X.shape
    n_latents = int(method.n_latents)
    decoder = _finite_matrix(method_name, "decoder_", getattr(method, "decoder_", None), (n_latents, d))
    bias = np.asarray(getattr(method, "decoder_bias_", np.zeros(d)), dtype=np.float64).reshape(-1)
    if bias.shape != (d,) or not np.all(np.isfinite(bias)):
        raise MethodError(f"method {method_name}: decoder_bias_ must be {d} finite values")
    Z = _finite_matrix(method_name, "encode(X)", method.encode(X), (n, n_latents))
    if getattr(method, "nonnegative_codes", False) and (Z < 0).any():
        raise MethodError(
            f"method {method_name}: encode(X) has {int((Z < 0).sum())} negative codes (down to {Z.min():.3g}), "
            "but the method declares nonnegative_codes"
        )
    X_hat = _finite_matrix(method_name, "decode(encode(X))", method.decode(Z), (n, d))
    return Z, X_hat, decoder, bias


def not_applicable(method_class: Any, X: np.ndarray, structures: dict[str, Any]) -> str | None:
    """``Method.not_applicable`` for any method class (one that does not subclass Method only has
    ``requires_nonnegative``, if anything)."""
    check = getattr(method_class, "not_applicable", None)
    if check is not None:
        return check(X, structures)
    if getattr(method_class, "requires_nonnegative", False) and X.size and X.min() < 0:
        return "it needs non-negative activations"
    return None


def training_report(method: Any, method_name: str) -> dict[str, Any] | None:
    """The method's ``training_`` checked at the boundary, or None when it has none.

    Raises MethodError when it is not a mapping with an integer ``steps`` >= 0, a boolean
    ``converged`` and a numeric or None ``final_loss`` (extra keys must be numbers or None).
    """
    report = getattr(method, "training_", None)
    if report is None:
        return None
    if not isinstance(report, dict):
        raise MethodError(f"method {method_name}: training_ must be a dict, got {type(report).__name__}")
    steps, converged = report.get("steps"), report.get("converged")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise MethodError(f"method {method_name}: training_['steps'] must be an integer >= 0, got {steps!r}")
    if not isinstance(converged, (bool, np.bool_)):
        raise MethodError(f"method {method_name}: training_['converged'] must be True or False, got {converged!r}")
    checked: dict[str, Any] = {"steps": int(steps), "converged": bool(converged)}
    for key, value in report.items():
        if key in checked:
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))):
            raise MethodError(f"method {method_name}: training_[{key!r}] must be a number or None, got {value!r}")
        checked[str(key)] = None if value is None else float(value)
    checked.setdefault("final_loss", None)
    return checked


def check_method(method_class: type, n_samples: int = 256, d: int = 16, n_latents: int = 8) -> None:
    """Conformance check for a method class, like sklearn's ``check_estimator``.

    Fits on a small planted problem and raises MethodError with what to fix: the constructor's
    signature, ``validate_params`` accepting the defaults, ``fit`` returning self, finite outputs
    of the right shapes, non-negative codes where the class declares ``nonnegative_codes``,
    determinism for a seed, and, where it declares ``reads_l0_target = False``, the same codes
    whatever l0_target says.
    """
    name = getattr(method_class, "__name__", str(method_class))
    rng = np.random.default_rng(0)
    # Non-negative, so that methods for non-negative sites (NMF) can be checked too.
    dictionary = np.abs(rng.normal(size=(n_latents, d)))
    codes = rng.exponential(size=(n_samples, n_latents)) * (rng.random((n_samples, n_latents)) < 0.25)
    X = (codes @ dictionary).astype(np.float32)
    try:
        method = method_class(n_latents=n_latents, l0_target=2, seed=0)
    except TypeError as exc:
        raise MethodError(f"method {name}: constructor must accept n_latents, l0_target, seed ({exc})") from None
    if hasattr(method, "validate_params"):
        try:
            method.validate_params()
        except MethodError as exc:
            raise MethodError(f"method {name}: validate_params refuses the defaults ({exc})") from None
    if getattr(method_class, "uses_ground_truth", False):
        return
    fitted = method.fit(X)
    if fitted is not method:
        raise MethodError(f"method {name}: fit must return self")
    first = checked_outputs(method, name, X)[0]
    again = method_class(n_latents=n_latents, l0_target=2, seed=0).fit(X)
    if not np.allclose(first, checked_outputs(again, name, X)[0], atol=1e-5):
        raise MethodError(f"method {name}: two fits with the same seed give different codes")
    if not getattr(method_class, "reads_l0_target", True):
        other = method_class(n_latents=n_latents, l0_target=5, seed=0).fit(X)
        if not np.allclose(first, checked_outputs(other, name, X)[0], atol=1e-5):
            raise MethodError(
                f"method {name}: declares reads_l0_target = False, but fits at l0_target 2 and 5 give different codes"
            )
