"""One round of the default recipe, end to end: wall time, time per phase, peak memory.

Baseline in the same run: the same round (same recipe, seed, tasks) with the runtime serving
one request at a time (``n_parallel = 1``, no shared prefixes), i.e. what the loop would cost
without swarm's batched runtime. Each variant plays in its own process, in its own data dir,
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

from benchmarks.common import peak_rss_mb, recipe_variant, shared_cache_env, table, versions, write_results

# Level 1 so that a short round still verifies enough answers to train on (train.min_examples).
QUICK = {"task": {"difficulty": 1, "generated": 10, "proposed": 2}, "round": {"samples": 1}, "eval": {"dev": 16, "test": 16},
         "train": {"steps": 6}}
SEQUENTIAL = {"model": {"n_parallel": 1, "prefix_cache": False}}


def play(recipe: str, rounds: int = 1, train: bool = True) -> dict[str, Any]:
    """Play ``rounds`` of ``recipe`` in this process's data dir; phase times from the events."""
    from engine.api import Engine
    from engine.events import PhaseFinished
    from engine.roundbase import tokens_used

    phases: dict[str, float] = {}

    def on_event(e: object) -> None:
        if isinstance(e, PhaseFinished):
            phases[e.phase] = phases.get(e.phase, 0.0) + e.seconds

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
    finally:
        eng.close()
    return {"status": status, "wall_seconds": wall, "phases": phases, "generated_tokens": int(tokens),
            "rows": counts, "runtime": rt_stats, "peak_rss_mb": peak_rss_mb(),
            "training": dict(zip(("backend", "examples", "seconds", "tokens_per_second", "status", "error"), tr[0])) if tr else None}


def _child(recipe: Path, home: Path, rounds: int = 1) -> dict[str, Any]:
    env = {**os.environ, **shared_cache_env(), "SWARM_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.round", "--child", str(recipe), str(rounds)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"round benchmark child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "batched").mkdir()
        (work / "sequential").mkdir()
        shrink = QUICK if quick else {}
        batched_recipe = recipe_variant("default", work / "batched", shrink)
        seq_recipe = recipe_variant("default", work / "sequential", {**shrink, **SEQUENTIAL})
        results = {"batched": _child(batched_recipe, work / "batched" / "home"),
                   "sequential": _child(seq_recipe, work / "sequential" / "home")}
    b, s = results["batched"], results["sequential"]
    names = [p for p in ("propose", "solve", "debate", "judge", "hint", "verify", "collect", "train", "evaluate")
             if p in b["phases"] or p in s["phases"]]
    rows = [[p, b["phases"].get(p, 0.0), s["phases"].get(p, 0.0)] for p in names]
    rows.append(["whole round (wall)", b["wall_seconds"], s["wall_seconds"]])
    rows.append(["peak RSS, engine (MB)", b["peak_rss_mb"]["process"], s["peak_rss_mb"]["process"]])
    rows.append(["peak RSS, training worker (MB)", b["peak_rss_mb"]["children"], s["peak_rss_mb"]["children"]])
    rows.append(["generated tokens", b["generated_tokens"], s["generated_tokens"]])
    print(table(["phase (s)", "swarm (batched)", "one request at a time"], rows))
    gen_phases = ("propose", "solve", "debate", "judge", "evaluate")
    ratios = {
        "sequential_vs_batched_round": s["wall_seconds"] / b["wall_seconds"],
        "sequential_vs_batched_generation_phases": sum(s["phases"].get(p, 0) for p in gen_phases)
        / max(1e-9, sum(b["phases"].get(p, 0) for p in gen_phases)),
    }
    path = write_results("round", {"quick": quick, "recipe": "default", "overrides": shrink, "results": results,
                                   "ratios": ratios, "versions": versions("llama-cpp-python", "torch", "unsloth", "duckdb")})
    print(f"wrote {path}")
    return {"ratios": ratios}


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--child":
        out = play(sys.argv[2], rounds=int(sys.argv[3]) if len(sys.argv) > 3 else 1)
        print(json.dumps(out, default=str))
    else:
        run(quick="--quick" in sys.argv)
