"""One round of the default recipe, end to end: wall time, time per phase, peak memory.

Baselines in the same run: the same round (same recipe, seed, tasks) on the weights as shipped
(``model.weights = "as-is"``: Q4_1, which llama.cpp's batched CPU kernels do not cover), and
with the runtime serving one request at a time (``n_parallel = 1``, no shared prefixes), i.e.
what the loop would cost without swarm's batched runtime. ``auto``'s one-off measurement of the
weight types is made before the timed rounds (it is cached per machine, as on a machine that has
run swarm once). Each variant plays in its own process, in its own data dir,
so peak RSS is its own; the dequantized base weights are shared (``$SWARM_CACHE``), as on a
machine that has trained once. Peak RSS of the children is the training worker's.

``--quick`` shrinks the round (fewer tasks, dev tasks and training steps), same phases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (peak_rss_mb, recipe_variant, served_weights, shared_cache, shared_cache_env, table, versions,
                               write_results)

# Level 1 so that a short round still verifies enough answers to train on (train.min_examples).
QUICK = {"task": {"difficulty": 1, "generated": 10, "proposed": 2}, "round": {"samples": 1}, "eval": {"dev": 16, "test": 16},
         "train": {"steps": 6}}
SEQUENTIAL = {"model": {"n_parallel": 1, "prefix_cache": False, "weights": "as-is"}}
AS_SHIPPED = {"model": {"weights": "as-is"}}
# What training on every role's examples (issue 12) costs the round: the solvers' examples only.
SOLVER_ONLY = {"train": {"roles": ["solver"]}}
# A LoRA per role (train.adapters = "per-role"): their training, and the debates that gate them.
PER_ROLE = {"train": {"adapters": "per-role"}}


def play(recipe: str, rounds: int = 1, train: bool = True) -> dict[str, Any]:
    """Play ``rounds`` of ``recipe`` in this process's data dir; phase times from the events."""
    from engine.api import Engine
    from engine.events import PhaseFinished
    from engine.roundbase import tokens_used

    phases: dict[str, float] = {}
    by_round: dict[int, dict[str, float]] = {}

    def on_event(e: object) -> None:
        if isinstance(e, PhaseFinished):
            phases[e.phase] = phases.get(e.phase, 0.0) + e.seconds
            mine = by_round.setdefault(e.round, {})
            mine[e.phase] = mine.get(e.phase, 0.0) + e.seconds

    eng = Engine.open()
    try:
        eng.subscribe(on_event)
        t0 = time.perf_counter()
        run_id = eng.create_run(recipe, rounds=rounds, train=train)
        status = eng.play(run_id)
        wall = time.perf_counter() - t0
        q = eng.store.execute
        tokens = tokens_used(eng.store, run_id)
        counts = {t: q(f"select count(*) from {t} where run_id = ?", [run_id])[0][0]
                  for t in ("tasks", "attempts", "critiques", "verdicts", "examples", "evals")}
        tr = q("select backend, n_examples, seconds, tokens_per_second, status, error from training_runs where run_id = ? "
               "order by id desc limit 1", [run_id])
        rt_stats = dict(eng._runtime.stats) if eng._runtime is not None else {}
        trained = dict(q("select round, seconds from training_runs where run_id = ?", [run_id]))
        weights = served_weights(eng.store, run_id) or {}
        from engine.recipes import load_recipe

        caps = {a.name: a.max_tokens for a in load_recipe(recipe)[0].agents}
        profile = debate_profile(eng.store, run_id, caps)
    finally:
        eng.close()
    return {"status": status, "wall_seconds": wall, "weights": weights.get("type"), "phases": phases, "generated_tokens": int(tokens),
            "rows": counts, "runtime": rt_stats, "debate_profile": profile, "peak_rss_mb": peak_rss_mb(),
            # the train phase is training, export and the check; training_seconds the worker's training alone
            "per_round": [{"round": r, "seconds": sum(p.values()), "train_seconds": p.get("train"),
                           "training_seconds": trained.get(r), "phases": p} for r, p in sorted(by_round.items())],
            "training": dict(zip(("backend", "examples", "seconds", "tokens_per_second", "status", "error"), tr[0])) if tr else None}


