"""The portable task identity: pins, tolerance, invariances, other CPUs' kernels, the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import toy_task  # noqa: F401  (registers toy-v1, which has no pin)

import structure_bench as sb
import structure_bench.identity as identity
from structure_bench.cache import CACHE_ENV
from structure_bench.cli import main
from structure_bench.identity import FLOAT_STATISTICS, IdentityWarning, compare, definition, identity_of, read_pins, statistics
from structure_bench.registry import registry

TASKS = [task_id for task_id, spec in registry().items() if spec.import_spec.startswith("structure_bench_tasks.")]


def _pinned(task_id: str) -> dict:
    task = sb.make(task_id)
    return read_pins(identity.pin_path(task))[task_id]


@pytest.mark.parametrize("task_id", TASKS)
def test_every_builtin_task_matches_its_pin(task_id: str) -> None:
    task = sb.make(task_id)
    entry = _pinned(task_id)
    assert compare(task.statistics, entry["statistics"]) is None
    assert task.identity_check.status == "pinned"
    assert entry["definition"] == definition(task)
    # The pin's identity is what its definition and statistics give, and what the task reports.
    assert entry["identity"] == identity_of(entry["definition"], entry["statistics"]) == task.identity
    assert len(task.identity) == 64 and int(task.identity, 16) >= 0


def _other_cpu_environment(cache: Path) -> dict[str, str]:
    """This machine's environment with other kernels forced: OpenBLAS's from another CPU family,
    numpy without its dispatched SIMD paths, torch's non-vectorised kernels, MKL without AVX."""
    from threadpoolctl import threadpool_info

    try:
        from numpy._core import _multiarray_umath
    except ImportError:  # numpy < 2
        from numpy.core import _multiarray_umath
    native = {info.get("architecture") for info in threadpool_info() if info["internal_api"] == "openblas"}
    return {
        **os.environ,
        CACHE_ENV: str(cache),
        "OPENBLAS_CORETYPE": "Nehalem" if "Sandybridge" in native else "Sandybridge",
        "NPY_DISABLE_CPU_FEATURES": " ".join(_multiarray_umath.__cpu_dispatch__),
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    }


