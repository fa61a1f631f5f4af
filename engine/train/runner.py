"""The engine side of training: run the worker, relay its progress, pick the backend, cancel.

``train_lora(cfg, examples, ...)`` is the one entry point: it prepares the cached base
checkpoint, trains with the chosen backend (``auto``: unsloth, falling back to PEFT with the
reason recorded), exports the GGUF adapter and checks it against PyTorch. Without a ``Trainer``
each step is a worker process of its own; with one (``train.warm_worker``, the default), one
worker process per run does every step of every round and keeps torch, the backend and the
weights loaded (``Trainer``). A cancel kills the worker (a warm one is started again on the
next call, as after a crash). Failures raise TrainingError with the worker's message.
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


def _relay(proc: subprocess.Popen[str], cancel: threading.Event | None, on_progress: ProgressFn | None,
           on_log: Callable[[str], None] | None) -> tuple[dict[str, Any] | None, str | None, bool]:
    """Read one command's events from a worker's stdout, relaying progress and log lines, until the
    worker says ``done`` (a warm worker, after each command) or its stdout ends; a cancel kills the
    worker meanwhile. Returns (result, error, whether ``done`` came)."""
    stop_watch = threading.Event()

    def watch() -> None:
        while not stop_watch.wait(0.2):
            if cancel is not None and cancel.is_set():
                proc.kill()
                return

    threading.Thread(target=watch, daemon=True).start()
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
            elif kind == "done":
                return result, error, True
    finally:
        stop_watch.set()
    return result, error, False


def _outcome(cmd: str, result: dict[str, Any] | None, error: str | None, cancel: threading.Event | None,
             returncode: int | None, log_path: Path) -> dict[str, Any]:
    """A command's result, or the TrainingError that says why there is none."""
    if cancel is not None and cancel.is_set():
        raise TrainingError("training cancelled")
    if result is None:
        if error is None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            error = f"worker exited with status {returncode}: {' | '.join(tail)}"
        raise TrainingError(f"{cmd} failed: {error} (log: {log_path})")
    return result


def run_worker(cmd: str, cfg: dict[str, Any], log_path: Path, cancel: threading.Event | None = None,
               on_progress: ProgressFn | None = None, on_log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run one worker command; returns its result or raises TrainingError."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "engine.train.worker", cmd, json.dumps(cfg, default=str)],
                                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True)
        try:
            result, error, _ = _relay(proc, cancel, on_progress, on_log)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return _outcome(cmd, result, error, cancel, proc.returncode, log_path)


class Trainer:
    """The warm trainer: one ``engine.train.worker serve`` process, started on first use, that
    answers one command at a time and stays alive between rounds. Its stderr goes to ``log_path``.
    A worker that dies (a crash, a kill on cancel) is started again by the next call; ``close``
    ends it (the engine does so when the run stops or finishes)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.starts = 0  # worker processes started (1 per run when nothing failed)
        self.pid: int | None = None
        #: The backend a new worker imports first (unsloth must come before transformers).
        self.preload: str | None = None
        self.broken: set[str] = set()  # backends that failed in this run: later rounds skip them

    def _start(self) -> subprocess.Popen[str]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            proc = subprocess.Popen([sys.executable, "-m", "engine.train.worker", "serve", *filter(None, [self.preload])],
                                    stdout=subprocess.PIPE,
                                    stderr=log, stdin=subprocess.PIPE, text=True, bufsize=1)
        self.starts += 1
        self.pid = proc.pid
        return proc

    def call(self, cmd: str, cfg: dict[str, Any], cancel: threading.Event | None = None,
             on_progress: ProgressFn | None = None, on_log: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Run one worker command in the warm process; returns its result or raises TrainingError."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None
            result: dict[str, Any] | None = None
            error: str | None = None
            finished = False
            try:
                proc.stdin.write(json.dumps({"cmd": cmd, "cfg": cfg}, default=str) + "\n")
                proc.stdin.flush()
                result, error, finished = _relay(proc, cancel, on_progress, on_log)
            except OSError as e:  # BrokenPipeError included: the worker is gone
                error = f"the warm training worker is gone ({e})"
            if not finished:  # the worker died (or was killed on cancel): the next call starts another
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                self._proc = None
        return _outcome(cmd, result, error, cancel, proc.returncode, self.log_path)

    def close(self) -> None:
        """End the worker; the next call starts a fresh one."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the worker's loop ends at EOF
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


def check_disk(path: Path, need: int = MIN_FREE_BYTES) -> None:
    free = shutil.disk_usage(path).free
    if free < need:
        raise TrainingError(f"not enough free disk space in {path}: {free / 2**30:.2f} GiB free, need {need / 2**30:.1f} GiB")


