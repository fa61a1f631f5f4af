"""A small fixed store for snapshot tests and screenshots: one run, tasks, a debate."""

from __future__ import annotations

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
