"""Offline: how many sequences to decode together (model.n_parallel), on the loop's own workloads
under one adapter of a finished run: greedy scoring of the test sets of levels 3 and mixed (200
tasks) under the adapter, the base model's greedy scoring of test-2 (100 tasks, its long answers),
and sampled solving (each solver 2 samples of 72 of the run's round tasks, the recipe's sampling).
Each size in turn, the sizes alternated REPS times, the accuracy beside each time: a larger batch
changes the arithmetic, so some greedy answers change with it.

Run (2026-12-07, AMD EPYC 2 cores, alone) under round 7's adapter of seed 8's base-skip run, as two
one-off scripts that were this probe's first forms: sizes 8 and 16, 2 reps, scoring only (adapter
45.3 and 48.0 s at 8, 35.4 and 33.3 s at 16; base 34.8, 37.6 against 30.7, 30.4 s); then sizes 8,
16 and 32, 1 rep, scoring and solving (solving 60.3, 54.1 and 41.6 s). This form, ``... HOME
runs/1/round-7/train-8/adapter.gguf 8,16 1``: adapter 45.8 s (56.0%) and 36.1 s (55.5%), sampled answers
62.5 and 51.2 s, base 35.0 s (10.0%) and 29.8 s (9.0%). The loop itself with 16:
benchmarks/results/improve-np16-seeds7-8-9.json (README, Benchmarks).
Usage: n_parallel.py HOME ADAPTER [SIZES [REPS]] (ADAPTER relative to HOME; SIZES comma-separated,
default 8,16)"""
import sys
import time

from benchmarks.probes.common import open_copy
from engine.agents import fill, request
from engine.evaluate import score
from engine.pools import pool_tasks

home, eng, run_id, rec, dom = open_copy(sys.argv[1])
adapter = str(home / sys.argv[2])
sizes = [int(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else [8, 16]
reps = int(sys.argv[4]) if len(sys.argv) > 4 else 2
tasks = pool_tasks(eng.store, run_id, "test", 3) + pool_tasks(eng.store, run_id, "test", 9)
base_tasks = pool_tasks(eng.store, run_id, "test", 2)
last = eng.store.execute("select max(round) from rounds where run_id = ?", [run_id])[0][0]
prompts = [r[0] for r in eng.store.execute(
    "select prompt from tasks where run_id = ? and round = ? and held_out = false and rejected_reason is null "
    "order by id", [run_id, last])][:72]
for rep in range(reps):
    for n in sizes:
        r = rec.model_copy(update={"model": rec.model.model_copy(update={"n_parallel": n})})
        rt = eng.runtime_for(r, run_id)
        rt.set_adapter(adapter).result()
        t0 = time.perf_counter()
        sc, _ = score(rt, r, tasks)
        t1 = time.perf_counter()
        reqs = [request(s, fill(r.prompts.solve, {"task": p}), 1000 * k + i)
                for i, p in enumerate(prompts) for s in r.agents_with("solver") for k in range(2)]
        t2 = time.perf_counter()
        out = [c.result() for c in rt.submit_many(reqs)]
        t3 = time.perf_counter()
        rt.set_adapter(None).result()
        t4 = time.perf_counter()
        sb, _ = score(rt, r, base_tasks)
        t5 = time.perf_counter()
        toks = sum(o.completion_tokens for o in out)
        print(f"rep {rep} n_parallel {n}: adapter, {len(tasks)} tasks {t1 - t0:.1f} s ({sc.accuracy:.1%}); "
              f"{len(reqs)} sampled answers {t3 - t2:.1f} s ({toks / (t3 - t2):.0f} tok/s); "
              f"base, {len(base_tasks)} tasks {t5 - t4:.1f} s ({sb.accuracy:.1%})", flush=True)
