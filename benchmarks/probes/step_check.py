"""Offline: the step critic (round.critique = "steps", engine/stepcheck.py) against the recipe's
own critic and reviser, in the debate protocol (engine.protocol.debate_score) on one adapter's
test sets: the same greedy first answers, the same judge (the run recipe's), the debate's answer
and the revisions alone scored against the first answers.

Run (2026-12-05) on a copy of the home of a seed-8 run of the default recipe (72 tasks a round, the
debate on 10, 30 steps; round 4's adapter, kept by its gate; 2-digit 90%, 3-digit 87%, mixed 18% on
its test sets): ``PYTHONPATH=. python benchmarks/probes/step_check.py HOME
HOME/runs/1/round-4/train-5/adapter.gguf 1,2,3,9`` wrote ``benchmarks/results/probe-step-check-seed8-round4.json``.
On the same run's round-6 adapter, ``... HOME/runs/1/round-6/train-7/adapter.gguf 2,3,9
steps,stepsd,stepsid,stepsid+judge probe-step-digits-seed8-round6`` (2026-12-05).
With VARIANTS (comma-separated, default ``text,steps``; ``stepsN``: the step critic for N turns, each
turn checking the answer the last one continued; a trailing ``i``: each check inline,
round.step_check = "inline"; then a trailing ``d``: only operations of one-digit numbers checked, a sum's
smallest first, round.step_operands = "digits"; ``+judge``: the computing judge's own work checked
and mended so too, round.judge_check = "steps") and NAME, the results go to ``NAME``.
Usage: step_check.py HOME ADAPTER LEVELS [VARIANTS [NAME]]"""
import sys
import time

from benchmarks.common import write_results
from benchmarks.probes.common import open_copy
from engine.evaluate import score
from engine.pools import pool_tasks
from engine.protocol import DebateScore, debate_score

src, adapter, levels = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
home, eng, run_id, rec, dom = open_copy(src)
rt = eng.runtime_for(rec, run_id)
if adapter != "base":
    rt.set_adapter(adapter).result()
names = sys.argv[4].split(",") if len(sys.argv) > 4 else ["text", "steps"]
results_name = sys.argv[5] if len(sys.argv) > 5 else "probe-step-check-seed8-round4"


def variant(name: str):
    critic, _plus, judge = name.partition("+")
    digits = critic.endswith("d")
    critic = critic.removesuffix("d")
    inline = critic.endswith("i")
    critic = critic.removesuffix("i")
    critique, turns = ("text", "1") if critic == "text" else (critic[:5], critic[5:] or "1")
    if critique not in ("text", "steps") or not turns.isdigit() or judge not in ("", "judge"):
        raise SystemExit(f"unknown variant {name!r} (text, steps, stepsN, stepsNi, stepsNd, stepsNid, each with "
                         "+judge or not)")
    return rec.model_copy(update={"round": rec.round.model_copy(update={
        "critique": critique, "debate_turns": int(turns), "judge_check": "steps" if judge else "none",
        "step_check": "inline" if inline else "task", "step_operands": "digits" if digits else "any"})})


variants = {name: variant(name) for name in names}
out: dict = {"adapter": adapter, "levels": levels, "recipe_round": rec.round.model_dump(), "variants": {}}
pooled = {k: DebateScore(0, 0, 0, 0, 0) for k in variants}
for lvl in levels:
    tasks = pool_tasks(eng.store, run_id, "test", lvl)
    _sc, firsts = score(rt, rec, tasks)
    for name, r in variants.items():
        t0 = time.perf_counter()
        deb = debate_score(rt, r, tasks, firsts)
        secs = time.perf_counter() - t0
        pooled[name] = pooled[name] + deb
        out["variants"].setdefault(name, {})[str(lvl)] = {**deb.summary(), "seconds": secs,
                                                           "critiques": [deb.traces[tr.id].critique for tr in tasks]}
        s = deb.summary()
        print(f"level {lvl} {name:12s}: first {s['first']:.1%} debate {s['final']:.1%} gain {100 * s['gain']:+.1f} "
              f"r->w {deb.right_to_wrong} w->r {deb.wrong_to_right} revisions {s.get('revised', {}).get('gain', 0) * 100:+.1f} "
              f"({secs:.0f} s)", flush=True)
for name, deb in pooled.items():
    s = deb.summary()
    out["variants"][name]["all"] = s
    print(f"all {name:12s}: first {s['first']:.1%} debate {s['final']:.1%} gain {100 * s['gain']:+.1f} "
          f"r->w {deb.right_to_wrong} of {deb.first} w->r {deb.wrong_to_right} judge balanced {s['judge_balanced_accuracy']:.1%} "
          f"revisions alone {100 * s['revised']['gain']:+.1f}")
print(write_results(results_name, out))
