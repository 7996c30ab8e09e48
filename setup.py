"""Package discovery (the metadata is in pyproject.toml).

`tasks/` and `baselines/` install as `structure_bench_tasks` and `structure_bench_baselines`
(the design card's top-level layout, importable names that cannot clash), so their packages are
found here, under those prefixes: a new task folder with an `__init__.py` is packaged without
editing a list. `tests/test_packaging.py` builds the wheel and checks that every built-in task
and baseline is in it.
"""

from setuptools import find_packages, setup

ROOTS = {"structure_bench": "structure_bench", "structure_bench_tasks": "tasks", "structure_bench_baselines": "baselines"}

setup(
    package_dir=ROOTS,
    packages=[
        f"{name}.{sub}" if sub else name
        for name, folder in ROOTS.items()
        for sub in ["", *find_packages(where=folder)]
    ],
)
