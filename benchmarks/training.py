"""Training throughput per backend on the same data: unsloth vs. PEFT fp32 (the baseline) vs.
PEFT bf16. Same LoRA rank and targets, same batches; each backend in its own worker process."""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import table, versions, write_results
from engine.models import DEFAULT_MODEL, resolve_model
from engine.paths import home_dir
from engine.recipes import TrainSpec
from engine.train.runner import run_worker, unsloth_importable


def _examples(n: int = 64) -> list[list[dict[str, str]]]:
    rng = random.Random(0)
    out = []
    for _ in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        out.append([{"role": "system", "content": "You are a careful calculator. Reply with the result."},
                    {"role": "user", "content": f"What is {a} + {b}?"},
                    {"role": "assistant", "content": f"{a} + {b} = {a + b}"}])
    return out


def run(quick: bool = False, model: str = DEFAULT_MODEL) -> dict[str, Any]:
    steps = 6 if quick else 40
    spec = TrainSpec(steps=steps)
    gguf = resolve_model(model)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        data = work / "examples.jsonl"
        data.write_text("".join(json.dumps(m) + "\n" for m in _examples()))
        prep = run_worker("prepare", {"home": str(home_dir()), "gguf": str(gguf)}, work / "log")
        base = {"base_dir": prep["base_dir"], "gguf": str(gguf), "examples": str(data), "rank": spec.rank,
                "alpha": spec.alpha, "dropout": 0.0, "learning_rate": spec.learning_rate, "steps": steps,
                "batch_size": spec.batch_size, "max_seq_len": spec.max_seq_len, "targets": list(spec.targets), "seed": 0}
        variants = [("peft fp32", {"backend": "peft"}), ("peft bf16", {"backend": "peft", "dtype": "bfloat16"})]
        if unsloth_importable():
            variants.insert(0, ("unsloth", {"backend": "unsloth"}))
        results = {}
        for name, extra in variants:
            r = run_worker("train", {**base, **extra, "out": str(work / f"{name.replace(' ', '-')}.npz")}, work / "log")
            # the first steps include warm-up; report the rest
            results[name] = r
    rows = [[n, r["seconds_per_step"], r["tokens_per_second"], r["peak_rss_mb"], r["loss_curve"][-1]] for n, r in results.items()]
    print(table(["backend", "s/step", "train tok/s", "peak RSS MB", "final loss"], rows))
    fastest = min(r["seconds_per_step"] for r in results.values())
    ratios = {"fastest_vs_peft_fp32": results["peft fp32"]["seconds_per_step"] / fastest}
    path = write_results("training", {"quick": quick, "steps": steps, "batch_size": spec.batch_size, "rank": spec.rank,
                                      "results": results, "ratios": ratios,
                                      "versions": versions("torch", "transformers", "peft", "unsloth")})
    print(f"wrote {path}")
    return {"ratios": ratios}


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
