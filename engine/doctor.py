"""What ``swarm doctor`` checks: model, llama.cpp, training stack, data dir, store.

Each check is a name, whether it passed, a detail line and whether the loop needs it. The
training stack is looked up without importing torch unless asked (``deep=True``), since an
import costs seconds.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from engine.errors import EngineError
from engine.models import DEFAULT_MODEL, check_gguf, resolve_model
from engine.paths import home_dir, store_path


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_model(spec: str = DEFAULT_MODEL) -> Check:
    try:
        path = resolve_model(spec)
        info = check_gguf(path)
    except EngineError as e:
        return Check("model", False, str(e))
    return Check(
        "model",
        True,
        f"{spec} -> {info.path} ({info.size / 1e6:.1f} MB, {info.architecture}, "
        f"{info.n_tensors} tensors, chat template: {'yes' if info.chat_template else 'no'})",
    )


def check_llama() -> Check:
    try:
        import llama_cpp
    except ImportError as e:
        return Check("llama.cpp", False, f"llama-cpp-python does not import: {e}")
    info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    parts = [p.split(":")[-1].split(" = ")[0].strip() for p in info.split("|") if p.strip().endswith("= 1")]
    features = " ".join(parts)
    return Check("llama.cpp", True, f"llama-cpp-python {llama_cpp.__version__}; CPU: {features or info}")


def check_cpu_buffers() -> Check:
    """Whether llama.cpp's extra CPU buffer types (AMX, repacked weights) run here; where they
    crash, models load without them (a note, not a failure: the loop runs either way)."""
    from engine.runtime import cpu_probe

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return Check("cpu buffers", False, "llama-cpp-python does not import", required=False)
    usable = cpu_probe.extra_buffers_usable()
    return Check("cpu buffers", True, ("in use: " if usable else "off: ") + cpu_probe.reason, required=False)


def check_gpu(gpu_layers: int = -1) -> Check:
    """Whether llama.cpp can offload layers to a GPU, and what a recipe's ``gpu_layers`` does with it."""
    try:
        import llama_cpp
    except ImportError as e:
        return Check("gpu offload", False, f"llama-cpp-python does not import: {e}", required=False)
    if not llama_cpp.llama_supports_gpu_offload():
        return Check("gpu offload", True, "llama.cpp is built for the CPU only: every layer runs on the CPU "
                     "(a CUDA build: see the README)", required=False)
    layers = "every layer" if gpu_layers < 0 else f"{gpu_layers} layer(s)"
    return Check("gpu offload", True, f"llama.cpp can offload to a GPU: the recipe's gpu_layers={gpu_layers} offloads "
                 f"{layers}", required=False)


def check_weights(spec: str, weights: str, home: str | os.PathLike[str] | None = None) -> Check:
    """Which weights a recipe serves: the type on disk, and what ``model.weights`` would do (an earlier
    ``auto`` measurement on this machine is read, not repeated)."""
    from engine.weights import file_type, saved_measurements

    try:
        src = resolve_model(spec)
        shipped = file_type(src)
    except EngineError as e:
        return Check("weights", False, str(e))
    if weights == "as-is":
        return Check("weights", True, f"{shipped} as shipped (model.weights = \"as-is\")", required=False)
    if weights != "auto":
        return Check("weights", True, f"{shipped} as shipped, served as {weights} (converted once, cached)",
                     required=False)
    saved = saved_measurements(src, home_dir(home))
    if saved:
        reasons = "; ".join(f"{e['reason']} ({e['fingerprint'].get('n_parallel')} sequences)" for e in saved)
        return Check("weights", True, f"{shipped} as shipped; {reasons}", required=False)
    return Check("weights", True, f"{shipped} as shipped; auto: measured on the first run (about a minute)",
                 required=False)


def check_training(deep: bool = False) -> list[Check]:
    out = []
    for dist in ("torch", "torchvision", "transformers", "peft", "unsloth"):
        v = _version(dist)
        out.append(Check(dist, v is not None, v or "not installed", required=False))
    if deep and _version("torch"):
        try:
            import torch

            cuda = torch.cuda.is_available()
            name = torch.cuda.get_device_name(0) if cuda else "no CUDA device: training runs on the CPU"
            out.append(Check("cuda", cuda, name, required=False))
        except Exception as e:  # torch import failures come in many types
            out.append(Check("cuda", False, f"torch does not import: {e}", required=False))
    from engine.train_select import describe_auto_backend

    out.append(Check("training backend", True, describe_auto_backend(), required=False))
    return out