_REPORT = """
import json, sys, warnings
import structure_bench as sb
from structure_bench.identity import IdentityWarning
warnings.simplefilter("error", IdentityWarning)
report = {}
for task_id in sys.argv[1:]:
    task = sb.make(task_id)
    report[task_id] = [task.identity, task.identity_check.status, task.fingerprint]
print(json.dumps(report))
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="the forced kernels are x86 ones")
def test_identities_do_not_change_with_other_cpu_kernels(tmp_path: Path) -> None:
    """All 9 built-in tasks regenerated in a fresh cache under other kernels (about 15 s on 2 cores):
    their exact bytes change (6 of 9 tasks here), their identities do not."""
    out = subprocess.run(
        [sys.executable, "-c", _REPORT, *TASKS], env=_other_cpu_environment(tmp_path / "cache"),
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.splitlines()[-1])
    for task_id in TASKS:
        task = sb.make(task_id)
        assert report[task_id][:2] == [task.identity, "pinned"], task_id
    changed = [task_id for task_id in TASKS if report[task_id][2] != sb.make(task_id).fingerprint]
    assert len(changed) >= 3, f"the forced kernels changed the bytes of only {changed}: they did not take effect"


def test_a_changed_config_or_generator_gives_another_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pinned = _pinned("superposition-v1")
    # Other kwargs: the pin is for another definition, and the statistics say so too.
    louder = sb.make("superposition-v1", noise_std=0.0101)
    assert louder.identity_check.status == "other definition" and "kwargs" in louder.identity_check.detail
    assert louder.identity != pinned["identity"]
    assert "activations/hidden" in compare(louder.statistics, pinned["statistics"])
    # The same kwargs but a changed generator (noise 1% louder): a warning naming the array.
    from structure_bench_tasks.superposition import task as module

    original = module.add_noise
    monkeypatch.setattr(module, "add_noise", lambda rng, clean, std: original(rng, clean, 1.01 * std))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    changed = sb.make("superposition-v1")
    with pytest.warns(IdentityWarning, match=r"superposition-v1 differs .*activations/hidden \w+(\[\d+\])? is .* of its RMS"):
        assert changed.identity != pinned["identity"]
    assert changed.identity_check.status == "differs"


def _with_structure(arrays: sb.TaskArrays, site: str, name: str, structure) -> sb.TaskArrays:
    return dataclasses.replace(arrays, structures={**arrays.structures, site: {**arrays.structures[site], name: structure}})


def test_a_changed_direction_is_detected() -> None:
    task = sb.make("superposition-v1")
    features = task.arrays.structures["hidden"]["features"]
    vectors = features.vectors.copy()
    vectors[5] = np.random.default_rng(9).standard_normal(vectors.shape[1])
    changed = _with_structure(task.arrays, "hidden", "features", dataclasses.replace(features, vectors=vectors))
    difference = compare(statistics(changed), _pinned("superposition-v1")["statistics"])
    assert difference is not None and difference.startswith("structures/hidden/features/vectors")


def test_a_subspace_basis_counts_up_to_rotation_within_its_span() -> None:
    """pizza-ideal-v1's embedding planes come from an SVD: a rotation within a plane (which
    another LAPACK kernel produces) is the same truth, a tilt out of it is not."""
    task = sb.make("pizza-ideal-v1")
    fourier = task.arrays.structures["embed"]["fourier"]
    basis = fourier.bases[0]  # [r, d]
    rotation, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((len(basis), len(basis))))
    rotated = dataclasses.replace(fourier, bases=[rotation @ basis, *fourier.bases[1:]])
    assert not np.allclose(rotated.bases[0], basis)
    pinned = _pinned("pizza-ideal-v1")["statistics"]
    assert compare(statistics(_with_structure(task.arrays, "embed", "fourier", rotated)), pinned) is None
    tilted = basis.copy()
    tilted[0] = np.cos(0.1) * basis[0] + np.sin(0.1) * fourier.bases[1][0]  # towards another plane
    moved = dataclasses.replace(fourier, bases=[tilted, *fourier.bases[1:]])
    difference = compare(statistics(_with_structure(task.arrays, "embed", "fourier", moved)), pinned)
    assert difference is not None and difference.startswith("structures/embed/fourier/projector/0")


def test_every_float32_activation_one_ulp_off_is_within_tolerance() -> None:
    task = sb.make("circles-v1")
    X = task.arrays.activations["hidden"]
    nudged = dataclasses.replace(task.arrays, activations={"hidden": np.nextafter(X, np.float32(np.inf))})
    assert compare(statistics(nudged), task.statistics) is None


def _scaled(task_statistics: dict, factor: float) -> dict:
    """Statistics with every float statistic multiplied by ``factor``."""
    arrays = {}
    for name, summary in task_statistics["arrays"].items():
        if summary["kind"].startswith("float"):
            summary = {**summary, **{
                stat: [v * factor for v in summary[stat]] if isinstance(summary[stat], list) else summary[stat] * factor
                for stat in FLOAT_STATISTICS
            }}
        arrays[name] = summary
    return {**task_statistics, "arrays": arrays}


@pytest.mark.parametrize("task_id", TASKS)
def test_rounded_statistics_ignore_last_bit_changes(task_id: str) -> None:
    """An unpinned identity comes from rounded statistics: relative changes of 1e-13 (ten times what
    other CPUs' kernels gave) keep it, also for projectors whose RMS is a power of two."""
    pinned = _pinned(task_id)["statistics"]
    for factor in (1 - 1e-13, 1 + 1e-13):
        assert identity_of({}, _scaled(pinned, factor)) == identity_of({}, pinned)


def test_unpinned_tasks_get_a_stable_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    identities = []
    for name in ("one", "two"):
        monkeypatch.setenv(CACHE_ENV, str(tmp_path / name))
        task = sb.make("toy-v1")
        assert task.identity_check.status == "unpinned"
        identities.append(task.identity)
    assert identities[0] == identities[1] == sb.make("toy-v1").identity  # fresh, fresh, cached
    assert sb.make("toy-v1", n_samples=601).identity != identities[0]


def test_a_cached_load_reads_the_statistics_from_the_manifest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    expected = sb.make("toy-v1").identity

    def recompute(arrays: sb.TaskArrays) -> dict:
        raise AssertionError("statistics recomputed on a cached load")

    monkeypatch.setattr(identity, "statistics", recompute)
    assert sb.make("toy-v1").identity == expected


def test_pins_round_trip_through_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    """``identity --pin`` into a temporary copy of the pins: what it writes reads back as a pin
    the task matches, next to the folder's other entries unchanged."""
    real_pin_path = identity.pin_path
    for task_id in ("pizza-v1", "pizza-ideal-v1"):
        source = real_pin_path(sb.make(task_id))
        (tmp_path / source.parent.name).mkdir(exist_ok=True)
        shutil.copy(source, tmp_path / source.parent.name / source.name)
    monkeypatch.setattr(identity, "pin_path", lambda task: tmp_path / real_pin_path(task).parent.name / identity.PIN_FILE)
    copy = tmp_path / "pizza" / identity.PIN_FILE
    committed = read_pins(copy)
    tampered = json.loads(json.dumps(committed))
    tampered["pizza-v1"]["statistics"]["arrays"]["activations/hidden"]["chunk_mean"][7] *= 1.01
    copy.write_text(json.dumps(tampered))
    with warnings.catch_warnings():  # the CLI prints warnings on one line each
        warnings.simplefilter("default", IdentityWarning)
        assert main(["identity", "pizza-v1"]) == 2
        err = capsys.readouterr().err
        assert "warning: pizza-v1 differs from its pinned reference statistics" in err
        assert "activations/hidden chunk_mean[7] is" in err and "pizza-v1 differ from their pins" in err
        assert main(["identity", "--pin", "pizza-v1"]) == 0  # the load before pinning still warns
    assert "pinned to" in capsys.readouterr().out
    repinned = read_pins(copy)
    task = sb.make("pizza-v1")
    assert repinned["pizza-v1"]["statistics"] == task.statistics
    assert repinned["pizza-v1"]["identity"] == task.identity == committed["pizza-v1"]["identity"]
    assert repinned["pizza-ideal-v1"] == committed["pizza-ideal-v1"]
    assert main(["identity", "pizza-v1", "pizza-ideal-v1"]) == 0
    assert capsys.readouterr().out.count("matches its pin") == 2


def test_show_and_tasks_print_the_identity(capsys) -> None:
    task = sb.make("tms-v1")
    assert main(["show", "tms-v1"]) == 0
    out = capsys.readouterr().out
    assert f"identity:    {task.identity} (matches its pin" in out
    assert f"fingerprint: {task.fingerprint} (exact bytes" in out
    assert main(["tasks"]) == 0
    assert task.identity[:12] in capsys.readouterr().out
