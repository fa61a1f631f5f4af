"""The training worker: a separate process that imports torch and does the heavy lifting.

    python -m engine.train.worker prepare|train|export CONFIG_JSON
    python -m engine.train.worker serve

It speaks JSON lines on its original stdout (``log``, ``progress``, ``result``, ``error``);
everything libraries print goes to stderr (the parent keeps it in a log file). ``serve`` is the
warm trainer: it reads one ``{"cmd": ..., "cfg": ...}`` line at a time on stdin, answers each
with its events and one ``result`` or ``error``, and keeps torch, the backend, the base weights
with their LoRA layers (reset from the base for each training) and the export's reference model
loaded between commands, until stdin closes. Commands:

- ``prepare``: dequantize the GGUF into the cached base checkpoint (no unsloth in this process).
- ``train``: LoRA on the examples with one backend (``unsloth`` or ``peft``), saving the LoRA
  tensors as fp32 ``.npz``.
- ``export``: write the GGUF adapter, then compare llama.cpp + adapter logits with the fp32
  PyTorch model + the same LoRA on a few prompts; below the threshold the adapter is refused.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_proto = None
#: Set by ``serve``: models stay loaded between commands (one of each kind at a time).
_warm = False
_loaded: dict[str, tuple[tuple[Any, ...], Any]] = {}


def _cached(kind: str, key: tuple[Any, ...], load: Callable[[], Any]) -> tuple[Any, bool]:
    """``load()``'s value, reused while ``key`` stays the same in a warm worker; and whether reused."""
    if _warm and kind in _loaded and _loaded[kind][0] == key:
        return _loaded[kind][1], True
    _loaded.pop(kind, None)
    value = load()
    if _warm:
        _loaded[kind] = (key, value)
    return value, False


def emit(event: str, /, **data: Any) -> None:
    assert _proto is not None
    _proto.write(json.dumps({"event": event, **data}) + "\n")
    _proto.flush()


def log(message: str) -> None:
    emit("log", message=message)


# -- backends --------------------------------------------------------------------------------------


def load_unsloth(cfg: dict[str, Any]) -> tuple[Any, Any, str]:
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
    import unsloth  # noqa: F401  (patches transformers; must come first)
    import torch
    from unsloth import FastLanguageModel

    model, tok = FastLanguageModel.from_pretrained(
        model_name=cfg["base_dir"], max_seq_length=cfg["max_seq_len"], dtype=None,
        load_in_4bit=False, local_files_only=True,
    )
    model = FastLanguageModel.get_peft_model(
        model, r=cfg["rank"], lora_alpha=cfg["alpha"], lora_dropout=cfg["dropout"],
        target_modules=cfg["targets"], bias="none", use_gradient_checkpointing=False,
        random_state=cfg["seed"],
    )
    where = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU"
    return model, tok, f"unsloth on {where}, {str(model.dtype).removeprefix('torch.')}"


def load_peft(cfg: dict[str, Any]) -> tuple[Any, Any, str]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if cfg.get("dtype") == "bfloat16" else torch.float32
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(cfg["base_dir"], dtype=dtype).to(device)
    tok = AutoTokenizer.from_pretrained(cfg["base_dir"])
    lcfg = LoraConfig(r=cfg["rank"], lora_alpha=cfg["alpha"], lora_dropout=cfg["dropout"],
                      target_modules=cfg["targets"], bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lcfg), tok, f"peft on {device}, {str(dtype).removeprefix('torch.')}"


BACKENDS: dict[str, Callable[[dict[str, Any]], tuple[Any, Any, str]]] = {"unsloth": load_unsloth, "peft": load_peft}


# -- commands --------------------------------------------------------------------------------------


def cmd_prepare(cfg: dict[str, Any]) -> dict[str, Any]:
    from engine.train.base import ensure_base_checkpoint

    from transformers import AutoConfig

    from engine.train.export import layout

    out = ensure_base_checkpoint(Path(cfg["home"]), Path(cfg["gguf"]), log=log)
    layout(AutoConfig.from_pretrained(str(out)).model_type)  # an adapter we could not export: say so before training
    return {"base_dir": str(out)}


