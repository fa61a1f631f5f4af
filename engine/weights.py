"""Weight types: the served model converted once into the type llama.cpp's CPU kernels run fastest.

llama.cpp's batched CPU matrix kernels (llamafile sgemm, the AVX2/AVX-512 repacking) cover Q4_0,
Q8_0, F16 and BF16 but not Q4_1, the type the built-in model ships in; a batch of Q4_1 tokens
takes the generic dot-product path. A recipe's ``model.weights`` says what to serve:

- ``"as-is"``: the file as it is;
- a llama.cpp type (``"Q4_0"``, ``"Q8_0"``, ``"F16"``, ...): the file converted with
  ``llama_model_quantize`` (``allow_requantize``: a quantized source is dequantized and
  quantized again, so nothing better than the source comes out, only a faster layout);
- ``"auto"``: each candidate measured on this machine (batched decode at the recipe's
  ``n_parallel`` and threads) and the fastest taken, unless its perplexity on a fixed text rises
  more than ``MAX_NLL_RISE`` over the source's. The choice is cached per machine.

Converted files live under ``CACHE/weights/<source sha256>/<TYPE>.gguf`` (``CACHE`` is
``$SWARM_CACHE`` or the data dir's ``cache``), written to a temporary name and moved into place,
and are checked like any model file. Nothing is ever downloaded. Training dequantizes the file
that is served, so an adapter learns against exactly the weights it runs on.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelError
from engine.models import check_gguf, sha256_file
from engine.paths import cache_root, cpu_name

#: Types a recipe may name -> llama.cpp's file type constant name.
TYPES: dict[str, str] = {
    "F32": "LLAMA_FTYPE_ALL_F32", "F16": "LLAMA_FTYPE_MOSTLY_F16", "BF16": "LLAMA_FTYPE_MOSTLY_BF16",
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "Q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0", "Q5_1": "LLAMA_FTYPE_MOSTLY_Q5_1",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0", "Q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
}
#: What ``auto`` measures besides the file as it is (types with batched CPU kernels). BF16 is
#: fast only where the CPU multiplies bf16 natively (AVX512_BF16: llamafile's sgemm uses
#: ``vdpbf16ps``); elsewhere it measures slow and is not picked.
AUTO_CANDIDATES = ("Q4_0", "Q8_0", "F16", "BF16")
#: ``auto`` refuses a type whose mean negative log-likelihood on CALIBRATION rises more than this
#: (relative) over the source's.
MAX_NLL_RISE = 0.05
#: General text and arithmetic, scored token by token for ``auto``'s quality guard.
CALIBRATION = (
    "The capital of France is Paris. Water boils at 100 degrees Celsius at sea level. "
    "A week has seven days, and a year has twelve months. Shakespeare wrote Hamlet. "
    "What is 23 + 58? 23 + 58 = 81. What is 47 + 36? 47 + 36 = 83. What is 9 times 7? 63. "
    "To add two numbers, add the ones, carry the ten, then add the tens. "
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))  # 5\n"
)
WEIGHTS_SPEC_HELP = ('"as-is", "auto" (measured on this machine), or a llama.cpp type: '
                     + ", ".join(TYPES))


def file_type(path: Path) -> str:
    """The GGUF's weight type as a name from TYPES (``"?"`` for one not in it)."""
    ftype = check_gguf(path).file_type
    import llama_cpp

    for name, const in TYPES.items():
        if str(getattr(llama_cpp, const)) == ftype:
            return name
    return "?"


def convert(src: Path, wtype: str, home: Path, log: Callable[[str], None] = lambda s: None,
            sha: str | None = None) -> Path:
    """The model at ``src`` converted to ``wtype`` (cached; the source itself when it already is).

    Raises ModelError for an unknown type or a conversion llama.cpp refuses.
    """
    wtype = wtype.upper()
    if wtype not in TYPES:
        raise ModelError(f"unknown weight type {wtype!r} (known: {', '.join(TYPES)})")
    check_gguf(src)
    if file_type(src) == wtype:
        return src
    out = cache_root(home) / "weights" / (sha or sha256_file(src)) / f"{wtype}.gguf"
    if out.exists():
        try:
            check_gguf(out)
            return out
        except ModelError:
            out.unlink()  # a damaged cache entry is made again
    import llama_cpp

    from engine.runtime.llama import _init_backend

    _init_backend()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, TYPES[wtype])
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    log(f"converting {src.name} to {wtype} (once per model file and type)")
    t0 = time.perf_counter()
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        raise ModelError(f"llama.cpp could not convert {src} to {wtype} (llama_model_quantize returned {rc})")
    os.replace(tmp, out)
    try:
        check_gguf(out)
    except ModelError:
        out.unlink(missing_ok=True)
        raise
    log(f"converted to {wtype} in {time.perf_counter() - t0:.1f} s: {out}")
    return out


def mean_nll(path: Path, text: str = CALIBRATION, n_threads: int = 0) -> float:
    """Mean negative log-likelihood (nats per token) of ``text`` under the model at ``path``."""
    import numpy as np

    from engine.runtime.llama import Logits

    with Logits(path, n_ctx=512, n_threads=n_threads) as m:
        tokens = m.tokenize(text)
        logits = m.of(tokens)[:-1].astype(np.float64)
    top = logits.max(axis=1, keepdims=True)
    logz = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    picked = logits[np.arange(len(tokens) - 1), tokens[1:]]
    return float(np.mean(logz - picked))


