"""Shared fixtures: a temp data dir for every test, the real model path, a tiny random model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.models import DEFAULT_MODEL, resolve_model


@pytest.fixture(scope="session")
def swarm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the session (converted weights, auto's measurement, dequantized bases): what a
    machine computes once is computed once per test run, and never in the user's cache."""
    return tmp_path_factory.mktemp("swarm-cache")


@pytest.fixture(autouse=True)
def swarm_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swarm_cache: Path) -> Path:
    """Every test gets its own data dir: nothing touches the user's store."""
    home = tmp_path / "home"
    monkeypatch.setenv("SWARM_HOME", str(home))
    monkeypatch.setenv("SWARM_CACHE", str(swarm_cache))
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


#: What the tests' recipes build on: recipes/plain.toml (plain answers, a judge that gives verdicts,
#: 24 tasks and 30 steps a round), which stays put when the default recipe's settings change.
BASE_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "plain.toml"


def small_recipe(tmp_path: Path, model: Path | str, **overrides: str) -> Path:
    """recipes/plain.toml shrunk to a handful of tasks and tokens, on ``model``."""
    text = BASE_RECIPE.read_text()
    changes = {
        'path = "builtin:smollm2-135m"': f'path = "{model}"',
        "n_ctx = 1024": "n_ctx = 512",
        "generated = 24": "generated = 4",
        "proposed = 4": "proposed = 2",
        "dev = 100": "dev = 6",
        "test = 100": "test = 6",
        **overrides,
    }
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    out = tmp_path / "small.toml"
    out.write_text(text)
    return out


@pytest.fixture
def tiny_recipe(tmp_path: Path, tiny_model: Path) -> Path:
    return small_recipe(tmp_path, tiny_model)