def encode(tok: Any, template: Any, messages: list[dict[str, str]],
           max_len: int) -> tuple[list[int], list[int], bool] | None:
    """Token ids and labels (-100 on the prompt) for one conversation, cut at ``max_len`` tokens,
    and whether it was cut (None: its prompt alone nearly fills ``max_len``)."""
    prompt = template.render(messages[:-1], add_generation_prompt=True)
    full = template.render(messages, add_generation_prompt=False)
    if not full.startswith(prompt):
        return None
    ids_p = tok(prompt, add_special_tokens=False)["input_ids"]
    ids_f = tok(full, add_special_tokens=False)["input_ids"]
    if ids_f[: len(ids_p)] != ids_p:
        ids_f = ids_p + tok(full[len(prompt):], add_special_tokens=False)["input_ids"]
    if len(ids_p) >= max_len - 2:
        return None
    cut = len(ids_f) > max_len
    ids_f = ids_f[:max_len]
    return ids_f, [-100] * len(ids_p) + ids_f[len(ids_p):], cut


def cmd_train(cfg: dict[str, Any]) -> dict[str, Any]:
    import random

    import numpy as np

    from engine.models import check_gguf
    from engine.runtime.chat import ChatTemplate

    t_start = time.perf_counter()
    import torch

    # Seed before the backend builds the LoRA layers: PEFT draws lora_A from torch's global
    # generator, so an unseeded start made two trainings on the same data differ.
    torch.manual_seed(cfg["seed"])
    random.seed(cfg["seed"])
    np.random.seed(cfg["seed"] & 0xFFFFFFFF)
    key = (cfg["backend"], cfg["base_dir"], cfg["rank"], cfg["alpha"], cfg["dropout"], tuple(cfg["targets"]),
           cfg["max_seq_len"], cfg.get("dtype"))
    (model, tok, desc), reused = _cached("train", key, lambda: BACKENDS[cfg["backend"]](cfg))
    if reused:  # the same base with fresh LoRA weights, drawn from this training's seed
        reset_lora(model)
        desc += ", warm"

    log(f"training with {desc}")
    if cfg.get("init"):
        load_lora(model, cfg["init"])
        log(f"continuing from {cfg['init']}")
    torch.manual_seed(cfg["seed"])
    info = check_gguf(cfg["gguf"])
    template = ChatTemplate(info.chat_template)
    examples = [json.loads(line) for line in Path(cfg["examples"]).read_text().splitlines() if line.strip()]
    kept = [e for e in (encode(tok, template, m, cfg["max_seq_len"]) for m in examples) if e is not None]
    if not kept:
        raise RuntimeError("no usable training examples")
    encoded = [(ids, labels) for ids, labels, _cut in kept]
    n_cut = sum(cut for _ids, _labels, cut in kept)
    if n_cut:  # a worked answer cut short teaches no end to it: say so, so train.max_seq_len can be raised
        log(f"{n_cut} of {len(encoded)} examples run past train.max_seq_len ({cfg['max_seq_len']} tokens) "
            "and are cut there")
    device = next(model.parameters()).device
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["learning_rate"], weight_decay=0.0)
    rng = random.Random(cfg["seed"])
    order: list[int] = []
    curve = []
    tokens_total = 0
    train_seconds = 0.0
    model.train()
    for step in range(1, cfg["steps"] + 1):
        batch = []
        for _ in range(min(cfg["batch_size"], len(encoded))):
            if not order:
                order = list(range(len(encoded)))
                rng.shuffle(order)
            batch.append(encoded[order.pop()])
        t0 = time.perf_counter()
        loss, n_tok = step_loss(model, batch, pad, device)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        train_seconds += dt
        tokens_total += n_tok
        if not np.isfinite(loss):
            raise RuntimeError(f"loss is {loss} at step {step}")
        curve.append(round(loss, 5))
        emit("progress", step=step, steps=cfg["steps"], loss=loss, tokens_per_second=n_tok / dt, seconds_per_step=dt)
    state = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items() if "lora_" in k}
    tmp = Path(cfg["out"] + ".part.npz")
    np.savez(tmp, **state)
    os.replace(tmp, cfg["out"])
    return {
        "backend": cfg["backend"], "description": desc, "steps": cfg["steps"], "loss_curve": curve,
        "tokens_per_second": tokens_total / train_seconds if train_seconds else 0.0,
        "seconds_per_step": train_seconds / cfg["steps"], "seconds": time.perf_counter() - t_start,
        "n_examples": len(encoded), "n_cut": n_cut, "peak_rss_mb": _peak_rss_mb(),
    }


