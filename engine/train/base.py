"""Base weights for training: the served GGUF, dequantized once and cached by its sha256.

transformers' GGUF loader (``gguf_file=``) dequantizes the Q4_1 model to fp32, so the adapter
learns against exactly the weights llama.cpp serves. The result is saved as a plain
safetensors checkpoint under ``<home>/cache/base/<sha256>/`` so later rounds (and unsloth,
which loads a directory) start in seconds. Runs inside the training worker (imports torch).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from engine.errors import TrainingError
from engine.models import sha256_file
from engine.paths import cache_root

MARKER = "swarm-base.json"


def base_dir(home: Path, gguf: Path, sha: str | None = None) -> Path:
    """``$SWARM_CACHE/base/SHA`` if set (shared by several data dirs), else ``HOME/cache/base/SHA``."""
    return cache_root(home) / "base" / (sha or sha256_file(gguf))


def ensure_base_checkpoint(home: Path, gguf: Path, log: object = print) -> Path:
    """Return a directory holding the dequantized checkpoint, creating it if needed."""
    sha = sha256_file(gguf)
    out = base_dir(home, gguf, sha)
    if (out / MARKER).exists():
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"dequantizing {gguf.name} for training (once per model file)")  # type: ignore[operator]
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype="float32")
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as e:  # transformers raises many types for unsupported GGUFs
        raise TrainingError(f"transformers cannot load {gguf} for training: {type(e).__name__}: {e}") from e
    # save_pretrained refuses a model that still says it is GGUF-quantized (FACTS.md).
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:
            pass
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    (tmp / MARKER).write_text(json.dumps({"gguf": str(gguf), "sha256": sha}))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out
