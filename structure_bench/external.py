"""Dictionaries trained elsewhere, scored like any method (``structure-bench score``).

Three formats, all read as weights only (nothing in a file is executed):

- a plain safetensors file with ``W_enc`` [d, L], ``b_enc`` [L], ``W_dec`` [L, d], ``b_dec`` [d]
  (SAELens's orientation) and, for ``jumprelu``, ``threshold`` [L]; the activation comes from the
  command line or the file's metadata (``{"activation": "topk", "k": "8"}``);
- a SAELens saved SAE directory (``cfg.json`` and ``sae_weights.safetensors``, as
  ``SAE.save_model`` writes them; architectures ``standard``, ``topk``, ``jumprelu``);
- a dictionary_learning ``ae.pt`` state dict (``torch.load(weights_only=True)``): its
  ``AutoEncoder`` (``encoder.weight`` [L, d], ``encoder.bias``, ``decoder.weight`` [d, L],
  ``bias``), ``AutoEncoderTopK`` (the same with ``b_dec`` and ``k``) or JumpReLU (``W_enc``,
  ``b_enc``, ``W_dec``, ``b_dec``, ``threshold``) layouts.

Every encoder computes pre = (x - b_dec) W_enc + b_enc (SAELens's ``apply_b_dec_to_input``
false: x W_enc + b_enc), then ``relu``: max(pre, 0); ``topk``: the k largest of max(pre, 0) per
sample; ``jumprelu``: pre where pre > threshold, else 0. The reconstruction is z W_dec + b_dec.

A method with no encoder gives its codes of the test split directly (``--codes``: .npy, or a
safetensors ``codes`` tensor, [n_test, L] in the row order of the exported test.npy) with the
decoder they reconstruct through (``--decoder``: safetensors ``W_dec`` [L, d], ``b_dec`` [d]).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from structure_bench.errors import MethodError, StructureBenchError
from structure_bench.identity import file_sha256
from structure_bench.methods.protocol import Method

ACTIVATIONS = ("relu", "topk", "jumprelu")
SAELENS_ARCHITECTURES = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu"}


@dataclass
class Dictionary:
    """A loaded dictionary: W_enc [d, L], b_enc [L], W_dec [L, d], b_dec [d], its activation (k for
    topk, threshold [L] for jumprelu), and where it came from (``source``: format, path, sha256 and
    the task identity the file declares, if any)."""

    W_enc: np.ndarray
    b_enc: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray
    activation: str
    k: int | None = None
    threshold: np.ndarray | None = None
    subtract_b_dec: bool = True
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def n_latents(self) -> int:
        return int(self.W_dec.shape[0])

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, L] for X [n_samples, d]."""
        X = np.asarray(X, dtype=np.float64)
        pre = ((X - self.b_dec) if self.subtract_b_dec else X) @ self.W_enc + self.b_enc
        if self.activation == "jumprelu":
            return np.where(pre > self.threshold, pre, 0.0)
        codes = np.maximum(pre, 0.0)
        if self.activation == "topk" and self.k < codes.shape[1]:
            drop = np.argpartition(-codes, self.k - 1, axis=1)[:, self.k :]
            np.put_along_axis(codes, drop, 0.0, axis=1)
        return codes

    def check(self, d: int) -> None:
        """Raise a one-line StructureBenchError for shapes that do not fit a site of width d, a
        missing k or threshold, or non-finite weights."""
        where = self.source.get("path", "dictionary")
        L = self.W_dec.shape[0] if self.W_dec.ndim == 2 else -1
        expected = {"W_enc": (d, L), "b_enc": (L,), "W_dec": (L, d), "b_dec": (d,)}
        if self.activation == "jumprelu":
            expected["threshold"] = (L,)
        check_arrays(where, {name: (getattr(self, name), shape) for name, shape in expected.items()}, d)
        if self.activation not in ACTIVATIONS:
            raise StructureBenchError(f"{where}: unknown activation {self.activation!r} (known: {', '.join(ACTIVATIONS)})")
        if self.activation == "topk" and (self.k is None or not 1 <= self.k <= L):
            raise StructureBenchError(f"{where}: a topk dictionary needs k between 1 and {L}, got {self.k!r}")


