"""Offline: does decoding more sequences together (model.n_parallel) lower the gate's dev scores?
Under each chosen adapter of a finished run, the dev sets of the chosen levels are scored greedily at
each size, and each size's answers are paired by task with the first size's: the tasks right only at
the first size and only at the other, with the exact one-sided sign test's p that the other size loses more than it wins
(engine.evaluate.paired, as the gate pairs two adapters).
A larger batch changes the arithmetic and so some greedy answers; the question is whether it
changes them one way (benchmarks/results/improve-np16-seeds7-8-9.json: every seed's level-ups as
late or later with 16 sequences, and its mixed set lower).
Run (2026-12-07, AMD EPYC 2 cores, alone) on seed 8's base-skip run, ``HOME 1,3,5,7 2,3,4``: 1,200
answers at each size, 3 right only at 8 and 3 only at 16 (p = 0.656), 5.4 min.
Usage: n_parallel_dev.py HOME ROUNDS LEVELS [SIZES] (ROUNDS: comma-separated rounds whose trained
adapter to load, e.g. 1,3,5,7; LEVELS e.g. 2,3,4; SIZES default 8,16)"""
import sys
import time
from pathlib import Path

from benchmarks.probes.common import open_copy
from engine.evaluate import paired, score
from engine.pools import pool_tasks

home, eng, run_id, rec, dom = open_copy(sys.argv[1])
rounds = [int(x) for x in sys.argv[2].split(",")]
levels = [int(x) for x in sys.argv[3].split(",")]
sizes = [int(x) for x in sys.argv[4].split(",")] if len(sys.argv) > 4 else [8, 16]
sets = {lvl: pool_tasks(eng.store, run_id, "dev", lvl) for lvl in levels}
pooled: dict[int, dict[tuple[int, int], bool]] = {n: {} for n in sizes}  # (round, task id) -> right, per size
for rnd in rounds:
    adapter = next(Path(home, "runs", str(run_id), f"round-{rnd}").glob("train-*/adapter.gguf"))
    for lvl, tasks in sets.items():
        if not tasks:
            continue
        oks = {}
        for n in sizes:
            r = rec.model_copy(update={"model": rec.model.model_copy(update={"n_parallel": n})})
            rt = eng.runtime_for(r, run_id)
            rt.set_adapter(str(adapter)).result()
            t0 = time.perf_counter()
            sc, _texts = score(rt, r, tasks)
            oks[n] = sc.outcomes
            pooled[n].update({(rnd, tid): ok for tid, ok in sc.outcomes.items()})
            print(f"round {rnd} dev-{lvl} n_parallel {n}: {sc.accuracy:.1%} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for n in sizes[1:]:
            pr = paired(oks[n], oks[sizes[0]])
            print(f"  paired: right only at {sizes[0]}: {pr.worse}, only at {n}: {pr.better}", flush=True)
for n in sizes[1:]:
    pr = paired(pooled[n], pooled[sizes[0]])
    print(f"all: right only at {sizes[0]}: {pr.worse}, only at {n}: {pr.better}, one-sided sign test p = {pr.p_worse:.3f}")
