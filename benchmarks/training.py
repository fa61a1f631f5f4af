"""Training throughput per backend on the same data: unsloth vs. PEFT fp32 (the baseline) vs.
PEFT bf16. Same LoRA rank and targets, same batches; each backend in its own worker process.

Then the training step itself, in one process with the default backend: the product's step
(``engine.train.worker.step_loss``: the output layer only at the labelled positions) against the
step with logits at every position (the baseline, kept here), on a round-like mix of every role's
examples (solver answers, critiques, revisions, verdicts: short labels after long prompts), the
same batches interleaved A B B A so that a neighbour's load falls on both alike; forward and
backward timed, the loss and gradients checked equal."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
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


def _round_like(n: int = 200) -> list[list[dict[str, str]]]:
    """Every role's examples as a default round makes them, in each role's own context."""
    from engine.agents import fill
    from engine.recipes import load_recipe
    from engine.train.dataset import role_messages, solve_messages, verdict_text

    rec = load_recipe("default")[0]
    p, ag = rec.prompts, {a.name: a for a in rec.agents}
    rng = random.Random(0)
    out = []
    for _ in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        q, wrong, kind = f"What is {a} + {b}?", str(a + b + rng.choice([-10, -1, 1, 10])), rng.random()
        if kind < 0.55:
            out.append(solve_messages(rec, q, ag["solver-a"]) + [{"role": "assistant", "content": str(a + b)}])
        elif kind < 0.7:
            out.append(role_messages(rec, ag["critic"], fill(p.critique, {"task": q, "answer": wrong})) + [
                {"role": "assistant", "content": f"The answer {wrong} is wrong: the ones digit is {(a + b) % 10}."}])
        elif kind < 0.85:
            crit = f"Check the ones: {a % 10} + {b % 10}."
            out.append(role_messages(rec, ag["solver-a"], fill(p.revise, {"task": q, "answer": wrong, "critique": crit}))
                       + [{"role": "assistant", "content": f"{a} + {b} = {a + b}"}])
        else:
            ok = rng.random() < 0.5
            out.append(role_messages(rec, ag["judge"], fill(p.judge, {"task": q, "answer": str(a + b) if ok else wrong}))
                       + [{"role": "assistant", "content": verdict_text(ok)}])
    return out


def every_logit_step(model: Any, batch: list[tuple[list[int], list[int]]], pad: int, device: Any,
                     pad_share: float = 0.25) -> float:
    """The baseline step: the same micro-batches, logits at every position, the prompt's ignored."""
    import torch.nn.functional as F

    from engine.train.worker import micro_batches, padded

    n_labels = sum(sum(1 for t in y[1:] if t != -100) for _, y in batch)
    total = 0.0
    for group in micro_batches(batch, pad_share):
        ids, labels, mask = padded(group, pad)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits[:, :-1, :]
        target = labels[:, 1:].to(logits.device)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1),
                               ignore_index=-100, reduction="sum") / max(n_labels, 1)
        loss.backward()
        total += float(loss.detach())
    return total