def debate_profile(store: Any, run_id: int, caps: dict[str, int]) -> list[dict[str, Any]]:
    """Where the round's generation goes and what it feeds, per round and kind of request: first
    answers, critiques, revisions, verdicts. For each: requests, tokens written, request-seconds
    (overlapping under batching, so a share, not wall time), how many stopped at their agent's
    ``max_tokens`` (``capped``) and how many fed a training example (``in_example``); critiques and
    revisions also whether the answer changed, and revisions which way they flipped; critiques how
    many are the trained critic's confirmation of the answer (``confirmations``).
    Judge verdicts never feed an example (the judge's examples carry the verifier's label); their
    ``requests`` are the verdicts asked for, ``verdicts`` the rows (a repeated answer text of a task
    takes the verdict already given)."""
    q = store.execute

    def capped(agent: str, tokens: str) -> str:
        """SQL: 1 where the row's agent wrote its ``max_tokens``."""
        return " + ".join(f"({agent} = '{a.replace(chr(39), chr(39) * 2)}' and {tokens} >= {int(c)})::int"
                          for a, c in caps.items()) or "0"

    def fed(column: str, which: str) -> str:
        """SQL: 1 where the row's ``column`` is the attempt of an example matching ``which``."""
        return f"({column} in (select attempt_id from examples where run_id = {int(run_id)} and {which}))::int"

    out = []
    for (rnd,) in q("select distinct round from attempts where run_id = ? order by 1", [run_id]):
        first = q(f"""select count(*), sum(tokens), sum(seconds), sum({capped("agent", "tokens")}), sum(correct::int),
                      sum({fed("id", "role = 'solver'")})
                      from attempts where run_id = ? and round = ? and turn = 0""", [run_id, rnd])[0]
        crit = q(f"""select count(*), sum(c.tokens), sum(c.seconds), sum({capped("c.agent", "c.tokens")}),
                     sum((r.answer is distinct from a.answer)::int),
                     sum({fed("c.attempt_id", "role = 'critic' and source = 'critique'")}),
                     sum((lower(trim(c.text)) = lower('The answer ' || coalesce(a.answer, '') || ' is right.'))::int)
                     from critiques c join attempts a on a.id = c.attempt_id
                     left join attempts r on r.run_id = a.run_id and r.task_id = a.task_id and r.agent = a.agent
                          and r.sample = a.sample and r.turn = c.turn
                     where c.run_id = ? and c.round = ?""", [run_id, rnd])[0]
        rev = q(f"""select count(*), sum(r.tokens), sum(r.seconds), sum({capped("r.agent", "r.tokens")}),
                    sum((r.answer is distinct from a.answer)::int), sum((a.correct and not r.correct)::int),
                    sum((not a.correct and r.correct)::int),
                    sum({fed("r.id", "role in ('solver', 'reviser')")})
                    from attempts r join attempts a on a.run_id = r.run_id and a.task_id = r.task_id and a.agent = r.agent
                         and a.sample = r.sample and a.turn = r.turn - 1
                    where r.run_id = ? and r.round = ? and r.turn > 0""", [run_id, rnd])[0]
        ver = q(f"""select sum((tokens > 0)::int), sum(tokens), sum(seconds), sum({capped("judge", "tokens")}),
                    sum(agreement::int), count(*)
                    from verdicts where run_id = ? and round = ?""", [run_id, rnd])[0]
        keys = ("requests", "tokens", "request_seconds", "capped")
        row = {"round": rnd,
               "answers": {**dict(zip(keys, first[:4])), "right": first[4], "in_example": first[5]},
               "critiques": {**dict(zip(keys, crit[:4])), "answer_changed": crit[4], "in_example": crit[5],
                             "confirmations": crit[6]},
               "revisions": {**dict(zip(keys, rev[:4])), "answer_changed": rev[4], "right_to_wrong": rev[5],
                             "wrong_to_right": rev[6], "in_example": rev[7]},
               "verdicts": {**dict(zip(keys, ver[:4])), "agreed": ver[4], "verdicts": ver[5], "in_example": 0}}
        for kind in ("answers", "critiques", "revisions", "verdicts"):
            row[kind] = {k: (round(float(v), 2) if isinstance(v, float) else int(v or 0)) for k, v in row[kind].items()}
        out.append(row)
    return out


