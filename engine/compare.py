"""Replay: the same tasks answered under two adapters, side by side.

A past round's tasks (or a test set, or a few tasks) are played again with the debate protocol
(``engine.protocol``: greedy first answer, critique, revision, judge; the verifier scores
afterwards) once under the adapter the round played with, or any other, and once under the
adapter asked for. Each task then says what training changed: right first answers that became
wrong, wrong ones that became right, and the debate of each side. Both sides are recorded in
``debate_evals`` (``pool = 'replay'``, ``eval_set`` naming what was replayed).

"The adapter a round played with" is the one the gate had kept when that round began: the
latest adapter of an earlier round that the gate kept (``promoted``, or ``gate.kept``), else
the base model. A promotion or roll back by hand in between is not tracked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.errors import EngineError
from engine.protocol import DebateScore, Trace, answer_right
from engine.roundbase import TASK_COLUMNS, TaskRow, played_tasks, task_from_row
from engine.store import Store


@dataclass(frozen=True)
class Side:
    adapter_id: int | None  # None: the base model
    score: DebateScore

    @property
    def name(self) -> str:
        return "base model" if self.adapter_id is None else f"adapter {self.adapter_id}"


@dataclass(frozen=True)
class TaskChange:
    task: TaskRow
    before: tuple[bool, bool]  # (first answer right, final answer right) under the first side
    after: tuple[bool, bool]

    @property
    def change(self) -> str:
        """``fixed`` / ``broken`` (first answers), else ``debate fixed`` / ``debate broken`` (finals), else ''."""
        (f0, l0), (f1, l1) = self.before, self.after
        if f0 != f1:
            return "fixed" if f1 else "broken"
        if l0 != l1:
            return "debate fixed" if l1 else "debate broken"
        return ""


@dataclass(frozen=True)
class Replay:
    run_id: int
    what: str  # e.g. "round 3", "test-2", "task 17"
    tasks: list[TaskRow]
    before: Side
    after: Side

    def changes(self) -> list[TaskChange]:
        out = []
        for tr in self.tasks:
            a, b = self.before.score.traces[tr.id], self.after.score.traces[tr.id]
            out.append(TaskChange(tr, (bool(a.first_right), answer_right(a)), (bool(b.first_right), answer_right(b))))
        return out

    def counts(self) -> dict[str, int]:
        """How many tasks changed which way (first answers; finals where first answers agree)."""
        out = {"fixed": 0, "broken": 0, "debate fixed": 0, "debate broken": 0, "same": 0}
        for c in self.changes():
            out[c.change or "same"] += 1
        return out


def played_with(store: Store, run_id: int, rnd: int) -> int | None:
    """The adapter round ``rnd`` played with: the latest the gate kept in an earlier round (None: base)."""
    row = store.execute(
        "select max(id) from adapters where run_id = ? and round < ? and decision is not null "
        "and coalesce(role, 'solver') = 'solver' and (promoted or coalesce((gate->>'kept')::boolean, false))", [run_id, rnd])
    return int(row[0][0]) if row and row[0][0] is not None else None


def round_tasks(store: Store, run_id: int, rnd: int) -> list[TaskRow]:
    """The tasks a round played (not rejected proposals, not held-out ones); an error when it has none."""
    tasks = played_tasks(store, run_id, rnd)
    if not tasks:
        raise EngineError(f"run {run_id} has no tasks in round {rnd}")
    return tasks


def some_tasks(store: Store, run_id: int, ids: list[int]) -> list[TaskRow]:
    rows = store.execute(f"select {TASK_COLUMNS} from tasks where id in ({', '.join('?' for _ in ids)}) "
                         "and (run_id = ? or run_id is null) and rejected_reason is null order by id", [*ids, run_id])
    found = {int(r[0]) for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise EngineError(f"run {run_id} has no task {', '.join(map(str, missing))} to replay "
                          "(or it is a rejected proposal, which has no answer to check)")
    return [task_from_row(r) for r in rows]


def resolve_adapter(store: Store, run_id: int, which: int | str | None) -> tuple[int | None, str | None, str | None]:
    """(id, path, sha256) of ``which``: an id, ``in-use`` (the latest promoted, the solver's with
    per-role adapters), or None/``base``."""
    if which in (None, "base"):
        return None, None, None
    if which == "in-use":  # the solver's (per-role adapters) or the one shared by every role
        from engine.roles import in_use

        return in_use(store, run_id, "solver")
    row = store.execute("select id, path, sha256 from adapters where run_id = ? and id = ?", [run_id, int(which)])
    if not row:
        raise EngineError(f"run {run_id} has no adapter {which}")
    return int(row[0][0]), str(row[0][1]), str(row[0][2])


def as_json(r: Replay) -> dict[str, object]:
    """Everything a replay found, for ``--format json``."""
    def side(s: Side) -> dict[str, object]:
        return {"adapter": s.adapter_id, **s.score.summary()}

    def trace(t: Trace) -> dict[str, object]:
        return {**t._asdict(), "answer_right": answer_right(t)}

    tasks = []
    for c in r.changes():
        a, b = r.before.score.traces[c.task.id], r.after.score.traces[c.task.id]
        tasks.append({"task": c.task.id, "prompt": c.task.task.prompt, "reference": c.task.task.reference,
                      "change": c.change or "same",
                      "before": trace(a), "after": trace(b)})
    return json.loads(json.dumps({"run": r.run_id, "replayed": r.what, "before": side(r.before), "after": side(r.after),
                                  "counts": r.counts(), "tasks": tasks}, default=str))


__all__ = ["Replay", "Side", "TaskChange", "as_json", "played_with", "resolve_adapter", "round_tasks", "some_tasks"]