def check_store(home: str | os.PathLike[str] | None = None) -> list[Check]:
    from engine.store.share import RemoteStore, open_shared

    try:
        h = home_dir(home)
    except OSError as e:
        return [Check("data dir", False, f"cannot create data dir: {e}")]
    checks = [Check("data dir", True, str(h))]
    path: Path = store_path(h)
    try:
        with open_shared(path) as store:
            held = ""
            if isinstance(store, RemoteStore):  # a run holds it: fine, and worth saying
                runs = ", ".join(f"run {r} {s}" for r, s in store.hello()["running"])
                held = f"; held by process {store.holder_pid}{f' ({runs})' if runs else ''}, read-only queries answered"
            checks.append(Check("store", True, f"{path} (schema version {store.schema_version}){held}"))
    except EngineError as e:
        checks.append(Check("store", False, str(e)))
    return checks


def check_sandbox() -> Check:
    from engine.errors import SandboxError
    from engine.sandbox import isolation_available

    try:
        level = isolation_available()
    except SandboxError as e:
        return Check("sandbox", False, str(e))
    full = {"netns", "private-tmp", "rlimits", "uid"}
    missing = sorted(full - set(level.split(",")))
    note = "strongest available" if not missing else f"missing {', '.join(missing)} (needs root / namespaces)"
    return Check("sandbox", True, f"isolation {level} ({note})")


def check_endpoints(spec: Any = None) -> list[Check]:
    """The llama-server binary, and every endpoint of a recipe's openai backend: reachable, which
    model it serves, its slots against the recipe's, whether it takes LoRA adapters."""
    from engine.runtime.server import find_server, health

    binary = find_server()
    backend = getattr(spec, "backend", "inprocess")
    out = [Check("llama-server", binary is not None or backend == "inprocess",
                 str(binary) if binary else "not built (`swarm llama-server build`; only the openai backend needs it)",
                 required=backend == "openai" and any(e.launch for e in spec.endpoints))]
    if backend != "openai":
        return out
    from engine.runtime.http import Endpoint, _get_json

    for i, e in enumerate(spec.endpoints):
        name = f"endpoint {i}"
        if e.launch:
            out.append(Check(name, binary is not None, f"launched on this machine, {e.slots} slots"
                             + ("" if binary else ": needs llama-server")))
            continue
        key = os.environ.get(e.api_key_env) if e.api_key_env else None
        if e.api_key_env and not key:
            out.append(Check(name, False, f"{e.url}: ${e.api_key_env} (its API key) is not set"))
            continue
        state = health(e.url, timeout=5.0, api_key=key)
        if state != "ok":
            out.append(Check(name, False, f"{e.url}: {state}"))
            continue
        ep = Endpoint(url=e.url, slots=e.slots, kind=e.kind, api_key=key)
        try:
            if e.kind == "llama-server":
                props = _get_json(ep, "/props")
                slots = int(props.get("total_slots") or 0)
                loras = _get_json(ep, "/lora-adapters")
                detail = (f"{e.url}: llama-server, model {Path(str(props.get('model_path', '?'))).name}, {slots} slots"
                          + (f" (the recipe sends {e.slots} at once)" if slots != e.slots else "")
                          + f", {len(loras)} LoRA adapter(s) loaded")
            else:
                models = [m.get("id") for m in _get_json(ep, "/v1/models").get("data", [])]
                detail = (f"{e.url}: vLLM serving {', '.join(map(str, models))}; adapters loaded at run time from "
                          "model.adapter_dir (needs --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)")
                if e.model and e.model not in models:
                    out.append(Check(name, False, f"{e.url} does not serve {e.model!r} ({', '.join(map(str, models))})"))
                    continue
        except EngineError as err:
            out.append(Check(name, False, str(err)))
            continue
        out.append(Check(name, True, detail + (f"; roles {', '.join(e.roles)}" if e.roles else "")))
    return out


def run_checks(home: str | os.PathLike[str] | None = None, model: str = DEFAULT_MODEL, deep: bool = True,
               weights: str = "auto", gpu_layers: int = -1, spec: Any = None) -> list[Check]:
    return [check_model(model), check_llama(), check_cpu_buffers(), check_weights(model, weights, home),
            check_gpu(gpu_layers),
            *check_endpoints(spec), check_sandbox(), *check_training(deep), *check_store(home)]
