"""The wheel holds every built-in task (its code, card, identity pin and checkpoints) and every
built-in baseline: packages are discovered (setup.py), so a new folder cannot be left out."""

from __future__ import annotations

import inspect
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from structure_bench.methods.registry import METHOD_ENTRY_POINT_GROUP
from structure_bench.plugins import import_object
from structure_bench.registry import registry

ROOT = Path(__file__).resolve().parents[1]
# The installed name of each top-level folder (setup.py's ROOTS).
INSTALLED = {"structure_bench": "structure_bench", "tasks": "structure_bench_tasks", "baselines": "structure_bench_baselines"}


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    # Built from a copy of the tree: setuptools leaves build/ behind, and a stale build/ would
    # put files in the wheel that the tree no longer has.
    source = tmp_path_factory.mktemp("source") / "structure_bench"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "results", "build", "*.egg-info", "__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(source), "-w", str(out)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = out.glob("structure_bench-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def _in_wheel(path: Path) -> str:
    """Where a file of the source tree lands in the wheel."""
    relative = path.resolve().relative_to(ROOT)
    return "/".join([INSTALLED[relative.parts[0]], *relative.parts[1:]])


def test_every_source_file_and_task_asset_of_the_tree_is_in_the_wheel(wheel_files: set[str]) -> None:
    expected = [
        path for folder in INSTALLED for path in (ROOT / folder).rglob("*")
        if (path.suffix in (".py", ".md", ".json", ".safetensors") or path.name == "LICENSE")
        and "__pycache__" not in path.parts
        and (path.parent / "__init__.py").exists()
    ]
    assert len(expected) > 60
    missing = sorted(_in_wheel(p) for p in expected if _in_wheel(p) not in wheel_files)
    assert not missing, f"left out of the wheel: {missing}"


def test_every_registered_builtin_task_and_baseline_is_in_the_wheel(wheel_files: set[str]) -> None:
    tasks = [
        import_object(spec.entry_point, "task") if isinstance(spec.entry_point, str) else spec.entry_point
        for spec in registry().values() if spec.import_spec.startswith("structure_bench_tasks")
    ]
    assert len(tasks) >= 9
    for entry_point in tasks:
        source = Path(inspect.getsourcefile(entry_point))
        folder = source.parent
        for asset in [source, folder / "README.md", *folder.glob("*.safetensors"), *folder.glob("identity.json"), *folder.glob("LICENSE")]:
            assert asset.exists() and _in_wheel(asset) in wheel_files, asset
    for ep in entry_points(group=METHOD_ENTRY_POINT_GROUP):
        module = ep.value.partition(":")[0]
        if module.startswith("structure_bench"):
            assert f"{module.replace('.', '/')}.py" in wheel_files, ep


def test_every_declared_builtin_task_class_is_an_entry_point() -> None:
    """A task folder whose class is not in pyproject.toml's entry points would be silently absent."""
    import importlib
    import pkgutil

    import structure_bench_tasks

    from structure_bench.task import Task

    registered = {spec.import_spec for spec in registry().values()}
    declared = set()
    for info in pkgutil.walk_packages(structure_bench_tasks.__path__, "structure_bench_tasks."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Task) and obj.__module__ == info.name and "metadata" in vars(obj):
                declared.add(f"{obj.__module__}:{obj.__qualname__}")
    assert len(declared) >= 9 and declared <= registered, f"not registered: {sorted(declared - registered)}"
