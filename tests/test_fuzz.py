"""Bad input, fuzzed: every broken recipe is a RecipeError naming the file; never a crash."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import RecipeError, TrainingError
from engine.recipes import parse_recipe

DEFAULT = (Path(__file__).resolve().parent.parent / "recipes" / "default.toml").read_text()
BASE = tomllib.loads(DEFAULT)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=20), st.lists(st.integers(), max_size=3))


def to_toml(value: object) -> str:
    import json

    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(to_toml(v) for v in value) + "]"  # type: ignore[attr-defined]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    try:
        parse_recipe(text, "fuzz.toml")
    except RecipeError as e:
        assert str(e).startswith("fuzz.toml: ")


@settings(max_examples=200, deadline=None)
@given(table=st.sampled_from(["model", "task", "round", "train", "eval"]), key=st.text(min_size=1, max_size=12),
       value=scalars, known=st.booleans())
def test_wrong_types_unknown_keys_out_of_range(table: str, key: str, value: object, known: bool) -> None:
    if known:
        key = sorted(BASE.get(table, {"x": 1}))[hash(key) % len(BASE.get(table, {"x": 1}))]
    safe_key = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    text = DEFAULT.replace(f"[{table}]\n", f"[{table}]\n{safe_key} = {to_toml(value)}\n", 1)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass  # duplicate key and the like: still must be a RecipeError
    try:
        parse_recipe(text, "fuzz.toml")
    except RecipeError as e:
        msg = str(e)
        assert msg.startswith("fuzz.toml: ")
        assert "not valid TOML" in msg or table in msg or "agents" in msg


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 3))
def test_empty_or_missing_roles(n: int) -> None:
    text = DEFAULT.split("[[agents]]")[0] + "".join(
        f'[[agents]]\nname = "a{i}"\nrole = "critic"\n' for i in range(n)) + DEFAULT[DEFAULT.index("[task]"):]
    with pytest.raises(RecipeError, match="fuzz.toml: agents"):
        parse_recipe(text, "fuzz.toml")


def test_disk_space_is_checked_before_training(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil
    from collections import namedtuple

    from engine.train.runner import check_disk

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 10**12 - 10**6, 10**6))
    with pytest.raises(TrainingError, match="not enough free disk space"):
        check_disk(tmp_path)
