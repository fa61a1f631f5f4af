"""External task sets: HumanEval-style JSONL imported into the ``python`` domain.

Imported tasks have no run (``run_id`` NULL), carry their set name, and belong to the test
pool: ``swarm eval`` scores them; nothing in the loop (training, gate, curriculum) reads them. ``check_set`` runs each canonical
solution through the same verifier the swarm's answers go through.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from engine.rounds import TASK_COLUMNS, task_from_row
from engine.store import Store
from engine.tasks import task_skills
from engine.tasks.python import PYTHON, humaneval_task


class TaskSetError(EngineError):
    """A task file is missing or malformed (names the file and line)."""


@dataclass(frozen=True)
class CheckResult:
    set: str
    task_id: str
    ok: bool
    status: str
    detail: str


def import_jsonl(store: Store, path: str | os.PathLike[str], name: str | None = None) -> tuple[str, int, int]:
    """Import records; returns (set name, imported, skipped as already present)."""
    p = Path(path)
    set_name = name or p.stem
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise TaskSetError(f"{p}: cannot read: {e.strerror}") from e
    tasks = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("a line must be a JSON object")
            tasks.append(humaneval_task(record, set_name))
        except ValueError as e:
            raise TaskSetError(f"{p}:{no}: {e}") from e
    if not tasks:
        raise TaskSetError(f"{p}: no records")
    have = {r[0] for r in store.execute("select fingerprint from tasks where run_id is null and task_set = ?", [set_name])}
    new = [t for t in tasks if t.fingerprint not in have]
    ids = store.allocate_ids("tasks", len(new))
    store.insert("tasks", [dict(
        id=i, run_id=None, round=None, source="imported", task_set=set_name, domain="python", difficulty=None,
        prompt=t.prompt, reference=t.reference, payload=t.payload, fingerprint=t.fingerprint, held_out=True,
        rejected_reason=None, pool="test", behaviour=None, skills=task_skills(t),
    ) for i, t in zip(ids, new)])
    return set_name, len(new), len(tasks) - len(new)


def check_set(store: Store, set_name: str | None = None) -> list[CheckResult]:
    sql = f"select {TASK_COLUMNS}, task_set from tasks where source = 'imported'"
    params: list[object] = []
    if set_name:
        sql += " and task_set = ?"
        params.append(set_name)
    out = []
    for row in store.execute(sql + " order by id", params):
        tr = task_from_row(row[:8])
        payload = tr.task.payload
        verdict = PYTHON.verify(tr.task, "```python\n" + tr.task.reference + "\n```") if tr.task.reference else None
        if verdict is None:
            out.append(CheckResult(row[8], str(payload.get("task_id")), False, "missing", "no canonical_solution"))
        else:
            out.append(CheckResult(row[8], str(payload.get("task_id")), verdict.correct, verdict.status, verdict.detail))
    return out
