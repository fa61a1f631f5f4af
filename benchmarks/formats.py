"""Answer formats side by side: the same verified tasks trained in each of the domain's formats.

For every format of the default recipe's domain (arith: value, columns, reversed, digits), in one run:
the same train-pool generator tasks (``N_EXAMPLES`` of them, three quarters 2-digit sums and a
quarter 3-digit, the curriculum's usual mix at level 2), each answer written in that format
(``Domain.worked``), one LoRA trained on them through the production path (``train_lora``, the
default recipe's rank, learning rate and steps) from the base model, then greedy accuracy on
the run's test sets (1-, 2-, 3-digit addition and the mixed set) and the general facts, with
95% intervals. The base model is scored once as the baseline.

It screens formats, and with ``settings`` training settings (rank, learning rate, steps), cheaply
(a few minutes each); the loop's own gain with a format is measured by
``swarm bench improve`` with ``task.answer_format`` set. Every format is asked the same way,
with the same token budget (``MAX_TOKENS``: a 3-digit sum worked in columns needs about 30).

The screen has no solver's words, so the loop's ``plain`` (the solver's own words) cannot be
played here: ``worked(expr, "plain")`` is the value alone, which is the ``value`` format, and the
screen plays and labels it ``value`` (results before 2026-12-02 label that row ``plain``).

``ratios.best_vs_value_test_3``: the best format's 3-digit accuracy over value's.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import default_run_sets, shared_cache, table, versions, write_results
from engine.models import DEFAULT_MODEL, resolve_model

N_EXAMPLES = 160
MAX_TOKENS = 64
LEVELS = (1, 2, 3, 9)


def examples_in(recipe: Any, tasks: list[Any], fmt: str) -> list[list[dict[str, str]]]:
    """Each task's verified answer written in ``fmt``, in the exact chat the solver sees."""
    from engine.tasks import get_domain
    from engine.train.dataset import solve_messages

    dom = get_domain(recipe.task.domain)
    out = []
    for t in tasks:
        text = dom.worked(t, fmt)
        assert dom.verify(t, text).correct, (t.prompt, text)
        out.append([*solve_messages(recipe, t.prompt), {"role": "assistant", "content": text}])
    return out


def screened_formats(domain: str) -> tuple[str, ...]:
    """The formats the screen plays by default: the domain's, less ``plain`` where the domain has
    ``value`` (with no solver's words, a worked plain answer is the value alone).

    >>> screened_formats("arith")
    ('value', 'columns', 'reversed', 'digits', 'split')
    """
    from engine.tasks import get_domain

    fmts = tuple(get_domain(domain).formats)
    return tuple(f for f in fmts if f != "plain") if "value" in fmts else fmts