def unsloth_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("unsloth") is not None


def train_lora(cfg: TrainConfig, examples: list[list[dict[str, str]]], *, cancel: threading.Event | None = None,
               on_progress: ProgressFn | None = None, on_log: Callable[[str], None] | None = None,
               trainer: Trainer | None = None) -> Trained:
    """Train, export and check one adapter, in ``trainer``'s warm worker if given, else in a worker
    process per step. Raises TrainingError."""
    if not examples:
        raise TrainingError("no verified examples to train on yet")
    if not cfg.check_prompts:  # export compares the adapter's outputs on them with the trained model's
        raise TrainingError("no prompts to check the exported adapter on (TrainConfig.check_prompts is empty)")
    check_disk(cfg.home)
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    log_path = cfg.workdir / "worker.log"
    data = cfg.workdir / "examples.jsonl"
    data.write_text("".join(json.dumps(m) + "\n" for m in examples))

    def work(cmd: str, wcfg: dict[str, Any], progress: ProgressFn | None = None) -> dict[str, Any]:
        if trainer is not None:
            return trainer.call(cmd, wcfg, cancel, progress, on_log)
        return run_worker(cmd, wcfg, log_path, cancel, progress, on_log)

    s = cfg.spec
    order = ["unsloth", "peft"] if s.backend == "auto" else [s.backend]
    reason = "forced by the recipe" if s.backend != "auto" else ""
    if s.backend == "auto" and not unsloth_importable():
        order, reason = ["peft"], "auto: unsloth is not installed"
    if trainer is not None and s.backend == "auto" and "unsloth" in trainer.broken and order[0] == "unsloth":
        order, reason = ["peft"], "auto: unsloth failed earlier in this run; peft"  # it stays off for the run
    if trainer is not None and trainer.preload != order[0]:
        trainer.close()  # a worker holding another backend's imports is no place for this one
        trainer.preload = order[0]
    prep = work("prepare", {"home": str(cfg.home), "gguf": str(cfg.gguf)})
    lora = cfg.workdir / "lora.npz"
    base_cfg = {
        "base_dir": prep["base_dir"], "gguf": str(cfg.gguf), "examples": str(data), "out": str(lora),
        "rank": s.rank, "alpha": s.alpha, "dropout": s.dropout, "learning_rate": s.learning_rate, "steps": s.steps,
        "batch_size": s.batch_size, "max_seq_len": s.max_seq_len, "targets": list(s.targets), "seed": cfg.seed,
        "init": str(cfg.init_lora) if cfg.init_lora is not None else None,
    }
    result: dict[str, Any] | None = None
    failures = []
    for backend in order:
        try:
            result = work("train", {**base_cfg, "backend": backend}, on_progress)
            if not reason:
                reason = "auto: unsloth imported and trained"
            elif failures:
                reason = f"auto: {failures[-1]}; fell back to peft"
            break
        except TrainingError as e:
            if cancel is not None and cancel.is_set():
                raise
            failures.append(f"{backend} failed ({e})")
            if trainer is not None:
                trainer.close()  # a backend that failed half-way leaves its imports behind
                trainer.preload = None
                trainer.broken.add(backend)
    if result is None:
        raise TrainingError("; ".join(failures))
    if failures and s.backend == "auto":
        reason = f"auto: {failures[-1]}; fell back to peft"
    adapter = cfg.workdir / "adapter.gguf"
    exp = work("export", {
        "base_dir": prep["base_dir"], "gguf": str(cfg.gguf), "lora": str(lora), "out": str(adapter),
        "alpha": s.alpha, "rank": s.rank, "targets": list(s.targets), "prompts": cfg.check_prompts,
        "threshold": EXPORT_COSINE_MIN,
    })
    # lora.npz stays beside the adapter: the next round may continue from it (train.warm_start);
    # peft/ is the same LoRA for servers that load PEFT adapters (vLLM)
    import numpy as np

    from engine.train.export import write_peft

    if lora.exists():
        with np.load(lora) as npz:
            write_peft(cfg.workdir / "peft", dict(npz), s.rank, s.alpha, list(s.targets))
    return Trained(
        backend=result["backend"], backend_reason=reason, steps=result["steps"], loss_curve=result["loss_curve"],
        tokens_per_second=result["tokens_per_second"], seconds_per_step=result["seconds_per_step"],
        seconds=result["seconds"], n_examples=result["n_examples"], adapter_path=Path(exp["path"]),
        sha256=exp["sha256"], cosine=exp["cosine"],
    )
