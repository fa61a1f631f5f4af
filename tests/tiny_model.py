"""Write a tiny llama- or qwen2-architecture GGUF with random weights, for fast engine tests.

The tokenizer and chat template are copied from the real default model so prompts tokenize
and format exactly as in production; the network is 2 layers of width 64, so it loads in
milliseconds and generates (nonsense) at thousands of tokens per second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_tiny_gguf(
    out: Path,
    source: Path,
    *,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    n_ctx: int = 2048,
    seed: int = 0,
    arch: str = "llama",
) -> Path:
    """``arch`` qwen2 adds the q/k/v biases that architecture has (llama.cpp picks its NeoX RoPE)."""
    import gguf

    reader = gguf.GGUFReader(source, "r")
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_name(f"tiny-random-{arch}")
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    n_vocab = 0
    for name, fld in reader.fields.items():
        if not name.startswith("tokenizer."):
            continue
        vtype = fld.types[0]
        value = fld.contents()
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = fld.types[-1]
            if name == "tokenizer.ggml.tokens":
                n_vocab = len(value)
            writer.add_key_value(name, value, vtype, sub_type=sub)
        else:
            writer.add_key_value(name, value, vtype)
    assert n_vocab, "source GGUF has no tokenizer.ggml.tokens"
    writer.add_vocab_size(n_vocab)

    rng = np.random.default_rng(seed)
    head_dim = n_embd // n_head

    def w(*shape: int, scale: float = 0.1) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    writer.add_tensor("token_embd.weight", w(n_vocab, n_embd, scale=1.0))
    writer.add_tensor("output_norm.weight", ones(n_embd))
    # Untied output head: tied random embeddings make every token predict itself forever.
    writer.add_tensor("output.weight", w(n_vocab, n_embd, scale=1.0))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", ones(n_embd))
        writer.add_tensor(f"blk.{i}.attn_q.weight", w(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.attn_k.weight", w(n_head_kv * head_dim, n_embd))
        writer.add_tensor(f"blk.{i}.attn_v.weight", w(n_head_kv * head_dim, n_embd))
        if arch == "qwen2":
            writer.add_tensor(f"blk.{i}.attn_q.bias", (rng.standard_normal(n_embd) * 0.1).astype(np.float32))
            writer.add_tensor(f"blk.{i}.attn_k.bias", (rng.standard_normal(n_head_kv * head_dim) * 0.1).astype(np.float32))
            writer.add_tensor(f"blk.{i}.attn_v.bias", (rng.standard_normal(n_head_kv * head_dim) * 0.1).astype(np.float32))
        writer.add_tensor(f"blk.{i}.attn_output.weight", w(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", ones(n_embd))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", w(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", w(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", w(n_embd, n_ff))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def write_tiny_lora(out: Path, *, n_layer: int = 2, n_embd: int = 64, n_head: int = 4, n_head_kv: int = 2,
                    n_ff: int = 128, rank: int = 4, alpha: float = 8.0, seed: int = 1, scale: float = 0.5) -> Path:
    """A random LoRA adapter GGUF matching ``write_tiny_gguf``'s shapes (llama.cpp's layout)."""
    import gguf

    rng = np.random.default_rng(seed)
    head_dim = n_embd // n_head
    shapes = {  # tensor -> (out, in)
        "attn_q": (n_embd, n_embd),
        "attn_k": (n_head_kv * head_dim, n_embd),
        "attn_v": (n_head_kv * head_dim, n_embd),
        "attn_output": (n_embd, n_embd),
        "ffn_gate": (n_ff, n_embd),
        "ffn_up": (n_ff, n_embd),
        "ffn_down": (n_embd, n_ff),
    }
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    for i in range(n_layer):
        for name, (o, n_in) in shapes.items():
            writer.add_tensor(f"blk.{i}.{name}.weight.lora_a", (rng.standard_normal((rank, n_in)) * scale).astype(np.float32))
            writer.add_tensor(f"blk.{i}.{name}.weight.lora_b", (rng.standard_normal((o, rank)) * scale).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
