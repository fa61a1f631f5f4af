"""Shared fixtures: a temp data dir for every test, the real model path, a tiny random model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.models import DEFAULT_MODEL, resolve_model


@pytest.fixture(autouse=True)
def swarm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data dir: nothing touches the user's store."""
    home = tmp_path / "home"
    monkeypatch.setenv("SWARM_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def real_model() -> Path:
    return resolve_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, real_model: Path) -> Path:
    from tests.tiny_model import write_tiny_gguf

    out = tmp_path_factory.mktemp("models") / "tiny.gguf"
    return write_tiny_gguf(out, real_model)


@pytest.fixture(scope="session")
def tiny_runtime(tiny_model: Path) -> Iterator[object]:
    from engine.runtime import Runtime

    rt = Runtime(tiny_model, n_ctx=512, n_parallel=4, n_batch=256)
    yield rt
    rt.close()
