"""The export check for an adapter trained elsewhere (benchmarks/gpu_training.sh on a CUDA machine
without llama.cpp): its LoRA tensors (saved as fp16) are written as a GGUF adapter by the engine's
worker and llama.cpp + adapter's last-token logits are compared with PyTorch fp32 + the same LoRA
on the check prompts, as after every round's training (threshold: EXPORT_COSINE_MIN).

    PYTHONPATH=. python -m benchmarks.gpu_export_check LORA.npz [TRAIN.json]

Results: training-gpu-export.json (worst and per-prompt cosines, with the training's own record
when given).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import versions, write_results
from engine.models import DEFAULT_MODEL, resolve_model
from engine.paths import home_dir
from engine.recipes import TrainSpec
from engine.train.runner import EXPORT_COSINE_MIN, run_worker

PROMPTS = [
    "<|im_start|>user\nWhat is 47 + 38? Work it out in columns.<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nIs the answer 512 to 'What is 239 + 273?' right?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>user\nExplain what a linked list is.<|im_end|>\n<|im_start|>assistant\n",
]


def run(lora: Path, train_record: Path | None = None) -> dict[str, Any]:
    spec = TrainSpec()
    gguf = resolve_model(DEFAULT_MODEL)
    record = json.loads(train_record.read_text()) if train_record else {}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        state = {k: v.astype(np.float32) for k, v in np.load(lora).items()}
        np.savez(work / "lora.npz", **state)
        prep = run_worker("prepare", {"home": str(home_dir()), "gguf": str(gguf)}, work / "log")
        r = run_worker("export", {"base_dir": prep["base_dir"], "gguf": str(gguf), "lora": str(work / "lora.npz"),
                                  "out": str(work / "adapter.gguf"), "rank": record.get("rank", spec.rank),
                                  "alpha": record.get("alpha", spec.alpha),
                                  "targets": record.get("targets", list(spec.targets)), "prompts": PROMPTS,
                                  "threshold": EXPORT_COSINE_MIN}, work / "log")
    data = {"lora": str(lora), "tensors": len(state), "cosine": r["cosine"], "cosines": r["cosines"],
            "threshold": EXPORT_COSINE_MIN, "trained": record, "versions": versions("llama-cpp-python", "torch", "peft")}
    print(f"{len(state)} LoRA tensors; llama.cpp + exported adapter vs PyTorch fp32 + LoRA, last-token logits cosine: "
          f"worst {r['cosine']:.5f} (threshold {EXPORT_COSINE_MIN}), each {[round(c, 5) for c in r['cosines']]}")
    print(f"wrote {write_results('training-gpu-export', data)}")
    return data


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
