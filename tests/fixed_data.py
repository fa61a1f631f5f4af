"""A small fixed store for snapshot tests and screenshots: one run, tasks, a debate."""

from __future__ import annotations

import json

from engine.api import Engine


def populate(eng: Engine) -> int:
    """Write a run of the default recipe with two tasks and their debate; returns the run id."""
    s = eng.store
    run_id = 1
    s.insert("runs", [dict(id=run_id, recipe_name="arith", recipe_path="recipes/default.toml", recipe_toml="",
                           model_path="builtin:smollm2-135m", model_sha256=None, seed=7, rounds_planned=1,
                           settings={"train": False}, status="finished", error=None)])
    tasks = [
        (1, "generated", "What is 23 + 58?", "81", None),
        (2, "proposed", "What is 106 + 11?", "117", None),
        (3, "proposed", "A new arithmetic exercise.", None, "no arithmetic expression found"),
    ]
    s.insert("tasks", [dict(id=i, run_id=run_id, round=0, source=src, task_set=None, domain="arith", difficulty=2,
                            prompt=p, reference=ref, payload={}, fingerprint=f"fp{i}", held_out=False,
                            rejected_reason=why) for i, src, p, ref, why in tasks])
    attempts = [
        (1, 1, "solver-a", 0, "23 + 58 = 81.", "81", True),
        (2, 1, "solver-b", 0, "The sum is 71.", "71", False),
        (3, 1, "solver-b", 1, "You are right: 23 + 58 = 81.", "81", True),
        (4, 2, "solver-a", 0, "106 + 11 equals 107.", "107", False),
    ]
    s.insert("attempts", [dict(id=i, run_id=run_id, round=0, task_id=t, agent=a, sample=0, turn=turn, text=x,
                               answer=ans, correct=ok, status="ok" if ok else "wrong", tokens=8, seconds=0.1)
                          for i, t, a, turn, x, ans, ok in attempts])
    s.insert("critiques", [dict(id=1, run_id=run_id, round=0, task_id=1, attempt_id=2, agent="critic", turn=1,
                                text="71 is wrong: 23 + 58 is 81.", tokens=9, seconds=0.1)])
    s.insert("verdicts", [dict(id=i, run_id=run_id, round=0, task_id=t, attempt_id=a, judge="judge",
                               judge_correct=j, judge_text=f'{{"correct": {str(j).lower()}}}', verifier_correct=v,
                               verifier_status="ok", agreement=j == v, tokens=2, seconds=0.05)
                          for i, t, a, j, v in [(1, 1, 1, True, True), (2, 1, 3, True, True), (3, 2, 4, True, False)]])
    # the curriculum's record: the round's plan and its skills (round 0's first answers, then the dev
    # sets as the gate scored them)
    s.insert("rounds", [dict(run_id=run_id, round=0, status="complete", phase="evaluate", difficulty=2,
                             mix={"2": 18, "3": 6}, curriculum="round 0 starts at the recipe's level 2; 6 of 24 "
                             "generated tasks from level 3", dev_score=0.42)])
    s.insert("skill_scores", [dict(run_id=run_id, round=0, source=src, adapter_id=None, skill=k, n=n, passed=p)
                              for src, k, n, p in [
                                  ("round", "op:+", 3, 1), ("round", "digits:2", 2, 1), ("round", "carries:1", 2, 1),
                                  ("round", "digits:3", 1, 0), ("round", "carries:0", 1, 0),
                                  ("dev", "op:+", 40, 17), ("dev", "digits:2", 20, 12), ("dev", "carries:0", 8, 7),
                                  ("dev", "carries:1", 12, 5), ("dev", "digits:3", 20, 5), ("dev", "carries:2", 9, 1)]])
    return run_id


def populate_curves(eng: Engine) -> int:
    """``populate`` plus three trained rounds: loss curves, dev and test scores, debate statistics and
    skill rates, for the plots. Returns the run id."""
    run_id = populate(eng)
    s = eng.store
    s.insert("rounds", [dict(run_id=run_id, round=r, status="complete", phase="evaluate", difficulty=2,
                             mix={"2": 18, "3": 6}, curriculum="steady", dev_score=d) for r, d in ((1, 0.55), (2, 0.61))])
    stats = {0: (0.47, 0.50, -0.08), 1: (0.58, 0.55, -0.02), 2: (0.66, 0.63, 0.04)}
    for r, (agree, bal, gain) in stats.items():
        s.execute("update rounds set stats = ? where run_id = ? and round = ?",
                  [json.dumps({"judge_agreement": agree, "judge_balanced_accuracy": bal, "debate_gain": gain}),
                   run_id, r])
    for r in range(3):
        curve = [round(2.4 * 0.93 ** i - 0.2 * r, 4) for i in range(12)]
        s.insert("training_runs", [dict(id=10 + r, run_id=run_id, round=r, backend="unsloth-cpu", backend_reason="",
                                        settings={}, n_examples=40, steps=12, loss_curve=curve,
                                        tokens_per_second=900.0, seconds=30.0, status="done", error=None)])
        s.insert("adapters", [dict(id=20 + r, run_id=run_id, round=r, training_run_id=10 + r, parent_id=None,
                                   path=f"/adapters/{r}.gguf", sha256="0" * 64, export_cosine=0.9999,
                                   promoted=r != 1, decision="kept" if r != 1 else "not better")])
    evals = [(None, "dev-2", "dev", 0.25, 0.17, 0.34), (None, "test-2", "test", 0.27, 0.19, 0.36),
             (20, "dev-2", "dev", 0.42, 0.33, 0.52), (21, "dev-2", "dev", 0.40, 0.31, 0.50),
             (22, "dev-2", "dev", 0.61, 0.51, 0.70), (20, "dev-3", "dev", 0.03, 0.0, 0.07),
             (21, "dev-3", "dev", 0.05, 0.01, 0.10), (22, "dev-3", "dev", 0.12, 0.06, 0.19),
             (20, "test-2", "test", 0.44, 0.35, 0.54), (22, "test-2", "test", 0.58, 0.48, 0.67)]
    s.insert("evals", [dict(id=30 + i, run_id=run_id, round=0 if a is None else a - 20, adapter_id=a, eval_set=name,
                            pool=pool, n=100, correct=int(acc * 100), accuracy=acc, ci_low=lo, ci_high=hi)
                       for i, (a, name, pool, acc, lo, hi) in enumerate(evals)])
    s.insert("skill_scores", [dict(run_id=run_id, round=r, source="dev", adapter_id=20 + r, skill=k, n=20, passed=p)
                              for r, row in ((1, (10, 13, 15, 8, 6, 2)), (2, (12, 15, 17, 10, 8, 4)))
                              for k, p in zip(("op:+", "digits:2", "carries:0", "carries:1", "digits:3", "carries:2"),
                                              row)])
    return run_id
