"""LoRA weights -> a GGUF LoRA adapter llama.cpp loads, and the check that it means the same.

Layout (as llama.cpp's ``convert_lora_to_gguf.py`` writes it): ``general.type = adapter``,
``adapter.type = lora``, ``adapter.lora.alpha``; tensors ``blk.N.<name>.weight.lora_a``
(r x in) and ``.lora_b`` (out x r). For llama models the HF->GGUF conversion permutes the rows
of q and k for RoPE, and transformers undoes that on load, so ``lora_b`` of q_proj and k_proj
must be permuted the same way here. Without it nothing fails: answers are just subtly wrong
(logits cosine ~0.94 instead of >= 0.998, FACTS.md). Qwen2 and Qwen3 use NeoX RoPE, which the
conversion leaves alone: their q/k go out as they are. ``LAYOUTS`` says which is which; the
adapter's ``general.architecture`` is the model's, or llama.cpp refuses it.

No torch at module level: ``write_adapter`` takes numpy arrays.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from engine.errors import TrainingError
from engine.models import sha256_file

#: HF module suffix -> GGUF tensor name
TENSOR_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
#: transformers ``model_type`` (as its GGUF loader names a dequantized model) -> (GGUF
#: architecture, whether q/k rows are permuted). llama.cpp converts Mistral-style models as llama.
LAYOUTS = {
    "llama": ("llama", True),
    "mistral": ("llama", True),
    "qwen2": ("qwen2", False),
    "qwen3": ("qwen3", False),
}
_KEY = re.compile(r"layers\.(\d+)\.(self_attn\.\w+|mlp\.\w+)\.lora_([AB])(?:\.\w+)?\.weight$")


def permute(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute``: reorder rows of a q/k projection for its RoPE layout.

    >>> w = np.arange(8).reshape(8, 1)
    >>> permute(w, 2)[:, 0].tolist()
    [0, 2, 1, 3, 4, 6, 5, 7]
    """
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def layout(model_type: str) -> tuple[str, bool]:
    """(GGUF architecture, permute q/k) for a transformers model type; TrainingError if unknown.

    >>> layout("qwen2"), layout("llama")
    (('qwen2', False), ('llama', True))
    """
    if model_type not in LAYOUTS:
        raise TrainingError(f"cannot export a LoRA for a {model_type!r} model to GGUF: swarm knows "
                            f"{', '.join(sorted(LAYOUTS))} (engine/train/export.py LAYOUTS)")
    return LAYOUTS[model_type]


def gguf_tensors(state: dict[str, np.ndarray], n_head: int, n_head_kv: int,
                 permute_qk: bool = True) -> dict[str, np.ndarray]:
    """Map a PEFT state dict (numpy) to GGUF adapter tensors, permuting q/k ``lora_b`` where the
    architecture's conversion permuted q/k (``permute_qk``; see ``layout``)."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        m = _KEY.search(key)
        if not m:
            continue
        layer, module, ab = int(m.group(1)), m.group(2), m.group(3)
        if module not in TENSOR_NAMES:
            raise TrainingError(f"cannot export LoRA on module {module!r} to GGUF")
        w = np.ascontiguousarray(value, dtype=np.float32)
        if ab == "B" and permute_qk and module == "self_attn.q_proj":
            w = permute(w, n_head, n_head)
        elif ab == "B" and permute_qk and module == "self_attn.k_proj":
            w = permute(w, n_head, n_head_kv)
        out[f"blk.{layer}.{TENSOR_NAMES[module]}.weight.lora_{ab.lower()}"] = np.ascontiguousarray(w)
    if not out:
        raise TrainingError("the trained adapter has no LoRA tensors to export")
    return out


def write_adapter(path: Path, tensors: dict[str, np.ndarray], alpha: float, architecture: str = "llama") -> str:
    """Write the adapter atomically (temp file, fsync, rename); returns its sha256."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    writer = gguf.GGUFWriter(str(tmp), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    for name in sorted(tensors, key=_order):
        writer.add_tensor(name, tensors[name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return sha256_file(path)


def _order(name: str) -> tuple[int, str]:
    m = re.match(r"blk\.(\d+)\.(.*)", name)
    return (int(m.group(1)), m.group(2)) if m else (-1, name)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel()
    b = b.astype(np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def write_peft(out: Path, state: dict[str, np.ndarray], rank: int, alpha: float, targets: list[str]) -> Path:
    """The same LoRA as a PEFT adapter directory (``adapter_config.json``,
    ``adapter_model.safetensors``): what vLLM loads (``/v1/load_lora_adapter``) onto the Hugging
    Face model. PEFT's own state-dict keys, less the adapter's name (``lora_A.default.weight`` ->
    ``lora_A.weight``), as ``save_pretrained`` writes them. Written to a temporary name and renamed."""
    import json
    import shutil

    from safetensors.numpy import save_file

    tensors = {}
    for key, value in state.items():
        if _KEY.search(key):
            tensors[re.sub(r"\.lora_([AB])\.[^.]+\.weight$", r".lora_\1.weight", key)] = \
                np.ascontiguousarray(value, dtype=np.float32)
    if not tensors:
        raise TrainingError("the trained adapter has no LoRA tensors to export")
    tmp = out.with_name(out.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / "adapter_model.safetensors"))
    (tmp / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha, "lora_dropout": 0.0,
        "target_modules": sorted(targets), "bias": "none", "fan_in_fan_out": False, "base_model_name_or_path": None,
    }, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out