def _child(recipe: Path, home: Path, rounds: int = 1) -> dict[str, Any]:
    env = {**os.environ, **shared_cache_env(), "SWARM_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.round", "--child", str(recipe), str(rounds)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"round benchmark child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure_weights() -> str:
    """auto's measurement for the default recipe, made (and cached) before anything is timed."""
    from engine.models import resolve_model
    from engine.paths import home_dir
    from engine.recipes import load_recipe
    from engine.weights import choose

    m = load_recipe("default")[0].model
    with shared_cache():
        return choose(resolve_model(m.path), m.weights, home_dir(), n_parallel=m.n_parallel, n_threads=m.n_threads,
                      gpu_layers=m.gpu_layers, log=print).reason


def run(quick: bool = False, only: tuple[str, ...] = (), rounds: int = 1, results_name: str | None = None) -> dict[str, Any]:
    """``only`` plays some of the variants (swarm, as shipped, sequential; "solver only", training on
    the solvers' examples alone, and "per-role", a LoRA per role, only when named); the swarm one
    always. ``results_name``: the results file's name (default ``round``, or ``round-Nrounds``).
    ``rounds`` > 1 plays that many rounds per variant (results in ``round-Nrounds.json``): what the
    warm trainer saves after the first round shows in ``per_round``."""
    auto = _measure_weights()
    variants = {k: v for k, v in {"swarm": {}, "as shipped": AS_SHIPPED, "sequential": SEQUENTIAL,
                                  "solver only": SOLVER_ONLY, "per-role": PER_ROLE}.items()
                if (not only and k not in ("solver only", "per-role")) or k in only or k == "swarm"}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        shrink = QUICK if quick else {}
        for name, over in variants.items():
            folder = work / name.replace(" ", "-")
            folder.mkdir()
            results[name] = _child(recipe_variant("default", folder, {**shrink, **over}), folder / "home", rounds)
    b = results["swarm"]
    names = [p for p in ("propose", "solve", "debate", "judge", "hint", "verify", "collect", "train", "evaluate")
             if any(p in r["phases"] for r in results.values())]
    rows = [[p, *[r["phases"].get(p, 0.0) for r in results.values()]] for p in names]
    rows.append(["whole round (wall)", *[r["wall_seconds"] for r in results.values()]])
    rows.append(["peak RSS, engine (MB)", *[r["peak_rss_mb"]["process"] for r in results.values()]])
    rows.append(["peak RSS, training worker (MB)", *[r["peak_rss_mb"]["children"] for r in results.values()]])
    rows.append(["generated tokens", *[r["generated_tokens"] for r in results.values()]])
    heads = {"swarm": f"swarm ({b['weights']}, batched)", "as shipped": "as shipped (batched)",
             "sequential": "one request at a time (as shipped)", "solver only": "solver examples only",
             "per-role": "a LoRA per role"}
    print(table(["phase (s)", *[heads[k] for k in results]], rows))
    gen_phases = ("propose", "solve", "debate", "judge", "evaluate")

    def gen(r: dict[str, Any]) -> float:
        return max(1e-9, sum(r["phases"].get(p, 0) for p in gen_phases))

    ratios: dict[str, float] = {}
    w, s, so = results.get("as shipped"), results.get("sequential"), results.get("solver only")
    pr = results.get("per-role")
    if pr is not None:  # what a LoRA per role costs the round (training four, gating three on debates)
        ratios["per_role_vs_shared_round"] = pr["wall_seconds"] / b["wall_seconds"]
        for phase in ("train", "evaluate"):
            ratios[f"per_role_vs_shared_{phase}"] = pr["phases"].get(phase, 0) / max(1e-9, b["phases"].get(phase, 0))
    if so is not None:  # what the other roles' training examples add to the round
        ratios["every_role_vs_solver_only_round"] = b["wall_seconds"] / so["wall_seconds"]
        ratios["every_role_vs_solver_only_train"] = b["phases"].get("train", 0) / max(1e-9, so["phases"].get("train", 0))
    if w is not None:
        ratios["as_shipped_vs_swarm_round"] = w["wall_seconds"] / b["wall_seconds"]
        ratios["as_shipped_vs_swarm_generation_phases"] = gen(w) / gen(b)
    if s is not None:
        ref = w if w is not None else b
        ratios["sequential_vs_batched_round"] = s["wall_seconds"] / ref["wall_seconds"]
        ratios["sequential_vs_batched_generation_phases"] = gen(s) / gen(ref)
    for name, r in results.items():
        print(f"{name}, per round: " + "; ".join(
            f"round {x['round']} {x['seconds']:.0f} s (train {x['train_seconds'] or 0:.0f} s)" for x in r["per_round"]))
    prof_rows = []
    for r in b.get("debate_profile", []):
        for kind in ("answers", "critiques", "revisions", "verdicts"):
            k = r[kind]
            prof_rows.append([r["round"], kind, k["requests"], k["tokens"], k["request_seconds"], k["capped"],
                              k.get("answer_changed", ""), k.get("confirmations", ""), k["in_example"]])
    if prof_rows:
        print(table(["round", "swarm: generated", "requests", "tokens", "request-s", "at max_tokens", "answer changed",
                     "confirms the answer", "fed an example"], prof_rows))
    path = write_results(results_name or ("round" if rounds == 1 else f"round-{rounds}rounds"), {
                                   "quick": quick, "recipe": "default", "overrides": shrink, "auto_weights": auto, "rounds": rounds,
                                   "results": results, "round_seconds": b["wall_seconds"], "ratios": ratios,
                                   "versions": versions("llama-cpp-python", "torch", "unsloth", "duckdb")})
    print(f"wrote {path}")
    return {"ratios": ratios, "round_seconds": b["wall_seconds"]}


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        out = play(sys.argv[2], rounds=int(sys.argv[3]) if len(sys.argv) > 3 else 1)
        print(json.dumps(out, default=str))
    else:
        run(quick="--quick" in sys.argv)
