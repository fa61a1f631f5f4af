"""Is there a debate answer in the swarm's own computations? (issue 12's +5 points)

After ``rounds`` rounds of the default recipe from the base model (one seed), on the run's test
sets, one set of generations is made and every rule below is scored on it, against the first
answer (the baseline, the protocol's greedy solver answer) in the same run:

- the protocol's judged pick (``engine.protocol.debate_score``: critic, reviser, judge);
- the computing judge's results: its greedy one, and 5 votes (1 greedy + 4 sampled at 0.7),
  standing where at least ``m`` of them reach a value other than the first answer's;
- 4 solver samples at 0.7, the same way;
- the 9 together; and the plurality of all 11 (first answer, revision, judge votes, samples).

No rule sees the verifier; the verifier scores each afterwards (accuracy, gain over the first
answers, right->wrong and wrong->right flips). Run: ``python -m benchmarks.debate_votes HOME
[ROUNDS] [SEED]`` (the run is kept in HOME; a second call with the same HOME re-scores it)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import write_results

K_JUDGE, K_SAMPLES, TEMPERATURE = 5, 4, 0.7


def plurality(values: list[str | None], first: str | None, need: int) -> str | None:
    """The value most of ``values`` reach, where at least ``need`` do and no other value as many;
    else ``first`` (the first answer stands).

    >>> plurality(["5", "6", "6", None], "5", 2), plurality(["6", "6", "7", "7"], "5", 2), plurality(["6"], "5", 2)
    ('6', '5', '5')
    """
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return first
    (value, n), *rest = counts.most_common()
    if n < need or (rest and rest[0][1] == n):
        return first
    return value


def rules() -> dict[str, Callable[[dict[str, Any]], str | None] | None]:
    """Rule name -> the answer it picks from a task's row (None: the judged pick, read from the row)."""
    out: dict[str, Callable[[dict[str, Any]], str | None] | None] = {
        "first answer (baseline)": lambda r: r["first"],
        "judged pick (the protocol's)": None,
        "judge's greedy result where it differs from both": lambda r: (
            r["judge"][0] if r["judge"][0] is not None and r["judge"][0] not in (r["first"], r["revision"]) else r["first"]),
    }
    for m in range(2, K_JUDGE + 1):
        out[f"judge votes, >= {m} of {K_JUDGE}"] = lambda r, m=m: plurality(r["judge"], r["first"], m)
    for m in range(2, K_SAMPLES + 1):
        out[f"solver samples, >= {m} of {K_SAMPLES}"] = lambda r, m=m: plurality(r["samples"], r["first"], m)
    for m in range(3, 7):
        out[f"judge votes and samples, >= {m} of 9"] = lambda r, m=m: plurality(r["judge"] + r["samples"], r["first"], m)
    for m in range(3, 7):
        out[f"plurality of all 11, >= {m}"] = lambda r, m=m: plurality(
            [r["first"], r["revision"], *r["judge"], *r["samples"]], r["first"], m)
    return out


