"""Offline: the debate's answers on a run's test sets recomputed with round.debate_answer = "majority" from the
traces the run stored (debate_eval_answers), with the engine's own ``pick``; per adapter measured: first answers,
revisions, the judge's pick as played, the majority, its flips and the judge's own right results.

Run 2026-12-04 on a copy of the home of ``improve-columns-ahead-swapjudge-steps-seed7`` (after round 2):
``PYTHONPATH=. python benchmarks/probes/majority_from_store.py HOME`` (seconds).
Usage: majority_from_store.py HOME   (a copy: the store is opened read-only)"""
import collections
import sys

import duckdb

from engine.protocol import pick, same_value
from engine.recipes import load_recipe
from engine.tasks.arith import extract_answer

r = load_recipe("default")[0]
m = r.model_copy(update={"round": r.round.model_copy(update={"judging": "compute", "debate_answer": "majority"})})
c = duckdb.connect(sys.argv[1] + "/swarm.duckdb", read_only=True)
by: dict[int | None, collections.Counter] = collections.defaultdict(collections.Counter)
for did, ad in c.execute("select id, adapter_id from debate_evals where pool = 'test' order by id").fetchall():
    for first, final, fr, lr, jf, jl, ja, jok, ans in c.execute(
            "select first_text, final_text, first_correct, final_correct, judge_first, judge_final, judge_answer, "
            "judge_answer_correct, answer from debate_eval_answers where debate_eval_id = ?", [did]).fetchall():
        same = same_value(first, final, extract_answer(first), extract_answer(final))
        ok = lr if pick(m, True, first, final, jf, jl, ja is not None, same) == "revision" else fr
        v = by[ad]
        v["n"] += 1; v["first"] += fr; v["revision"] += lr; v["majority"] += ok
        v["maj_r2w"] += fr and not ok; v["maj_w2r"] += ok and not fr
        v["judged"] += (lr if ans == "revision" else jok if ans == "judge" else fr)
        v["judge_right"] += bool(jok)
for ad, v in by.items():
    n = v["n"]
    print(f"adapter {ad}: n {n} first {v['first']} revision {v['revision']} ({(v['revision']-v['first'])/n*100:+.1f}) "
          f"judged {v['judged']} ({(v['judged']-v['first'])/n*100:+.1f}) majority {v['majority']} "
          f"({(v['majority']-v['first'])/n*100:+.1f}) r->w {v['maj_r2w']}/{v['first']} ({v['maj_r2w']/max(v['first'],1)*100:.1f}%) "
          f"w->r {v['maj_w2r']} judge results right {v['judge_right']}")