def step_child(base_dir: str, gguf: str, backend: str, batches_n: int) -> dict[str, Any]:
    """In this process: load the backend once, then time both steps on the same batches."""
    import torch.nn.functional as F

    from engine.models import check_gguf
    from engine.runtime.chat import ChatTemplate
    from engine.train import worker as W

    spec = TrainSpec()
    cfg = {"base_dir": base_dir, "max_seq_len": spec.max_seq_len, "rank": spec.rank, "alpha": spec.alpha,
           "dropout": 0.0, "targets": list(spec.targets), "seed": 0}
    model, tok, desc = W.BACKENDS[backend](cfg)
    template = ChatTemplate(check_gguf(gguf).chat_template)
    encoded = [(ids, labels) for ids, labels, _cut in filter(None, (W.encode(tok, template, m, spec.max_seq_len)
                                                                 for m in _round_like()))]
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    device = next(model.parameters()).device
    rng = random.Random(1)
    batches = [[encoded[rng.randrange(len(encoded))] for _ in range(spec.batch_size)] for _ in range(batches_n)]
    model.train()

    def grads() -> dict[str, Any]:
        g = {n: q.grad.detach().float().clone() for n, q in model.named_parameters() if q.requires_grad and q.grad is not None}
        model.zero_grad(set_to_none=True)
        return g

    every = every_logit_step(model, batches[0], pad, device)
    g_every = grads()
    labels, _ = W.step_loss(model, batches[0], pad, device)
    g_labels = grads()
    cosine = min(float(F.cosine_similarity(g_every[n].flatten(), g_labels[n].flatten(), dim=0))
                 for n in g_every if float(g_every[n].abs().sum()) > 0)
    times: dict[str, list[float]] = {"labels only": [], "every logit": []}
    steps = {"labels only": lambda b: W.step_loss(model, b, pad, device), "every logit": lambda b: every_logit_step(model, b, pad, device)}
    for i, b in enumerate(batches * 2):
        for name in (("labels only", "every logit") if i % 2 == 0 else ("every logit", "labels only")):
            t0 = time.perf_counter()
            steps[name](b)
            times[name].append(time.perf_counter() - t0)
            model.zero_grad(set_to_none=True)
    return {"description": desc, "examples": len(encoded),
            "mean_tokens": statistics.mean(len(x) for x, _ in encoded),
            "mean_labels": statistics.mean(sum(1 for t in y if t != -100) for _, y in encoded),
            "loss": {"every logit": every, "labels only": labels}, "min_gradient_cosine": cosine,
            "seconds": times, "median_seconds": {k: statistics.median(v) for k, v in times.items()}}


def run(quick: bool = False, model: str = DEFAULT_MODEL, name: str = "training") -> dict[str, Any]:
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
        for variant, extra in variants:
            r = run_worker("train", {**base, **extra, "out": str(work / f"{variant.replace(' ', '-')}.npz")}, work / "log")
            results[variant] = r
        backend = "unsloth" if unsloth_importable() else "peft"
        proc = subprocess.run([sys.executable, "-m", "benchmarks.training", "--step", prep["base_dir"], str(gguf), backend,
                               str(3 if quick else 12)], capture_output=True, text=True, env={**os.environ})
        if proc.returncode != 0:
            raise RuntimeError(f"training step benchmark failed: {proc.stderr[-2000:]}")
        step = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = [[n, r["seconds_per_step"], r["tokens_per_second"], r["peak_rss_mb"], r["loss_curve"][-1]] for n, r in results.items()]
    print(table(["backend", "s/step", "train tok/s", "peak RSS MB", "final loss"], rows))
    med = step["median_seconds"]
    print(table(["step (" + step["description"] + ")", "median s (forward + backward)", "loss"],
                [[k, med[k], step["loss"][k]] for k in ("every logit", "labels only")]))
    print(f"{step['examples']} round-like examples, {step['mean_tokens']:.0f} tokens and {step['mean_labels']:.1f} "
          f"labels each on average; gradients' least cosine {step['min_gradient_cosine']:.5f}")
    fastest = min(r["seconds_per_step"] for r in results.values())
    ratios = {"fastest_vs_peft_fp32": results["peft fp32"]["seconds_per_step"] / fastest,
              "labels_only_vs_every_logit_step": med["every logit"] / med["labels only"]}
    path = write_results(name, {"quick": quick, "device": _device(), "steps": steps, "batch_size": spec.batch_size, "rank": spec.rank,
                                      "results": results, "step": step, "ratios": ratios,
                                      "versions": versions("torch", "transformers", "peft", "unsloth")})
    print(f"wrote {path}")
    return {"ratios": ratios}


def _device() -> str:
    """Where the training ran: the CUDA device's name, else the CPU (torch imported in a child:
    this process stays free of it)."""
    proc = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.get_device_name(0) "
                           "if torch.cuda.is_available() else 'CPU')"], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--step":
        os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
        print(json.dumps(step_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))))
    else:
        import argparse

        ap = argparse.ArgumentParser(description="Training throughput per backend (unsloth, PEFT fp32, PEFT bf16).")
        ap.add_argument("--quick", action="store_true")
        ap.add_argument("--model", default=DEFAULT_MODEL, help="GGUF path or builtin name (default: %(default)s)")
        ap.add_argument("--name", default="training", help="results file name (default: %(default)s)")
        args = ap.parse_args()
        run(quick=args.quick, model=args.model, name=args.name)