def micro_batches(batch: list[tuple[list[int], list[int]]], pad_share: float) -> list[list[tuple[list[int], list[int]]]]:
    """The batch cut into groups of similar length, shortest first: a group grows while padding
    stays within ``pad_share`` of its tokens. One long example (a replayed general answer) no longer
    pads every short one in its batch to its length.

    >>> [[len(x) for x, _ in g] for g in micro_batches([([0] * n, []) for n in (40, 90, 42, 41, 88)], 0.25)]
    [[40, 41, 42], [88, 90]]
    """
    ordered = sorted(batch, key=lambda e: len(e[0]))
    groups = [[ordered[0]]]
    for e in ordered[1:]:
        g = groups[-1]
        real = sum(len(x) for x, _ in g) + len(e[0])
        if len(e[0]) * (len(g) + 1) > (1 + pad_share) * real:
            groups.append([e])
        else:
            g.append(e)
    return groups


def padded(group: list[tuple[list[int], list[int]]], pad: int) -> tuple[Any, Any, Any]:
    """One micro-batch as right-padded tensors: token ids, labels (-100 where none) and the
    attention mask."""
    import torch

    width = max(len(x) for x, _ in group)
    ids = torch.full((len(group), width), pad, dtype=torch.long)
    labels = torch.full((len(group), width), -100, dtype=torch.long)
    mask = torch.zeros((len(group), width), dtype=torch.long)
    for i, (x, y) in enumerate(group):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return ids, labels, mask


