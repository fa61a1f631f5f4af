"""Each run's three disjoint task pools per difficulty level: train, dev and test.

- **train**: the rounds' tasks (generated and proposed); the only tasks answers are trained on.
- **dev**: fixed sets the gate and the curriculum read to choose adapters and levels.
- **test**: fixed sets nothing in the loop reads; only ``swarm eval`` and the benchmarks score
  them, so a number reported on them was not selected on them. Imported task sets (HumanEval
  style) are test sets too.

Beside them each run holds the two halves of the general facts (``engine.tasks.facts``):
``facts-dev`` for the gate's forgetting check, ``facts-test`` for reports.

Every task's canonical form (``Task.keys``) decides its pool: a keyed hash of the run's seed
and the task's fingerprint puts a fixed share of all possible tasks in each pool, so a
generator drawing for one pool can never produce another pool's task, whatever the round or
the level. Proposed tasks are checked against the keys of every task the run holds (and the
imported sets) and rejected when they repeat one. Dev and test sets for every level the
recipe can reach are written when the run is created, before round 0.
"""

from __future__ import annotations

import hashlib
import random

from engine.agents import seed_for
from engine.recipes import Recipe
from engine.roundbase import TASK_COLUMNS, TaskRow, task_from_row
from engine.store import Store
from engine.tasks import Task, get_domain, task_skills
from engine.tasks.facts import SET_NAMES as FACT_SETS
from engine.tasks.facts import fact_tasks

POOLS = ("train", "dev", "test")
#: Share of the space of possible tasks in each pool. Sets are far smaller than their share on
#: every level but the first (1-digit sums: 55 tasks in all, so ~11 each for dev and test).
SHARES = {"train": 0.6, "dev": 0.2, "test": 0.2}


def _hash_pool(key: str, seed: int) -> str:
    h = int.from_bytes(hashlib.sha256(f"{seed}|{key}".encode()).digest()[:8], "big") / 2**64
    edge = 0.0
    for name in POOLS:
        edge += SHARES[name]
        if h < edge:
            return name
    return POOLS[-1]


def family_of(key: str) -> str | None:
    """The family a canonical form belongs to, where its domain has families (python:
    ``py:ENTRY_POINT:HASH`` -> ``py:ENTRY_POINT``).

    >>> family_of("py:dedupe:0123abcd"), family_of("+(19,72)")
    ('py:dedupe', None)
    """
    parts = key.split(":")
    return ":".join(parts[:2]) if len(parts) == 3 and parts[0] == "py" else None


def pool_of(key: str, seed: int) -> str:
    """The pool a canonical form belongs to in a run with this seed. Where tasks come in families
    (python), whole families are held out first: a family's own draw puts it in dev or test with
    all its tasks, or in train, where each task is then drawn on its own. So test sets hold
    families never trained on as well as new constants of trained families.

    >>> sorted({pool_of(str(i), 7) for i in range(100)})
    ['dev', 'test', 'train']
    >>> pool_of("+(19,72)", 7) == pool_of("+(19,72)", 7)
    True
    >>> held = [f for f in (f"py:f{i}" for i in range(40)) if _hash_pool(f, 7) == "test"]
    >>> all(pool_of(f"{held[0]}:{n:08x}", 7) == "test" for n in range(50))
    True
    """
    family = family_of(key)
    if family is not None:
        group = _hash_pool(family, seed)
        if group != "train":
            return group
    return _hash_pool(key, seed)


def set_name(pool: str, level: int) -> str:
    return f"{pool}-{level}"


def reachable_levels(recipe: Recipe) -> list[int]:
    """Every level a run of this recipe can play: the curriculum moves between 1 and the top."""
    return list(range(1, recipe.task.max_difficulty + 1))


def known_keys(store: Store, run_id: int, domain: str) -> dict[str, str]:
    """Canonical key -> pool of every accepted task of the run and of the domain's imported sets."""
    rows = store.execute(
        "select fingerprint, behaviour, coalesce(pool, 'train'), run_id is null from tasks "
        "where (run_id = ? or (run_id is null and domain = ?)) and rejected_reason is null order by id",
        [run_id, domain])
    out: dict[str, str] = {}
    for fp, behaviour, pool, imported in rows:
        label = "imported" if imported else pool
        for key in (fp, behaviour):
            if key is not None:
                out.setdefault(key, label)
    return out


def duplicate_reason(task: Task, known: dict[str, str]) -> str | None:
    """Why ``task`` may not join the run (it repeats a known task), or None."""
    for key in task.keys:
        pool = known.get(key)
        if pool is not None:
            if pool == "train":
                return "duplicates an earlier task"
            return f"duplicates {'an' if pool[0] in 'aeiou' else 'a'} {pool} task"
    return None


