"""Each run's fixed held-out sets: one per difficulty level, generated once from the run's seed.

They are written with ``held_out = true`` before any round proposes tasks, so the duplicate
check rejects round tasks equal to them, and the training set's query excludes them.
"""

from __future__ import annotations

import random

from engine.agents import seed_for
from engine.recipes import Recipe
from engine.rounds import TASK_COLUMNS, TaskRow, task_from_row
from engine.store import Store
from engine.tasks import get_domain


def set_name(level: int) -> str:
    return f"held-out-{level}"


def ensure_held_out(store: Store, run_id: int, recipe: Recipe, seed: int, level: int) -> list[TaskRow]:
    """The run's held-out tasks at ``level``, creating them the first time."""
    rows = store.execute(
        f"select {TASK_COLUMNS} from tasks where run_id = ? and held_out and task_set = ? order by id",
        [run_id, set_name(level)])
    if rows:
        return [task_from_row(r) for r in rows]
    domain = get_domain(recipe.task.domain)
    tasks = domain.generate(random.Random(seed_for(seed, "held-out", level)), level, recipe.eval.held_out)
    seen: set[str] = set()
    unique = []
    for t in tasks:
        if t.fingerprint not in seen:
            seen.add(t.fingerprint)
            unique.append(t)
    ids = store.allocate_ids("tasks", len(unique))
    store.insert("tasks", [dict(
        id=i, run_id=run_id, round=None, source="generated", task_set=set_name(level), domain=t.domain,
        difficulty=level, prompt=t.prompt, reference=t.reference, payload=t.payload, fingerprint=t.fingerprint,
        held_out=True, rejected_reason=None,
    ) for i, t in zip(ids, unique)])
    return [TaskRow(i, t) for i, t in zip(ids, unique)]


def eval_sets(store: Store, run_id: int, recipe: Recipe, seed: int, difficulty: int) -> dict[str, list[TaskRow]]:
    """What the gate scores: the run's held-out sets at ``difficulty`` and one level harder, plus
    every imported task set of the recipe's domain."""
    sets = {set_name(lvl): ensure_held_out(store, run_id, recipe, seed, lvl)
            for lvl in sorted({difficulty, min(difficulty + 1, 10)})}
    imported = store.execute(
        "select distinct task_set from tasks where run_id is null and source = 'imported' and domain = ? order by 1",
        [recipe.task.domain])
    for (name,) in imported:
        rows = store.execute(f"select {TASK_COLUMNS} from tasks where run_id is null and source = 'imported' "
                             "and task_set = ? order by id", [name])
        sets[f"imported:{name}"] = [task_from_row(r) for r in rows]
    return sets