def train_tasks(recipe: Any, n: int, seed: int, levels: tuple[int, ...] | None = None) -> list[Any]:
    """``n`` distinct generator tasks from the run's train pool: 3/4 at level 2, 1/4 at level 3;
    or, with ``levels``, shared out evenly over those levels (the first ones take the remainder;
    a small level, e.g. 1-digit sums, gives what it has)."""
    from engine.pools import pool_of
    from engine.tasks import get_domain

    dom = get_domain(recipe.task.domain)
    rng = random.Random(seed)
    keep = lambda fp: pool_of(fp, recipe.seed) == "train"  # noqa: E731
    if levels is None:
        return dom.generate(rng, 2, n - n // 4, accept=keep) + dom.generate(rng, 3, n // 4, accept=keep)
    per, extra = divmod(n, len(levels))
    return [t for i, lvl in enumerate(levels) for t in dom.generate(rng, lvl, per + (i < extra), accept=keep)]


def run(quick: bool = False, model: str = DEFAULT_MODEL, formats: tuple[str, ...] | None = None,
        results_name: str = "formats", steps: tuple[int, ...] | None = None,
        settings: tuple[dict[str, Any], ...] | None = None, levels: tuple[int, ...] = LEVELS,
        max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    """``formats``: those measured (default: all of the domain's); ``steps``: optimizer steps per
    training (default: the recipe's; several train each format once per figure, labelled
    ``FORMAT@STEPS``); ``settings``: instead, training settings to try on each format, each a
    dict of ``train`` keys (``{"rank": 32, "alpha": 64}``), labelled ``FORMAT@key=value,...``
    (``{}``: the recipe's own, ``FORMAT@recipe``); the key ``examples`` there sets how many train
    tasks that trial learns from (default ``N_EXAMPLES``), to ask whether more data helps, and
    ``levels`` (a tuple) which levels they come from, evenly (default: 3/4 level 2, 1/4 level 3),
    to ask what a level's test set can reach when its tasks are trained on. The argument
    ``levels`` (not that key): the test sets scored (default 1-, 2-, 3-digit addition and the
    mixed set); the best row is the one best on 3-digit sums, then 2-digit, or without them on
    ``levels`` in the order given. ``max_tokens``: the solver's budget when scored (products worked in
    columns run to a median of 109 tokens at level 7 and 133 on the mixed level 9)."""
    from engine.evaluate import score
    from engine.pools import set_name
    from engine.runtime import Runtime
    from engine.train.runner import TrainConfig, train_lora

    path = resolve_model(model)
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    with shared_cache():
        with tempfile.TemporaryDirectory() as d:
            home = Path(d) / "home"
            rec, sets = default_run_sets(home, {"test": levels}, 40 if quick else None)
            rec = rec.model_copy(update={"agents": [a.model_copy(update={"max_tokens": max_tokens})
                                                    if a.role == "solver" else a for a in rec.agents]})
            formats = formats or screened_formats(rec.task.domain)
            tasks = train_tasks(rec, 48 if quick else N_EXAMPLES, seed=11)
            if settings:
                trials = [(f"{fmt}@" + (",".join(f"{k}={v}" for k, v in keys.items()) or "recipe"), fmt, keys)
                          for fmt in formats for keys in settings]
            else:
                step_list = steps or ((12,) if quick else (rec.train.steps,))
                trials = [(fmt if len(step_list) == 1 else f"{fmt}@{n}", fmt, {"steps": n})
                          for fmt in formats for n in step_list]
            with Runtime(path, n_ctx=rec.model.n_ctx, n_parallel=8) as rt:
                rows.append({"format": "base model", "scores": {n: _score(score(rt, rec, ts)[0]) for n, ts in sets.items()}})
                for label, fmt, keys in trials:
                    train_keys = {k: v for k, v in keys.items() if k not in ("examples", "levels")}
                    spec = rec.train.model_copy(update={"steps": 12 if quick else rec.train.steps, **train_keys})
                    own = "examples" in keys or "levels" in keys
                    trial_tasks = train_tasks(rec, keys.get("examples", len(tasks)), 11, keys.get("levels")) if own else tasks
                    examples = examples_in(rec, trial_tasks, fmt)
                    t1 = time.perf_counter()
                    trained = train_lora(TrainConfig(home=home, gguf=path, workdir=Path(d) / f"train-{label}", spec=spec,
                                                     seed=5, check_prompts=[rt.chat.render(m[:-1]) for m in examples[:4]]),
                                         examples)
                    rt.set_adapter(trained.adapter_path).result()
                    scored = {}
                    for name, ts in sets.items():
                        sc, texts = score(rt, rec, ts)
                        scored[name] = {**_score(sc), "sample": texts[:2]}
                    rt.set_adapter(None).result()
                    row = {"format": label, "answer_format": fmt, "train_settings": keys, "examples": len(trial_tasks),
                           "example": examples[0][-1]["content"], "scores": scored,
                           "train": {"backend": trained.backend, "steps": trained.steps,
                                     "seconds": time.perf_counter() - t1,
                                     "final_loss": trained.loss_curve[-1] if trained.loss_curve else None,
                                     "export_cosine": trained.cosine}}
                    rows.append(row)
                    print(f"{label}: " + ", ".join(f"{n} {s['accuracy']:.0%}" for n, s in scored.items()))
    names = list(rows[0]["scores"])
    print(table(["format", *names, "example"],
                [[r["format"], *[f"{r['scores'][n]['accuracy']:.0%} [{r['scores'][n]['ci_low']:.0%}, "
                                 f"{r['scores'][n]['ci_high']:.0%}]" for n in names], r.get("example", "-")]
                 for r in rows]))
    by = {r["format"]: r for r in rows}
    # the best: on 3-digit sums, then 2-digit (the default sets), else on the levels in the order asked
    ranked = [set_name("test", lvl) for lvl in ((3, 2) if {2, 3} <= set(levels) else levels)]
    best = max(rows[1:], key=lambda r: tuple(r["scores"][n]["accuracy"] for n in ranked))
    ratios = {}
    if "value" in by and by["value"]["scores"][ranked[0]]["accuracy"] > 0:
        key = "best_vs_value_test_3" if ranked[0] == set_name("test", 3) else f"best_vs_value_{ranked[0]}"
        ratios[key] = best["scores"][ranked[0]]["accuracy"] / by["value"]["scores"][ranked[0]]["accuracy"]
    out = write_results(results_name, {"quick": quick, "model": model, "examples": len(tasks), "max_tokens": max_tokens,
                                       "minutes": (time.perf_counter() - t_start) / 60, "rows": rows,
                                       "best": best["format"], "ratios": ratios,
                                       "versions": versions("llama-cpp-python", "torch", "unsloth", "peft")})
    print(f"best: {best['format']}; wrote {out}")
    return {"rows": rows, "best": best["format"], "ratios": ratios}


def _score(sc: Any) -> dict[str, Any]:
    return {"n": sc.n, "correct": sc.correct, "accuracy": sc.accuracy, "ci_low": sc.ci_low, "ci_high": sc.ci_high}


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