def check_arrays(where: str, arrays: dict[str, tuple[np.ndarray | None, tuple[int, ...]]], d: int) -> None:
    """One-line StructureBenchError for the first array (name -> (array, expected shape)) that is
    missing, has another shape, or holds NaN/inf values; d is the site's width, named in the error."""
    for name, (value, shape) in arrays.items():
        if value is None or value.shape != shape:
            got = None if value is None else tuple(value.shape)
            raise StructureBenchError(f"{where}: {name} has shape {got}, expected {shape} for this site (d = {d})")
        bad = int(np.count_nonzero(~np.isfinite(value)))
        if bad:
            raise StructureBenchError(f"{where}: {name} has {bad} NaN/inf values")


def _array(tensors: dict[str, Any], key: str, where: str) -> np.ndarray:
    if key not in tensors:
        raise StructureBenchError(f"{where}: no tensor {key!r} (it has: {', '.join(sorted(tensors)) or 'none'})")
    value = tensors[key]
    return np.asarray(value.detach().cpu().double().numpy() if hasattr(value, "detach") else value, dtype=np.float64)


def _safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}, dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise StructureBenchError(f"{path}: not a readable safetensors file ({' '.join(str(exc).split())})") from None


def _from_safetensors(path: Path, activation: str | None, k: int | None) -> Dictionary:
    tensors, metadata = _safetensors(path)
    where = str(path)
    declared = metadata.get("activation")
    if activation and declared and activation != declared:
        raise StructureBenchError(f"{where}: the file's activation is {declared}, not {activation}")
    activation = activation or declared
    if activation is None:
        raise StructureBenchError(f"{where}: say its activation (--activation relu|topk|jumprelu) or store it in the file's metadata")
    k = k if k is not None else (int(metadata["k"]) if "k" in metadata else None)
    return Dictionary(
        _array(tensors, "W_enc", where), _array(tensors, "b_enc", where), _array(tensors, "W_dec", where),
        _array(tensors, "b_dec", where), activation, k,
        _array(tensors, "threshold", where) if "threshold" in tensors else None,
        source={"format": "safetensors", "task_identity": metadata.get("task_identity")},
    )