def decode_speed(path: Path, n_parallel: int, n_threads: int, gpu_layers: int = 0, max_tokens: int = 32,
                 repeats: int = 2) -> float:
    """Generated tokens per second with ``n_parallel`` sequences decoded together (best of ``repeats``)."""
    from engine.runtime import Request, Runtime, Sampling

    prompts = [f"What is {12 + 7 * i} + {29 + 5 * i}? Explain step by step." for i in range(n_parallel)]
    best = 0.0
    with Runtime(path, n_ctx=256, n_parallel=n_parallel, n_threads=n_threads, gpu_layers=gpu_layers) as rt:
        rt.generate(Request(prompt="Hello", sampling=Sampling(max_tokens=4)))  # warm up
        for rep in range(repeats):
            reqs = [Request(messages=[{"role": "user", "content": p}],
                            sampling=Sampling(temperature=0.7, seed=rep * 100 + i, max_tokens=max_tokens))
                    for i, p in enumerate(prompts)]
            t0 = time.perf_counter()
            results = [c.result() for c in rt.submit_many(reqs)]
            secs = time.perf_counter() - t0
            best = max(best, sum(r.completion_tokens for r in results) / secs)
    return best


def _fingerprint(n_parallel: int, n_threads: int, gpu_layers: int) -> dict[str, Any]:
    import llama_cpp

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "llama_cpp": llama_cpp.__version__,
            "system": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
            "n_parallel": n_parallel, "n_threads": n_threads or os.cpu_count(), "gpu_layers": gpu_layers,
            "candidates": list(AUTO_CANDIDATES)}  # a new candidate is measured, not missed


def auto_file(src: Path, home: Path, sha: str | None = None) -> Path:
    """Where ``auto``'s measurements of the model at ``src`` are kept."""
    return cache_root(home) / "weights" / (sha or sha256_file(src)) / "auto.json"


def saved_measurements(src: Path, home: Path, sha: str | None = None) -> list[dict[str, Any]]:
    """``auto``'s earlier measurements of this model (one per machine fingerprint); [] if none or unreadable."""
    path = auto_file(src, home, sha)
    try:
        saved = json.loads(path.read_text())
        return [e for e in saved if isinstance(e, dict) and {"fingerprint", "type", "reason", "measured"} <= set(e)]
    except (OSError, ValueError, TypeError):
        return []


@dataclass
class Choice:
    """The file served and why."""

    path: Path
    type: str
    reason: str
    source: Path
    measured: dict[str, dict[str, float]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"], d["source"] = str(self.path), str(self.source)
        return d


def choose(src: Path, spec: str, home: Path, *, n_parallel: int = 8, n_threads: int = 0, gpu_layers: int = 0,
           log: Callable[[str], None] = lambda s: None) -> Choice:
    """The weights to serve for recipe value ``spec`` ("as-is", "auto" or a type). Raises ModelError."""
    src_type = file_type(src)
    if spec == "as-is":
        return Choice(src, src_type, "as-is (recipe)", src)
    if spec != "auto":
        return Choice(convert(src, spec, home, log), spec.upper(), f"{spec.upper()} (recipe)", src)
    fp = _fingerprint(n_parallel, n_threads, gpu_layers)
    sha = sha256_file(src)
    cache = auto_file(src, home, sha)
    saved = saved_measurements(src, home, sha)
    for entry in saved:
        if entry["fingerprint"] == fp:
            wtype = entry["type"]
            path = src if wtype == src_type else convert(src, wtype, home, log, sha)
            return Choice(path, wtype, entry["reason"] + " (measured earlier on this machine)", src, entry["measured"])
    log(f"measuring weight types on this machine ({n_parallel} sequences; once per machine and model)")
    paths = {src_type: src}
    for t in AUTO_CANDIDATES:
        if t != src_type:
            try:
                paths[t] = convert(src, t, home, log, sha)
            except ModelError as e:  # e.g. rows too short for a block type: not a candidate here
                log(f"  {t}: not measured: {e}")
    measured: dict[str, dict[str, float]] = {}
    for t, p in paths.items():
        measured[t] = {"tokens_per_second": decode_speed(p, n_parallel, n_threads, gpu_layers),
                       "nll": mean_nll(p, n_threads=n_threads)}
        log(f"  {t}: {measured[t]['tokens_per_second']:.0f} tok/s, NLL {measured[t]['nll']:.3f}")
    base_nll = measured[src_type]["nll"]
    fine = [t for t in measured if t == src_type or measured[t]["nll"] <= base_nll * (1 + MAX_NLL_RISE)
            or not math.isfinite(base_nll)]
    best = max(fine, key=lambda t: measured[t]["tokens_per_second"])
    refused = sorted(set(measured) - set(fine))
    reason = (f"auto: {best} fastest of {', '.join(measured)} "
              f"({measured[best]['tokens_per_second']:.0f} vs {measured[src_type]['tokens_per_second']:.0f} tok/s "
              f"as shipped)" + (f"; refused for perplexity: {', '.join(refused)}" if refused else ""))
    saved = [e for e in saved if e.get("fingerprint") != fp] + [
        {"fingerprint": fp, "type": best, "reason": reason, "measured": measured}]
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".auto.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(saved, indent=1))
    os.replace(tmp, cache)
    log(reason)
    return Choice(paths[best], best, reason, src, measured)
