"""The engine side of training: run the worker, relay its progress, pick the backend, cancel.

``train_lora(cfg, examples, ...)`` is the one entry point: it prepares the cached base
checkpoint, trains with the chosen backend (``auto``: unsloth, falling back to PEFT with the
reason recorded), exports the GGUF adapter and checks it against PyTorch. Each step is a
worker process; a cancel kills it. Failures raise TrainingError with the worker's message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import TrainingError
from engine.recipes import TrainSpec

MIN_FREE_BYTES = 1 << 30  # training and export need room for the base checkpoint and adapters
# Worst last-token logits cosine, llama.cpp + exported adapter vs PyTorch fp32 + LoRA, over the
# check prompts. A layout error (q/k rows not permuted) gives ~0.94; correct exports measured
# 0.998-0.9996 on most prompts, and down to 0.9918 on one prompt for an adapter fitted to a
# single example (llama.cpp's 8-bit activation rounding in the base matmuls, amplified).
EXPORT_COSINE_MIN = 0.99


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training step needs; see ``TrainSpec`` for the recipe's fields."""

    home: Path
    gguf: Path
    workdir: Path
    spec: TrainSpec
    seed: int
    check_prompts: list[str] = field(default_factory=list)
    init_lora: Path | None = None  # continue from these LoRA weights (the adapter in use) instead of zero


@dataclass(frozen=True)
class Trained:
    backend: str
    backend_reason: str
    steps: int
    loss_curve: list[float]
    tokens_per_second: float
    seconds_per_step: float
    seconds: float
    n_examples: int
    adapter_path: Path
    sha256: str
    cosine: float


ProgressFn = Callable[[int, int, float, float], None]


def run_worker(cmd: str, cfg: dict[str, Any], log_path: Path, cancel: threading.Event | None = None,
               on_progress: ProgressFn | None = None, on_log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run one worker command; returns its result or raises TrainingError."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "engine.train.worker", cmd, json.dumps(cfg, default=str)],
                                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True)
        stop_watch = threading.Event()

        def watch() -> None:
            while not stop_watch.wait(0.2):
                if cancel is not None and cancel.is_set():
                    proc.kill()
                    return

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                kind = msg.pop("event", "")
                if kind == "progress" and on_progress:
                    on_progress(msg["step"], msg["steps"], msg["loss"], msg["tokens_per_second"])
                elif kind == "log" and on_log:
                    on_log(msg["message"])
                elif kind == "result":
                    result = msg
                elif kind == "error":
                    error = msg["message"]
            proc.wait()
        finally:
            stop_watch.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if cancel is not None and cancel.is_set():
        raise TrainingError("training cancelled")
    if result is None:
        if error is None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            error = f"worker exited with status {proc.returncode}: {' | '.join(tail)}"
        raise TrainingError(f"{cmd} failed: {error} (log: {log_path})")
    return result


def check_disk(path: Path, need: int = MIN_FREE_BYTES) -> None:
    free = shutil.disk_usage(path).free
    if free < need:
        raise TrainingError(f"not enough free disk space in {path}: {free / 2**30:.2f} GiB free, need {need / 2**30:.1f} GiB")


def unsloth_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("unsloth") is not None


def train_lora(cfg: TrainConfig, examples: list[list[dict[str, str]]], *, cancel: threading.Event | None = None,
               on_progress: ProgressFn | None = None, on_log: Callable[[str], None] | None = None) -> Trained:
    """Train, export and check one adapter. Raises TrainingError."""
    if not examples:
        raise TrainingError("no verified examples to train on yet")
    check_disk(cfg.home)
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    log_path = cfg.workdir / "worker.log"
    data = cfg.workdir / "examples.jsonl"
    data.write_text("".join(json.dumps(m) + "\n" for m in examples))
    prep = run_worker("prepare", {"home": str(cfg.home), "gguf": str(cfg.gguf)}, log_path, cancel, on_log=on_log)
    s = cfg.spec
    lora = cfg.workdir / "lora.npz"
    base_cfg = {
        "base_dir": prep["base_dir"], "gguf": str(cfg.gguf), "examples": str(data), "out": str(lora),
        "rank": s.rank, "alpha": s.alpha, "dropout": s.dropout, "learning_rate": s.learning_rate, "steps": s.steps,
        "batch_size": s.batch_size, "max_seq_len": s.max_seq_len, "targets": list(s.targets), "seed": cfg.seed,
        "init": str(cfg.init_lora) if cfg.init_lora is not None else None,
    }
    order = ["unsloth", "peft"] if s.backend == "auto" else [s.backend]
    reason = "forced by the recipe" if s.backend != "auto" else ""
    if s.backend == "auto" and not unsloth_importable():
        order, reason = ["peft"], "auto: unsloth is not installed"
    result: dict[str, Any] | None = None
    failures = []
    for backend in order:
        try:
            result = run_worker("train", {**base_cfg, "backend": backend}, log_path, cancel, on_progress, on_log)
            if not reason:
                reason = "auto: unsloth imported and trained"
            elif failures:
                reason = f"auto: {failures[-1]}; fell back to peft"
            break
        except TrainingError as e:
            if cancel is not None and cancel.is_set():
                raise
            failures.append(f"{backend} failed ({e})")
    if result is None:
        raise TrainingError("; ".join(failures))
    if failures and s.backend == "auto":
        reason = f"auto: {failures[-1]}; fell back to peft"
    adapter = cfg.workdir / "adapter.gguf"
    exp = run_worker("export", {
        "base_dir": prep["base_dir"], "gguf": str(cfg.gguf), "lora": str(lora), "out": str(adapter),
        "alpha": s.alpha, "rank": s.rank, "targets": list(s.targets), "prompts": cfg.check_prompts,
        "threshold": EXPORT_COSINE_MIN,
    }, log_path, cancel, on_log=on_log)
    # lora.npz stays beside the adapter: the next round may continue from it (train.warm_start)
    return Trained(
        backend=result["backend"], backend_reason=reason, steps=result["steps"], loss_curve=result["loss_curve"],
        tokens_per_second=result["tokens_per_second"], seconds_per_step=result["seconds_per_step"],
        seconds=result["seconds"], n_examples=result["n_examples"], adapter_path=Path(exp["path"]),
        sha256=exp["sha256"], cosine=exp["cosine"],
    )
