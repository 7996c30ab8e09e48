"""Building each registered task from scratch (`make` into an empty cache directory)."""

import itertools

import pytest

from structure_bench.cache import CACHE_ENV
from structure_bench.registry import list_tasks, make

_fresh = itertools.count()


@pytest.mark.slow
@pytest.mark.parametrize("task_id", list_tasks())
def test_make_task(benchmark, task_id, tmp_path, monkeypatch) -> None:
    def fresh_cache() -> None:
        monkeypatch.setenv(CACHE_ENV, str(tmp_path / f"cache{next(_fresh)}"))

    # The fingerprint hashes every activation and ground-truth array, so it forces the build.
    fingerprint = benchmark.pedantic(lambda: make(task_id).fingerprint, setup=fresh_cache, rounds=1, iterations=1)
    assert len(fingerprint) == 64
