"""Offline: a run's adapters on the mixed set as issue 13 names it (+, -, x; 2 or 3 terms; numbers of
1 or 2 digits; level 9 since 2026-12-06) beside the run's stored level-9 test set, which for a run
created before then is the old one (3 terms, 2 digits each), and beside its 1-, 2- and 3-digit test
sets: greedy pass@1, the solver as the recipe asks it.

The new set is drawn as ``engine.pools.ensure_pools`` draws a test set (the same seed and size, from
the run's test share of all tasks, new to the run), so it is the set a run created now would hold.
Usage: mixed_sets.py HOME ADAPTER[,ADAPTER...] [NAME]   (ADAPTER: a path, or ``base``)"""
import random
import sys
import time

from benchmarks.common import write_results
from benchmarks.probes.common import open_copy
from engine.agents import seed_for
from engine.evaluate import score
from engine.pools import known_keys, pool_of, pool_tasks
from engine.roundbase import TaskRow

src, adapters = sys.argv[1], sys.argv[2].split(",")
name = sys.argv[3] if len(sys.argv) > 3 else "probe-mixed-sets"
home, eng, run_id, rec, dom = open_copy(src)
seed = eng.run_info(run_id).seed
known = known_keys(eng.store, run_id, dom.name)
drawn = dom.generate(random.Random(seed_for(seed, "test", 9)), 9, rec.eval.test,
                     accept=lambda k: pool_of(k, seed) == "test" and k not in known)
new_mixed = [TaskRow(-(i + 1), t) for i, t in enumerate(drawn)]
sets = {**{f"test-{lvl}": pool_tasks(eng.store, run_id, "test", lvl) for lvl in (1, 2, 3, 9)},
        "mixed (issue 13)": new_mixed}
rt = eng.runtime_for(rec, run_id)
out: dict = {"home": src, "seed": seed, "adapters": {}, "sets": {k: len(v) for k, v in sets.items()},
             "examples": [t.task.payload["expression"] for t in new_mixed[:12]]}
for adapter in adapters:
    t0 = time.perf_counter()
    rt.set_adapter(None if adapter == "base" else adapter).result()
    row = {}
    for set_name, tasks in sets.items():
        sc, _texts = score(rt, rec, tasks, seed=seed)
        row[set_name] = {"n": sc.n, "correct": sc.correct, "accuracy": sc.accuracy, "ci": [sc.ci_low, sc.ci_high]}
        if set_name == "mixed (issue 13)":
            terms = {}
            for tr in tasks:
                k = len(tr.task.payload["expression"].split()[::2])
                ok = sc.outcomes[tr.id]
                terms.setdefault(str(k), [0, 0])[0] += ok
                terms[str(k)][1] += 1
            row["mixed (issue 13) by terms"] = terms
    row["seconds"] = round(time.perf_counter() - t0, 1)
    out["adapters"][adapter] = row
    print(adapter, {k: (v["correct"], v["n"]) for k, v in row.items() if isinstance(v, dict) and "n" in v}, flush=True)
print(f"wrote {write_results(name, out)}")
