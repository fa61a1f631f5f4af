"""Offline: does a computing judge that works the task with its commutative operands swapped
(b + a for a + b, d * c for c * d) err less in step with the solver than one that works the same
task? One adapter's greedy first answers on test sets; the judge (greedy, one result) on the same
prompt and on the swapped one; balanced accuracy of each as a judge of the first answers, and of
the two together (right only when both agree with the answer).

A one-off probe, kept as it ran (2026-12-04) on a copy of the home of the improve benchmark's
seed-7 look-ahead run (``improve-columns-ahead-seed7-partial.json``), round 3's adapter:
``PYTHONPATH=. python benchmarks/probes/swap_judge.py HOME HOME/runs/1/round-3/train-4/adapter.gguf 2,3,9``
(the per-task rows it wrote are ``benchmarks/results/probe-swap-judge-seed7-round3.json``).
Run again (2026-12-04) on round 3's adapter of the same seed played with round.judge_view = "swapped"
(``improve-columns-ahead-swapjudge-seed7-partial.json``): ``probe-swap-judge-swaptrained-seed7-round3.json``.
It swapped with a copy of its own then; it now takes the engine's view (``Arith.view``), which gives
the same swapped expression on every one of those 600 rows.
Usage: swap_judge.py HOME ADAPTER LEVELS"""
import json, sys
from pathlib import Path

from benchmarks.probes.common import open_copy
from engine.agents import judge_requests, judge_text, judge_result
from engine.evaluate import score
from engine.pools import pool_tasks


src, adapter, levels = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
home, eng, run_id, rec, dom = open_copy(src)
rt = eng.runtime_for(rec, run_id)
if adapter != "base":
    rt.set_adapter(adapter).result()
judge = rec.agents_with("judge")[0].model_copy(update={"temperature": 0.0})
rows = []
for lvl in levels:
    tasks = pool_tasks(eng.store, run_id, "test", lvl)
    sc, firsts = score(rt, rec, tasks)
    swaps = [dom.view(tr.task, "swapped") for tr in tasks]  # (round.judge_view = "swapped"'s view)
    reqs = [judge_requests(rec, judge, p, "", 0, greedy=True) for p in
            [tr.task.prompt for tr in tasks] + [s.prompt for s in swaps]]
    comps = iter(rt.submit_many([r for rs in reqs for r in rs]))
    texts = [judge_text(rec, next(comps).result().text) for _ in reqs]
    n = len(tasks)
    for i, (tr, first) in enumerate(zip(tasks, firsts)):
        v = dom.verify(tr.task, first)
        rows.append({"level": lvl, "expr": tr.task.payload["expression"], "swapped": swaps[i].payload["expression"],
                     "ref": tr.task.reference, "first": v.answer, "first_ok": v.correct,
                     "same": judge_result(rec, dom, tr.task, texts[i]),
                     "swap": judge_result(rec, dom, swaps[i], texts[n + i]), "swap_text": texts[n + i]})
json.dump(rows, open(f"/tmp/bench/swapjudge-{Path(adapter).stem}.json", "w"), indent=0)


def bal(said):
    tp = sum(1 for r in rows if r["first_ok"] and said(r)); fn = sum(1 for r in rows if r["first_ok"] and not said(r))
    tn = sum(1 for r in rows if not r["first_ok"] and not said(r)); fp = sum(1 for r in rows if not r["first_ok"] and said(r))
    return (tp / max(tp + fn, 1) + tn / max(tn + fp, 1)) / 2, tp, fn, tn, fp


n = len(rows)
print(f"{n} tasks, levels {levels}; first answers right {sum(r['first_ok'] for r in rows)}/{n}")
for name, said in (("same prompt", lambda r: r["same"] == r["first"]), ("swapped", lambda r: r["swap"] == r["first"]),
                   ("both", lambda r: r["same"] == r["first"] and r["swap"] == r["first"])):
    b, tp, fn, tn, fp = bal(said)
    print(f"{name}: balanced {b:.1%} (right answers called right {tp}/{tp+fn}, wrong called wrong {tn}/{tn+fp})")
for k in ("same", "swap"):
    print(f"judge's own results right ({k}): {sum(r[k] == r['ref'] for r in rows)}/{n}")
wrong = [r for r in rows if not r["first_ok"]]
print(f"of {len(wrong)} wrong first answers: same-prompt result equals it {sum(r['same'] == r['first'] for r in wrong)}, "
      f"swapped result equals it {sum(r['swap'] == r['first'] for r in wrong)}")
eng.close()