def step_loss(model: Any, batch: list[tuple[list[int], list[int]]], pad: int, device: Any,
              pad_share: float = 0.25) -> tuple[float, int]:
    """Accumulate the gradient of one optimizer step over length-grouped micro-batches: the batch's
    mean token loss (summed per group, divided by the batch's label count), the same value and
    gradient as one padded forward over the whole batch, with less padding computed, and the output
    layer run on the labelled positions' hidden states only. Returns the loss and the batch's real
    (unpadded) token count."""
    import torch.nn.functional as F

    n_labels = sum(sum(1 for t in y[1:] if t != -100) for _, y in batch)
    total = 0.0
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # under the LoRA wrapper
    decoder, head = causal_lm.get_decoder(), causal_lm.get_output_embeddings()
    for group in micro_batches(batch, pad_share):
        ids, labels, mask = padded(group, pad)
        # The output layer (576 x 49152 for the default model) only where a label is: the prompt's
        # positions have none, so their logits would change nothing but the work.
        hidden = decoder(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state[:, :-1, :]
        target = labels[:, 1:]
        where = target != -100
        logits = head(hidden[where.to(hidden.device)])
        loss = F.cross_entropy(logits.float(), target[where].to(logits.device), reduction="sum") / max(n_labels, 1)
        loss.backward()
        total += float(loss.detach())
    return total, sum(len(x) for x, _ in batch)


def reset_lora(model: Any) -> None:
    """Every LoRA layer back to its initial state (A random from torch's generator, B zero): the
    base model as it was before training, without loading it again."""
    n = 0
    for module in model.modules():
        reset = getattr(module, "reset_lora_parameters", None)
        if reset is not None and hasattr(module, "lora_A"):
            for name in list(module.lora_A.keys()):
                reset(name, True)
                n += 1
    if n == 0:
        raise RuntimeError("no LoRA layers to reset")


def load_lora(model: Any, path: str) -> None:
    """Set the model's LoRA weights from an earlier round's ``lora.npz`` (same rank and targets)."""
    import numpy as np
    import torch

    state = dict(np.load(path))
    own = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    missing = set(own) - set(state)
    if missing:
        raise RuntimeError(f"{path} lacks {len(missing)} LoRA tensors (rank or targets changed?), e.g. {sorted(missing)[0]}")
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        raise RuntimeError(f"{path}: {bad[0]} has shape {state[bad[0]].shape}, the model wants "
                           f"{tuple(own[bad[0]].shape)} (rank or targets changed?)")
    model.load_state_dict({k: torch.from_numpy(state[k]).to(own[k].dtype) for k in own}, strict=False)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def cmd_export(cfg: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from engine.train.export import cosine, gguf_tensors, layout, write_adapter

    state = dict(np.load(cfg["lora"]))
    hf = AutoConfig.from_pretrained(cfg["base_dir"])
    arch, permute_qk = layout(hf.model_type)
    tensors = gguf_tensors(state, hf.num_attention_heads, hf.num_key_value_heads, permute_qk)
    out = Path(cfg["out"])
    sha = write_adapter(out, tensors, cfg["alpha"], arch)
    log(f"wrote {out.name} ({len(tensors)} tensors, {arch})")

    # PyTorch fp32 reference: the cached base plus the same LoRA weights.
    def reference() -> Any:
        base = AutoModelForCausalLM.from_pretrained(cfg["base_dir"], dtype=torch.float32)
        return get_peft_model(base, LoraConfig(r=cfg["rank"], lora_alpha=cfg["alpha"], target_modules=cfg["targets"],
                                               lora_dropout=0.0, bias="none", task_type="CAUSAL_LM"))

    model, _ = _cached("reference", (cfg["base_dir"], cfg["rank"], cfg["alpha"], tuple(cfg["targets"])), reference)
    own = {k for k in model.state_dict() if "lora_" in k}
    missing = own - set(state)
    if missing:
        raise RuntimeError(f"LoRA state lacks {len(missing)} tensors, e.g. {sorted(missing)[0]}")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    model.eval()

    from engine.runtime.llama import Logits

    sims = []
    with Logits(cfg["gguf"], lora=out, n_ctx=512) as llm:  # loaded as the runtime loads it
        for text in cfg["prompts"]:
            toks = llm.tokenize(text, add_special=False)[:400]
            ll = llm.of(toks, last_only=True)[0].astype(np.float64)
            with torch.no_grad():
                pt = model(input_ids=torch.tensor([toks])).logits[0, -1].numpy()
            sims.append(cosine(ll, pt))
    worst = min(sims)
    result = {"sha256": sha, "path": str(out), "cosine": worst, "cosines": sims}
    if worst < cfg["threshold"]:
        rejected = out.with_name(out.stem + ".rejected.gguf")
        os.replace(out, rejected)
        raise ExportMismatch(
            f"exported adapter disagrees with PyTorch: logits cosine {worst:.4f} < {cfg['threshold']} "
            f"(kept for inspection as {rejected})"
        )
    return result


class ExportMismatch(RuntimeError):
    pass


COMMANDS = {"prepare": cmd_prepare, "train": cmd_train, "export": cmd_export}


def _answer(cmd: str, cfg: dict[str, Any]) -> bool:
    try:
        emit("result", **COMMANDS[cmd](cfg))
        return True
    except Exception as e:  # reported to the parent, which raises TrainingError
        import traceback

        traceback.print_exc()
        emit("error", message=f"{type(e).__name__}: {e}", kind=type(e).__name__)
        return False


def serve(preload: str | None = None) -> int:
    """The warm trainer's loop: one command per stdin line until stdin closes. ``preload="unsloth"``
    imports unsloth before anything imports transformers (it patches transformers and warns, and
    optimises less, when it comes second)."""
    global _warm
    _warm = True
    if preload == "unsloth":
        os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
        try:
            import unsloth  # noqa: F401
        except Exception as e:  # the train command reports it; peft then runs in a fresh worker
            print(f"unsloth does not import: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
    emit("ready", pid=os.getpid())
    print(f"warm training worker {os.getpid()} ready", file=sys.stderr, flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        print(f"== {msg['cmd']}", file=sys.stderr, flush=True)
        _answer(msg["cmd"], msg["cfg"])
        emit("done")
    return 0


def main() -> int:
    global _proto
    _proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints (unsloth's banner, progress bars) go to the log
    sys.stdout = sys.stderr
    if sys.argv[1] == "serve":
        return serve(sys.argv[2] if len(sys.argv) > 2 else None)
    return 0 if _answer(sys.argv[1], json.loads(sys.argv[2])) else 1


if __name__ == "__main__":
    sys.exit(main())
