"""Weight types side by side: speed, perplexity, accuracy, and an adapter trained on each.

For the model as shipped (Q4_1) and each type ``model.weights = "auto"`` considers (Q4_0, Q8_0,
F16, BF16), in one run on one machine:

- decode speed: the generation benchmark's workload, 1 agent and 8 agents batched (tokens/s);
- quality of the weights themselves: mean NLL on engine.weights' calibration text, and greedy
  accuracy of the base model on a default run's test sets (every level 1-3) and dev sets (1-2)
  and the general facts, with 95% intervals; each type is checked against the as-shipped
  figure's interval;
- quality after training: the same LoRA recipe (the default's rank, learning rate, steps) on the
  same verified 2-digit examples (generator tasks with their checked results), trained on each
  type's dequantized weights through the production path (``train_lora``: prepare, unsloth or
  peft, export), its export check against the converted file (logits cosine, the 0.99 gate),
  and the adapted model's accuracy on the test sets.

``ratios.best_weights_vs_q4_1_8``: the fastest type that stays within every interval, batched
tokens/s at 8 agents over the shipped Q4_1's.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import default_run_sets, shared_cache, table, versions, write_results
from benchmarks.generation import _measure, _requests
from engine.models import DEFAULT_MODEL, resolve_model

TYPES = ("as-is", "Q4_0", "Q8_0", "F16", "BF16")


def _examples(recipe: Any, n: int, seed: int) -> list[list[dict[str, str]]]:
    """Verified solver examples: 2-digit generator tasks with the checked result as the answer,
    in the exact chat the solver sees."""
    from engine.tasks import get_domain
    from engine.train.dataset import solve_messages

    dom = get_domain(recipe.task.domain)
    tasks = dom.generate(random.Random(seed), 2, n)
    out = []
    for t in tasks:
        assert dom.verify(t, str(t.reference)).correct
        out.append([*solve_messages(recipe, t.prompt), {"role": "assistant", "content": str(t.reference)}])
    return out


def run(quick: bool = False, model: str = DEFAULT_MODEL, types: tuple[str, ...] = TYPES,
        results_name: str = "weights") -> dict[str, Any]:
    """``types``: the weights measured, the file as shipped ("as-is", the reference) always first
    (about 15 minutes a type here); ``results_name``: the results file's name."""
    types = ("as-is", *[t for t in types if t != "as-is"])

    from engine.evaluate import score
    from engine.pools import set_name
    from engine.runtime import Runtime
    from engine.train.runner import TrainConfig, train_lora
    from engine.weights import convert, file_type, mean_nll

    src = resolve_model(model)
    shipped = file_type(src)
    max_tokens = 64 if quick else 128
    rows: list[dict[str, Any]] = []
    with shared_cache():
        with tempfile.TemporaryDirectory() as d:
            home = Path(d) / "home"
            rec, sets = default_run_sets(home, {"test": (1, 2, 3), "dev": (1, 2)}, 40 if quick else None)
            trained_sets = [set_name("test", lvl) for lvl in (1, 2, 3)]
            examples = _examples(rec, 64 if quick else 160, seed=11)
            spec = rec.train.model_copy(update={"steps": 12 if quick else rec.train.steps})
            for wtype in types:
                t0 = time.perf_counter()
                path = src if wtype == "as-is" else convert(src, wtype, home, print)
                row: dict[str, Any] = {"type": shipped if wtype == "as-is" else wtype, "as_shipped": wtype == "as-is",
                                       "convert_seconds": time.perf_counter() - t0, "mb": path.stat().st_size / 1e6}
                with Runtime(path, n_ctx=512, n_parallel=8) as rt:
                    rt.generate(_requests(1, 8)[0])  # warm up
                    row["tokens_per_second_1"] = _measure(rt, 1, max_tokens, batched=True)["tokens_per_second"]
                    row["tokens_per_second_8"] = _measure(rt, 8, max_tokens, batched=True)["tokens_per_second"]
                row["nll"] = mean_nll(path)
                with Runtime(path, n_ctx=rec.model.n_ctx, n_parallel=8) as rt:
                    row["base"] = {name: _score(score(rt, rec, tasks)[0]) for name, tasks in sets.items()}
                    t1 = time.perf_counter()
                    trained = train_lora(TrainConfig(home=home, gguf=path, workdir=Path(d) / f"train-{wtype}", spec=spec,
                                                     seed=5, check_prompts=[rt.chat.render(m[:-1]) for m in examples[:4]]),
                                         examples)
                    row["train"] = {"backend": trained.backend, "steps": trained.steps, "seconds": time.perf_counter() - t1,
                                    "final_loss": trained.loss_curve[-1] if trained.loss_curve else None,
                                    "export_cosine": trained.cosine}
                    rt.set_adapter(trained.adapter_path).result()
                    row["trained"] = {name: _score(score(rt, rec, sets[name])[0]) for name in trained_sets}
                rows.append(row)
                print(f"{row['type']}: {row['tokens_per_second_8']:.0f} tok/s at 8, NLL {row['nll']:.3f}, "
                      f"export cosine {trained.cosine:.4f}, trained test-2 {row['trained']['test-2']['accuracy']:.0%}")
    ref = rows[0]
    for row in rows:
        row["within_interval"] = {
            f"{kind}:{name}": ref[kind][name]["ci_low"] <= s["accuracy"] <= ref[kind][name]["ci_high"]
            for kind in ("base", "trained") for name, s in row[kind].items()}
        row["quality_kept"] = all(row["within_interval"].values()) and row["train"]["export_cosine"] >= 0.99
        row["speed_vs_shipped_8"] = row["tokens_per_second_8"] / ref["tokens_per_second_8"]
    kept = [r for r in rows if r["quality_kept"]]
    best = max(kept, key=lambda r: r["tokens_per_second_8"])
    fastest = max(rows, key=lambda r: r["tokens_per_second_8"])
    ratios = {"best_weights_vs_q4_1_8": best["tokens_per_second_8"] / ref["tokens_per_second_8"],
              "fastest_vs_q4_1_8": fastest["tokens_per_second_8"] / ref["tokens_per_second_8"]}
    names = list(ref["base"])
    print(table(["type", "MB", "tok/s 1", "tok/s 8", "x shipped", "NLL", *[f"base {n}" for n in names],
                 *[f"trained {n}" for n in trained_sets], "export cos", "kept"],
                [[r["type"], r["mb"], r["tokens_per_second_1"], r["tokens_per_second_8"], r["speed_vs_shipped_8"], r["nll"],
                  *[f"{r['base'][n]['accuracy']:.0%}" for n in names],
                  *[f"{r['trained'][n]['accuracy']:.0%}" for n in trained_sets],
                  r["train"]["export_cosine"], "yes" if r["quality_kept"] else "no"] for r in rows]))
    print(f"best kept: {best['type']} ({ratios['best_weights_vs_q4_1_8']:.2f}x); fastest: {fastest['type']} "
          f"({ratios['fastest_vs_q4_1_8']:.2f}x)")
    path = write_results(results_name, {"quick": quick, "model": model, "max_tokens": max_tokens, "rows": rows,
                                     "best": best["type"], "ratios": ratios,
                                     "versions": versions("llama-cpp-python", "torch", "unsloth", "peft")})
    print(f"wrote {path}")
    return {"rows": rows, "ratios": ratios}


def _score(sc: Any) -> dict[str, float]:
    return {"n": sc.n, "correct": sc.correct, "accuracy": sc.accuracy, "ci_low": sc.ci_low, "ci_high": sc.ci_high}


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
