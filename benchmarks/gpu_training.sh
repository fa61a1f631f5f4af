#!/usr/bin/env bash
# The training path on a CUDA machine, for a machine that has the training stack (torch,
# transformers, peft, unsloth) but not necessarily llama.cpp:
#   1. what the machine has (GPU, torch, CUDA, transformers, peft, unsloth);
#   2. benchmarks.training on the GPU: unsloth vs PEFT fp32 (the baseline) vs PEFT bf16, same data,
#      and the labels-only step against every logit (results: OUT/training-gpu.json);
#   3. one round-like adapter trained by the engine's worker with the unsloth backend, its LoRA
#      tensors saved as fp16 (OUT/unsloth-lora.npz), so that a machine with llama.cpp can export
#      and check it: PYTHONPATH=. python -m benchmarks.gpu_export_check OUT/unsloth-lora.npz
# Usage: benchmarks/gpu_training.sh GGUF OUT
set -uo pipefail
gguf=$1
out=$2
mkdir -p "$out"
export SWARM_HOME=${SWARM_HOME:-$(mktemp -d)} UNSLOTH_DISABLE_STATISTICS=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi -L
python3 - <<'EOF'
import torch, transformers, peft
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
print("transformers", transformers.__version__, "peft", peft.__version__)
try:
    import unsloth
    print("unsloth", unsloth.__version__)
except Exception as e:  # say why, and go on: PEFT on the GPU is still measured
    print("unsloth does not import:", type(e).__name__, str(e)[:500])
EOF
python3 -m benchmarks.training --model "$gguf" --name training-gpu 2>&1 | tee "$out/training.log"
cp benchmarks/results/training-gpu.json "$out/" 2>/dev/null
python3 - "$gguf" "$out" <<'EOF'
import json, sys, tempfile
from pathlib import Path

import numpy as np

from benchmarks.training import _round_like
from engine.paths import home_dir
from engine.recipes import TrainSpec
from engine.train.runner import run_worker

gguf, out = sys.argv[1], Path(sys.argv[2])
spec = TrainSpec(steps=60)
with tempfile.TemporaryDirectory() as d:
    work = Path(d)
    data = work / "examples.jsonl"
    data.write_text("".join(json.dumps(m) + "\n" for m in _round_like()))
    prep = run_worker("prepare", {"home": str(home_dir()), "gguf": gguf}, work / "log")
    cfg = {"backend": "unsloth", "base_dir": prep["base_dir"], "gguf": gguf, "examples": str(data), "rank": spec.rank,
           "alpha": spec.alpha, "dropout": 0.0, "learning_rate": spec.learning_rate, "steps": spec.steps,
           "batch_size": spec.batch_size, "max_seq_len": spec.max_seq_len, "targets": list(spec.targets), "seed": 0,
           "out": str(work / "lora.npz")}
    try:
        r = run_worker("train", cfg, work / "log")
    except Exception as e:
        print("unsloth training failed:", e)
        print((work / "log").read_text()[-3000:])
        raise SystemExit(1)
    state = dict(np.load(work / "lora.npz"))
    np.savez(out / "unsloth-lora.npz", **{k: v.astype(np.float16) for k, v in state.items()})
    (out / "unsloth-train.json").write_text(json.dumps({**r, "rank": spec.rank, "alpha": spec.alpha,
                                                         "targets": list(spec.targets)}, indent=1))
    print("unsloth round-like adapter:", r["description"], f"{r['seconds_per_step']:.3f} s/step,",
          f"loss {r['loss_curve'][0]:.3f} -> {r['loss_curve'][-1]:.3f}", len(state), "tensors")
EOF
