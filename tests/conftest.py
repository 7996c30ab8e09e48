"""Shared test set-up: an isolated task cache per test session."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory):
    """Tests build tasks into a fresh cache so they never read a user's (or a stale) one."""
    monkeypatch = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("STRUCTURE_BENCH_CACHE", str(path))
    yield path
    monkeypatch.undo()
