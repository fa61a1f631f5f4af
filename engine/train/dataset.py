"""The training set, built from the store: verified answers plus replay, never held-out tasks.

After each round, ``collect`` adds that round's verified-correct answers (deduplicated by
task and text, at most ``max_per_task`` per task across the whole run) to ``examples``; the
set accumulates across rounds. Each example is the conversation the model will be evaluated
on: the first solver's system prompt, the solve prompt with the task, and the verified answer.
Held-out tasks are excluded in the query itself, so nothing else can let them in.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from engine.agents import fill, request, seed_for
from engine.recipes import Recipe
from engine.runtime import Runtime
from engine.store import Store
from engine.train.replay import REPLAY_PROMPTS


def solve_messages(recipe: Recipe, task_prompt: str) -> list[dict[str, str]]:
    """The prompt a solver sees for a task, as used for training and evaluation alike."""
    solver = recipe.agents_with("solver")[0]
    msgs = [{"role": "system", "content": solver.system}] if solver.system else []
    return msgs + [{"role": "user", "content": fill(recipe.prompts.solve, {"task": task_prompt})}]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def collect(store: Store, recipe: Recipe, run_id: int, rnd: int) -> int:
    """Add round ``rnd``'s verified-correct answers to the run's examples; returns how many."""
    rows = store.execute(
        """
        select a.id, a.task_id, a.text, t.prompt
        from attempts a join tasks t on t.id = a.task_id
        where a.run_id = ? and a.round = ? and a.correct and not t.held_out and t.rejected_reason is null
        order by a.task_id, a.turn desc, a.id
        """,
        [run_id, rnd],
    )
    have: dict[int, set[str]] = {}
    for task_id, messages in store.execute(
        "select task_id, messages from examples where run_id = ? and source = 'verified' and task_id is not null",
        [run_id],
    ):
        have.setdefault(int(task_id), set()).add(_norm(json.loads(messages)[-1]["content"]))
    cap = recipe.train.max_per_task
    new = []
    for attempt_id, task_id, text, prompt in rows:
        seen = have.setdefault(int(task_id), set())
        if len(seen) >= cap or _norm(text) in seen or not text.strip():
            continue
        seen.add(_norm(text))
        msgs = solve_messages(recipe, prompt) + [{"role": "assistant", "content": text.strip()}]
        new.append((task_id, attempt_id, msgs))
    ids = store.allocate_ids("examples", len(new))
    store.insert("examples", [
        dict(id=i, run_id=run_id, round=rnd, task_id=t, attempt_id=a, source="verified", messages=m)
        for i, (t, a, m) in zip(ids, new)
    ])
    return len(new)


def collect_replay(store: Store, runtime: Runtime, run_id: int, rnd: int, max_tokens: int = 96) -> int:
    """Record the base model's own answers to general prompts (once per run, at round 0)."""
    if store.execute("select count(*) from examples where run_id = ? and source = 'replay'", [run_id])[0][0]:
        return 0
    from engine.recipes import AgentSpec

    agent = AgentSpec(name="replay", role="solver", temperature=0.0, max_tokens=max_tokens)
    comps = runtime.submit_many([request(agent, p, seed_for("replay", i), greedy=True) for i, p in enumerate(REPLAY_PROMPTS)])
    rows = []
    for p, c in zip(REPLAY_PROMPTS, comps):
        res = c.result()
        if res.text.strip():
            rows.append([{"role": "user", "content": p}, {"role": "assistant", "content": res.text.strip()}])
    ids = store.allocate_ids("examples", len(rows))
    store.insert("examples", [
        dict(id=i, run_id=run_id, round=rnd, task_id=None, attempt_id=None, source="replay", messages=m)
        for i, m in zip(ids, rows)
    ])
    return len(rows)


def training_set(store: Store, recipe: Recipe, run_id: int, seed: int) -> list[list[dict[str, str]]]:
    """All verified examples of the run so far, plus the recipe's share of replay examples."""
    verified = [json.loads(r[0]) for r in store.execute(
        """
        select e.messages from examples e left join tasks t on t.id = e.task_id
        where e.run_id = ? and e.source = 'verified' and not coalesce(t.held_out, false)
        order by e.id
        """, [run_id])]
    replay = [json.loads(r[0]) for r in store.execute(
        "select messages from examples where run_id = ? and source = 'replay' order by id", [run_id])]
    frac = recipe.train.replay_fraction
    n_replay = min(len(replay), round(len(verified) * frac / (1 - frac))) if verified else 0
    rng = random.Random(seed)
    chosen = rng.sample(replay, n_replay) if n_replay else []
    data = verified + chosen
    rng.shuffle(data)
    return data


def export_rows(store: Store, run_id: int | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    sql = "select id, run_id, round, task_id, attempt_id, source, messages, created_at from examples"
    params: list[object] = []
    if run_id is not None:
        sql += " where run_id = ?"
        params.append(run_id)
    rows = store.execute(sql + " order by id", params)
    return ["id", "run_id", "round", "task_id", "attempt_id", "source", "messages", "created_at"], rows