def pool_tasks(store: Store, run_id: int, pool: str, level: int) -> list[TaskRow]:
    rows = store.execute(
        f"select {TASK_COLUMNS} from tasks where run_id = ? and pool = ? and task_set = ? order by id",
        [run_id, pool, set_name(pool, level)])
    return [task_from_row(r) for r in rows]


def ensure_pools(store: Store, run_id: int, recipe: Recipe, seed: int) -> int:
    """Write the run's missing dev and test sets, for every reachable level; returns how many
    tasks were written. Idempotent: existing sets are kept as they are."""
    domain = get_domain(recipe.task.domain)
    have = {r[0] for r in store.execute(
        "select distinct task_set from tasks where run_id = ? and pool in ('dev', 'test')", [run_id])}
    known = known_keys(store, run_id, domain.name)
    sizes = {"dev": recipe.eval.dev, "test": recipe.eval.test}
    written = 0
    for level in reachable_levels(recipe):
        for pool in ("dev", "test"):
            name = set_name(pool, level)
            if name in have:
                continue
            rng = random.Random(seed_for(seed, pool, level))
            tasks = domain.generate(rng, level, sizes[pool], accept=lambda k, p=pool: pool_of(k, seed) == p and k not in known)
            rows = []
            for t in tasks:
                if duplicate_reason(t, known) is not None:  # a second key (behaviour) repeats a task
                    continue
                for key in t.keys:
                    known[key] = pool
                rows.append(t)
            ids = store.allocate_ids("tasks", len(rows))
            store.insert("tasks", [dict(
                id=i, run_id=run_id, round=None, source="generated", task_set=name, domain=t.domain,
                difficulty=level, prompt=t.prompt, reference=t.reference, payload=t.payload, fingerprint=t.fingerprint,
                held_out=True, rejected_reason=None, pool=pool, behaviour=t.behaviour, skills=task_skills(t),
            ) for i, t in zip(ids, rows)])
            written += len(rows)
    for pool, name in FACT_SETS.items():  # general facts, to see forgetting (engine.tasks.facts)
        if name in have:
            continue
        facts = fact_tasks(pool)
        ids = store.allocate_ids("tasks", len(facts))
        store.insert("tasks", [dict(
            id=i, run_id=run_id, round=None, source="builtin", task_set=name, domain=t.domain, difficulty=0,
            prompt=t.prompt, reference=t.reference, payload=t.payload, fingerprint=t.fingerprint, held_out=True,
            rejected_reason=None, pool=pool, behaviour=None, skills=None,
        ) for i, t in zip(ids, facts)])
        written += len(facts)
    return written


def fact_set(store: Store, run_id: int, pool: str) -> list[TaskRow]:
    """The run's general-facts set of ``pool`` (dev: the gate's; test: the reports')."""
    rows = store.execute(f"select {TASK_COLUMNS} from tasks where run_id = ? and task_set = ? order by id",
                         [run_id, FACT_SETS[pool]])
    return [task_from_row(r) for r in rows]


def dev_sets(store: Store, run_id: int, recipe: Recipe, difficulty: int) -> dict[str, list[TaskRow]]:
    """What the gate scores: the run's dev sets at ``difficulty`` and one level harder."""
    top = recipe.task.max_difficulty
    return {set_name("dev", lvl): pool_tasks(store, run_id, "dev", lvl)
            for lvl in sorted({min(difficulty, top), min(difficulty + 1, top)})}


def recall_sets(store: Store, run_id: int, recipe: Recipe, difficulty: int) -> dict[str, list[TaskRow]]:
    """What the gate scores for forgetting: the first ``eval.recall`` tasks of the dev set of every
    level below the round's (``recall-1``, ...), a sample of what was learnt before."""
    if recipe.eval.recall <= 0:
        return {}
    sets = {set_name("recall", lvl): pool_tasks(store, run_id, "dev", lvl)[:recipe.eval.recall]
            for lvl in range(1, min(difficulty, recipe.task.max_difficulty))}
    return {k: v for k, v in sets.items() if v}


def report_sets(store: Store, run_id: int, recipe: Recipe, levels: list[int] | None = None,
              imported: bool = True) -> dict[str, list[TaskRow]]:
    """What reports score: the run's test sets (every reachable level, or ``levels``), the
    domain's imported sets, and the test half of the general facts. Never called from the loop."""
    sets = {set_name("test", lvl): pool_tasks(store, run_id, "test", lvl)
            for lvl in (levels if levels is not None else reachable_levels(recipe))}
    if imported:
        names = store.execute(
            "select distinct task_set from tasks where run_id is null and source = 'imported' and domain = ? order by 1",
            [recipe.task.domain])
        for (name,) in names:
            rows = store.execute(f"select {TASK_COLUMNS} from tasks where run_id is null and source = 'imported' "
                                 "and task_set = ? order by id", [name])
            sets[f"imported:{name}"] = [task_from_row(r) for r in rows]
    sets[FACT_SETS["test"]] = fact_set(store, run_id, "test")
    return {k: v for k, v in sets.items() if v}
