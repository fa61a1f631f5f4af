"""Adapter hot-swap latency vs. reloading the model with the adapter.

The adapter is a random LoRA with the default model's shapes (rank 16 on all projections):
its values do not matter for timing. "swap" is ``Runtime.set_adapter`` on a loaded model (the
first swap also reads the file; later swaps of a known adapter only switch); "reload" is what
one would do without it: free the model and load it again with the adapter.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import table, versions, write_results
from engine.models import DEFAULT_MODEL, check_gguf, resolve_model
from engine.runtime import Runtime
from engine.train.export import write_adapter


def random_adapter(path: Path, model: Path, rank: int = 16) -> Path:
    from gguf import GGUFReader

    reader = GGUFReader(model, "r")
    shapes = {t.name: [int(x) for x in t.shape] for t in reader.tensors}  # ggml order: (in, out)
    rng = np.random.default_rng(0)
    tensors = {}
    for name, (n_in, n_out) in ((n, s) for n, s in shapes.items() if len(s) == 2 and n.startswith("blk.")):
        base = name.removesuffix(".weight")
        if base.split(".")[-1] not in {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}:
            continue
        tensors[f"{base}.weight.lora_a"] = (rng.standard_normal((rank, n_in)) * 0.01).astype(np.float32)
        tensors[f"{base}.weight.lora_b"] = (rng.standard_normal((n_out, rank)) * 0.01).astype(np.float32)
    write_adapter(path, tensors, alpha=32.0)
    return path


def run(quick: bool = False, model: str = DEFAULT_MODEL) -> dict[str, Any]:
    reps = 5 if quick else 20
    path = resolve_model(model)
    check_gguf(path)
    with tempfile.TemporaryDirectory() as d:
        adapter = random_adapter(Path(d) / "lora.gguf", path)
        with Runtime(path, n_ctx=512, n_parallel=4) as rt:
            t0 = time.perf_counter()
            rt.set_adapter(adapter).result()
            first = time.perf_counter() - t0
            swaps = []
            for _ in range(reps):
                t0 = time.perf_counter()
                rt.set_adapter(None).result()
                rt.set_adapter(adapter).result()
                swaps.append((time.perf_counter() - t0) / 2)
        reloads = []
        for _ in range(max(2, reps // 4)):
            t0 = time.perf_counter()
            with Runtime(path, n_ctx=512, n_parallel=4) as rt:
                rt.set_adapter(adapter).result()
                reloads.append(time.perf_counter() - t0)
    swap = statistics.median(swaps)
    reload = statistics.median(reloads)
    rows = [["first swap (reads the file)", first * 1000], ["swap (known adapter)", swap * 1000],
            ["reload model + adapter", reload * 1000]]
    print(table(["operation", "ms (median)"], rows))
    ratios = {"reload_vs_swap": reload / swap, "reload_vs_first_swap": reload / first}
    path_out = write_results("swap", {"quick": quick, "model": model, "first_swap_s": first, "swap_s": swaps,
                                      "reload_s": reloads, "ratios": ratios, "versions": versions("llama-cpp-python")})
    print(f"wrote {path_out}")
    return {"ratios": ratios}


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