def score_rules(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each rule's accuracy, gain over the first answers and flips, all levels pooled and per level."""
    n, first = len(rows), sum(r["first_ok"] for r in rows)
    out = {}
    for name, rule in rules().items():
        ok = [r["judged_ok"] if rule is None else rule(r) in r["right"] for r in rows]
        r2w = sum(1 for r, o in zip(rows, ok) if r["first_ok"] and not o)
        w2r = sum(1 for r, o in zip(rows, ok) if not r["first_ok"] and o)
        out[name] = {"accuracy": sum(ok) / n, "gain": (sum(ok) - first) / n, "right_to_wrong": r2w / first if first else None,
                     "right_to_wrong_n": r2w, "wrong_to_right_n": w2r,
                     "gain_per_level": {str(lvl): sum(o - r["first_ok"] for r, o in zip(rows, ok) if r["level"] == lvl)
                                        for lvl in sorted({r["level"] for r in rows})}}
    return out


def generate(home: Path, rounds: int, seed: int, recipe: str = "default") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Play (or find) the run and make every generation the rules read, one row per test task."""
    from engine.agents import judge_requests, judge_result, judge_task, request
    from engine.api import Engine
    from engine.evaluate import score
    from engine.pools import pool_tasks
    from engine.protocol import answer_right, debate_score
    from engine.recipes import find_recipe
    from engine.roles import falls_back, roles_in_use
    from engine.tasks import get_domain
    from engine.train.dataset import solve_messages

    eng = Engine.open(home)
    runs = eng.store.execute("select id from runs order by id")
    run_id = runs[0][0] if runs else eng.create_run(str(find_recipe(recipe)), rounds=rounds, train=True, seed=seed)
    t0 = time.perf_counter()
    for r in range(rounds):
        print(f"round {r}: {eng.play(run_id, rounds=r + 1)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    info = eng.run_info(run_id)
    rec, dom = info.recipe, get_domain(info.recipe.task.domain)
    rt = eng.runtime_for(rec, run_id)
    adapter_id, adapter_path, _ = roles_in_use(eng.store, run_id, falls_back(rec))["solver"]
    if adapter_path:
        rt.set_adapter(adapter_path).result()
    votes = rec.model_copy(update={"round": rec.round.model_copy(update={"judge_votes": K_JUDGE, "vote_temperature": TEMPERATURE})})
    judge = rec.agents_with("judge")[0].model_copy(update={"temperature": 0.0})
    hot = rec.agents_with("solver")[0].model_copy(update={"temperature": TEMPERATURE})
    rows: list[dict[str, Any]] = []
    for lvl in (1, 2, 3, 9):
        tasks = pool_tasks(eng.store, run_id, "test", lvl)
        _sc, first = score(rt, rec, tasks, seed=info.seed)
        deb = debate_score(rt, rec, tasks, first)
        jreqs = [judge_requests(votes, judge, judge_task(votes, dom, tr.task).prompt, "", 0, greedy=True) for tr in tasks]
        comps = iter(rt.submit_many([q for rs in jreqs for q in rs]))
        jtexts = [[next(comps).result().text for _ in rs] for rs in jreqs]
        stexts = [c.result().text for c in rt.submit_many([
            request(hot, solve_messages(rec, tr.task.prompt)[-1]["content"], 1000 + k, greedy=False)
            for tr in tasks for k in range(K_SAMPLES)])]
        for i, tr in enumerate(tasks):
            t = deb.traces[tr.id]
            row = {"level": lvl, "id": tr.id, "first": dom.verify(tr.task, t.first).answer, "first_ok": t.first_right,
                   "revision": dom.verify(tr.task, t.revision).answer,
                   "judged_ok": answer_right(t),
                   "judge": [judge_result(votes, dom, tr.task, x) for x in jtexts[i]],
                   "samples": [dom.verify(tr.task, x).answer for x in stexts[i * K_SAMPLES:(i + 1) * K_SAMPLES]]}
            values = {v for v in [row["first"], row["revision"], *row["judge"], *row["samples"]] if v is not None}
            row["right"] = sorted(v for v in values if dom.verify(tr.task, v).correct)
            rows.append(row)
        print(f"level {lvl}: {len(tasks)} tasks ({time.perf_counter() - t0:.0f} s)", flush=True)
    return rows, {"adapter_id": adapter_id, "rounds": rounds, "seed": seed, "recipe": recipe,
                  "minutes": (time.perf_counter() - t0) / 60}


def report(name: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    scored = score_rules(rows)
    first = scored["first answer (baseline)"]["accuracy"]
    print(f"{len(rows)} test tasks, first answers {first:.1%}")
    for rule, s in scored.items():
        print(f"{rule:52s} {s['accuracy']:6.1%}  gain {100 * s['gain']:+5.1f}  right->wrong {s['right_to_wrong_n']:3d}"
              f"  wrong->right {s['wrong_to_right_n']:3d}  per level {s['gain_per_level']}")
    return write_results(name, {**meta, "n": len(rows), "rules": scored, "rows": rows})


if __name__ == "__main__":
    home, rounds = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    rows, meta = generate(home, rounds, seed)
    print(report(f"debate-votes-seed{seed}", rows, meta))