def _from_saelens(path: Path) -> Dictionary:
    where = str(path)
    try:
        cfg = json.loads((path / "cfg.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StructureBenchError(f"{where}: cfg.json is not readable JSON ({exc})") from None
    architecture = cfg.get("architecture", "standard")
    if architecture not in SAELENS_ARCHITECTURES:
        raise StructureBenchError(f"{where}: SAELens architecture {architecture!r} is not read here (known: {', '.join(SAELENS_ARCHITECTURES)})")
    if cfg.get("normalize_activations") not in (None, "none"):
        raise StructureBenchError(f"{where}: its inputs are normalised ({cfg['normalize_activations']}); fold the scaling into the weights before saving")
    tensors, _ = _safetensors(path / "sae_weights.safetensors")
    activation = SAELENS_ARCHITECTURES[architecture]
    return Dictionary(
        _array(tensors, "W_enc", where), _array(tensors, "b_enc", where), _array(tensors, "W_dec", where),
        _array(tensors, "b_dec", where), activation, cfg.get("k"),
        _array(tensors, "threshold", where) if activation == "jumprelu" else None,
        subtract_b_dec=bool(cfg.get("apply_b_dec_to_input", True)),
        source={"format": "saelens", "task_identity": (cfg.get("metadata") or {}).get("task_identity")},
    )


def _from_dictionary_learning(path: Path) -> Dictionary:
    import torch

    where = str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise StructureBenchError(
            f"{where}: holds pickled objects, not only tensors; it is read with weights_only=True and nothing in it runs"
        ) from None
    except (OSError, RuntimeError, EOFError) as exc:
        raise StructureBenchError(f"{where}: not a readable torch state dict ({' '.join(str(exc).split())[:200]})") from None
    if not isinstance(state, dict):
        raise StructureBenchError(f"{where}: expected a state dict, got {type(state).__name__}")
    if "W_enc" in state:  # JumpReLU layout
        return Dictionary(
            _array(state, "W_enc", where), _array(state, "b_enc", where), _array(state, "W_dec", where),
            _array(state, "b_dec", where), "jumprelu", None, _array(state, "threshold", where),
            source={"format": "dictionary_learning"},
        )
    b_dec = _array(state, "b_dec" if "b_dec" in state else "bias", where)
    k = int(_array(state, "k", where)) if "k" in state else None
    return Dictionary(
        _array(state, "encoder.weight", where).T, _array(state, "encoder.bias", where),
        _array(state, "decoder.weight", where).T, b_dec, "topk" if k is not None else "relu", k,
        source={"format": "dictionary_learning"},
    )


def load_dictionary(path: str | Path, activation: str | None = None, k: int | None = None) -> Dictionary:
    """The dictionary at ``path``: a SAELens directory, a ``.safetensors`` file or a
    dictionary_learning ``.pt``/``.pth`` state dict (see the module docstring). ``activation`` and
    ``k`` say how a plain safetensors file encodes. One-line StructureBenchError on a bad file."""
    path = Path(path)
    if not path.exists():
        raise StructureBenchError(f"dictionary {path} does not exist")
    if path.is_dir():
        if not (path / "cfg.json").exists():
            raise StructureBenchError(f"{path}: a directory must be a SAELens SAE (cfg.json and sae_weights.safetensors)")
        dictionary = _from_saelens(path)
    elif path.suffix == ".safetensors":
        dictionary = _from_safetensors(path, activation, k)
    elif path.suffix in (".pt", ".pth"):
        dictionary = _from_dictionary_learning(path)
    else:
        raise StructureBenchError(f"{path}: expected a .safetensors file, a dictionary_learning .pt or a SAELens directory")
    if activation is not None and activation != dictionary.activation:
        raise StructureBenchError(f"{path}: the file's activation is {dictionary.activation}, not {activation}")
    dictionary.source |= {"path": str(path.resolve()), "sha256": file_sha256(path)}
    return dictionary


class ExternalDictionary(Method):
    """A dictionary trained elsewhere (``load_dictionary``): ``fit`` reads it and checks it
    against the site's width; nothing is learned. Build it with n_latents = the file's width
    (``structure-bench score`` does).

    dictionary : path of the file or SAELens directory. activation, k : for a plain safetensors
    file without that metadata. sha256 : the file's digest when it was chosen (``file_sha256``);
    a file that has changed since fails the fit instead of being scored under the old name.

    Fitted attributes: decoder_ [n_latents, d] (W_dec), decoder_bias_ [d] (b_dec), source_ (format,
    path, sha256, declared task identity: kept in the record's provenance).
    """

    def __init__(
        self, n_latents: int, l0_target: int | None = None, seed: int = 0, dictionary: str = "",
        activation: str | None = None, k: int | None = None, sha256: str | None = None,
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed)
        self.dictionary = dictionary
        self.activation = activation
        self.k = k
        self.sha256 = sha256

    def fit(self, X: np.ndarray) -> ExternalDictionary:
        """X : [n_samples, d] (only its width is used)."""
        try:
            self.dictionary_ = load_dictionary(self.dictionary, self.activation, self.k)
            self.dictionary_.check(np.shape(X)[1])
        except StructureBenchError as exc:
            raise MethodError(str(exc)) from None
        if self.sha256 is not None and self.dictionary_.source["sha256"] != self.sha256:
            raise MethodError(f"{self.dictionary}: the file changed since it was chosen (sha256 differs)")
        if self.dictionary_.n_latents != self.n_latents:
            raise MethodError(f"{self.dictionary}: {self.dictionary_.n_latents} latents, but n_latents={self.n_latents}")
        self.decoder_ = self.dictionary_.W_dec
        self.decoder_bias_ = self.dictionary_.b_dec
        self.source_ = dict(self.dictionary_.source)
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """Codes [n_samples, n_latents] for X [n_samples, d]."""
        return self.dictionary_.encode(X)


@dataclass
class Codes:
    """Codes given directly, for a method with no encoder: codes [n_test, L] of the task's test
    split (rows in the order ``structure-bench export`` writes test.npy), the decoder W_dec [L, d]
    and b_dec [d] (zeros when the file has none), and where each came from (format, path, sha256)."""

    codes: np.ndarray
    W_dec: np.ndarray
    b_dec: np.ndarray
    source: dict[str, Any]

    @property
    def n_latents(self) -> int:
        return int(self.W_dec.shape[0])

    def check(self, n_test: int, d: int) -> None:
        """One-line StructureBenchError unless codes [n_test, L], W_dec [L, d], b_dec [d] are finite."""
        L = self.W_dec.shape[0] if self.W_dec.ndim == 2 else -1
        check_arrays(self.source["decoder"]["path"], {"W_dec": (self.W_dec, (L, d)), "b_dec": (self.b_dec, (d,))}, d)
        if self.codes.shape != (n_test, L):
            raise StructureBenchError(
                f"{self.source['path']}: codes have shape {self.codes.shape}, expected ({n_test}, {L}): one row per "
                f"test sample (test.npy of structure-bench export), one column per decoder row"
            )
        check_arrays(self.source["path"], {"codes": (self.codes, (n_test, L))}, d)


def _codes_array(path: Path) -> np.ndarray:
    """The array of a .npy file (no pickles) or of a safetensors file's ``codes`` tensor (or its only one)."""
    if path.suffix == ".npy":
        try:
            return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
        except ValueError as exc:
            raise StructureBenchError(f"{path}: not a plain .npy array ({' '.join(str(exc).split())})") from None
    if path.suffix == ".safetensors":
        tensors, _ = _safetensors(path)
        key = "codes" if "codes" in tensors or len(tensors) != 1 else next(iter(tensors))
        return _array(tensors, key, str(path))
    raise StructureBenchError(f"{path}: codes must be a .npy or .safetensors file")


def load_codes(codes: str | Path, decoder: str | Path) -> Codes:
    """Codes of the test split (``codes``: .npy, or safetensors with a ``codes`` tensor) and the
    decoder they reconstruct through (``decoder``: safetensors with ``W_dec`` [L, d] and optionally
    ``b_dec`` [d]). One-line StructureBenchError on a bad file."""
    codes, decoder = Path(codes), Path(decoder)
    for path in (codes, decoder):
        if not path.is_file():
            raise StructureBenchError(f"{path} does not exist or is not a file")
    if decoder.suffix != ".safetensors":
        raise StructureBenchError(f"{decoder}: the decoder must be a safetensors file with W_dec and b_dec")
    tensors, _ = _safetensors(decoder)
    W_dec = _array(tensors, "W_dec", str(decoder))
    b_dec = _array(tensors, "b_dec", str(decoder)) if "b_dec" in tensors else np.zeros(W_dec.shape[-1])
    source = {
        "format": "codes", "path": str(codes.resolve()), "sha256": file_sha256(codes),
        "decoder": {"path": str(decoder.resolve()), "sha256": file_sha256(decoder)},
    }
    return Codes(_codes_array(codes), W_dec, b_dec, source)


class ExternalCodes(Method):
    """Codes of the test split and a decoder computed elsewhere (``load_codes``), for methods with
    no encoder: ``fit`` reads them; ``encode`` returns the codes and refuses any other input.

    codes, decoder : paths (see ``load_codes``). sha256, decoder_sha256 : their digests when they
    were chosen; a file that has changed since fails the fit.

    Fitted attributes: decoder_ [n_latents, d], decoder_bias_ [d], source_ (kept in the provenance).
    """

    def __init__(
        self, n_latents: int, l0_target: int | None = None, seed: int = 0, codes: str = "", decoder: str = "",
        sha256: str | None = None, decoder_sha256: str | None = None,
    ) -> None:
        super().__init__(n_latents=n_latents, l0_target=l0_target, seed=seed)
        self.codes = codes
        self.decoder = decoder
        self.sha256 = sha256
        self.decoder_sha256 = decoder_sha256

    def fit(self, X: np.ndarray) -> ExternalCodes:
        """X : [n_samples, d] (only its width is used)."""
        try:
            given = load_codes(self.codes, self.decoder)
        except StructureBenchError as exc:
            raise MethodError(str(exc)) from None
        if (self.sha256, self.decoder_sha256) != (None, None) and (
            given.source["sha256"], given.source["decoder"]["sha256"]) != (self.sha256, self.decoder_sha256):
            raise MethodError(f"{self.codes}: the codes or decoder file changed since they were chosen (sha256 differs)")
        if given.n_latents != self.n_latents:
            raise MethodError(f"{self.decoder}: {given.n_latents} latents, but n_latents={self.n_latents}")
        self.codes_ = given.codes
        self.decoder_ = given.W_dec
        self.decoder_bias_ = given.b_dec
        self.source_ = given.source
        return self

    def encode(self, X: np.ndarray) -> np.ndarray:
        """The given codes [n_test, n_latents]; X [n_test, d] must be the test split they were computed on."""
        if len(X) != len(self.codes_):
            raise MethodError(f"{self.codes}: codes are given for the {len(self.codes_)} test samples only, not for {len(X)} inputs")
        return self.codes_


# The classes of dictionaries trained elsewhere (``module:Class``): the leaderboard cannot re-run
# their trainer, so a submission of their records is an unverified entry, shown apart as "not re-run".
TRAINED_ELSEWHERE = frozenset(f"{cls.__module__}:{cls.__qualname__}" for cls in (ExternalDictionary, ExternalCodes))
