"""What every phase of a round shares (the round context, ``PhaseRunner``): the run's store,
runtime and recipe, concurrent generation with stop checks and the round's token budget, the
adapter each role runs under, and the phase marker. The phases themselves are one module each
in ``engine.phases``.

``Stopped`` is raised when the run is asked to stop; the phase in progress is abandoned unsaved.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.agents import seed_for
from engine.errors import EngineError
from engine.events import AnswerGiven, EventBus, PhaseProgress, TokenStreamed
from engine.faults import checkpoint
from engine.recipes import AgentSpec, Recipe
from engine.runtime import Completion, Request, Result, Runtime
from engine.store import Store
from engine.tasks import Task, get_domain


class Stopped(EngineError):
    """The run was asked to stop; the current phase was abandoned unsaved."""


@dataclass(frozen=True)
class TaskRow:
    id: int
    task: Task


def task_from_row(row: Sequence[Any]) -> TaskRow:
    """A row of ``TASK_COLUMNS`` -> TaskRow."""
    tid, domain, prompt, reference, difficulty, fp, payload, behaviour = row
    data = json.loads(payload) if isinstance(payload, str) else (payload or {})
    return TaskRow(int(tid), Task(domain, prompt, reference or "", int(difficulty or 0), fp, data, behaviour))


TASK_COLUMNS = "id, domain, prompt, reference, difficulty, fingerprint, payload, behaviour"


def played_tasks(store: Any, run_id: int, rnd: int) -> list[TaskRow]:
    """The tasks a round plays: not rejected proposals, not held-out ones (the debate may take a
    subset of them: ``PhaseRunner.debate_tasks``)."""
    rows = store.execute(f"select {TASK_COLUMNS} from tasks where run_id = ? and round = ? and rejected_reason is null "
                         "and not held_out order by id", [run_id, rnd])
    return [task_from_row(r) for r in rows]


def tokens_used(store: Store, run_id: int, rnd: int | None = None) -> int:
    """Tokens the agents generated in a run (or one of its rounds): answers, critiques, verdicts, hints."""
    where = "run_id = ?" + (" and round = ?" if rnd is not None else "")
    params = [run_id] if rnd is None else [run_id, rnd]
    sums = " + ".join(f"(select coalesce(sum(tokens), 0) from {t} where {where})"
                      for t in ("attempts", "critiques", "verdicts", "hints"))
    return int(store.execute(f"select {sums}", params * 4)[0][0])


class PhaseRunner:
    """State shared by a run's phases. ``stop`` (an Event) is checked while waiting on agents."""

    def __init__(self, store: Store, runtime: Runtime, recipe: Recipe, run_id: int, seed: int,
                 bus: EventBus, stop: threading.Event, *, train: bool = False, workdir: Path | None = None,
                 home: Path | None = None) -> None:
        self.store = store
        self.rt = runtime
        self.recipe = recipe
        self.run_id = run_id
        self.seed = seed
        self.bus = bus
        self.stop = stop
        self.domain = get_domain(recipe.task.domain)
        self.tokens = 0
        self.gen_seconds = 0.0
        self.train = train
        self.workdir = workdir
        self.home = home
        self.single_phase = False  # stop after the next phase (the console's "step")
        self.mix: dict[int, int] = {}  # level -> generated tasks this round draws (engine.curriculum)
        self.round = 0
        self.progress: tuple[str, int, int, int] = ("", 0, 0, 0)  # phase, requests done, sent, tokens
        self.phase = ""
        self.marking = True  # False when training on demand outside the round's phases
        self.trainer: Any = None  # the run's warm training worker (engine.train.runner.Trainer), if any
        self.round_tokens = 0
        self.budget_capped = False
        self._requests = itertools.count()

    # -- helpers -----------------------------------------------------------------------------------

    def generate(self, reqs: Sequence[Request]) -> list[Result]:
        """Run requests concurrently; abandon them all if a stop is requested."""
        run_id = self.run_id
        for r in reqs:
            agent, rid = r.tag, f"{r.tag}#{next(self._requests)}"
            r.on_text = lambda text, agent=agent, rid=rid, task=r.task: self.bus.emit(
                TokenStreamed(run_id, agent, text, rid, task))
        allowed = self._within_budget(reqs)
        t0 = time.perf_counter()
        sent = iter(self.rt.submit_many([r for r, ok in zip(reqs, allowed) if ok]))
        comps: list[Completion | None] = [next(sent) if ok else None for ok in allowed]
        results: list[Result] = []
        if self.progress[0] != self.phase:  # a phase started outside play() (train now, tests)
            self.progress = (self.phase, 0, 0, 0)
        _, done, total, tokens = self.progress
        total += sum(allowed)
        self.bus.emit(PhaseProgress(run_id, self.round, self.phase, done, total, tokens))
        try:
            for c in comps:
                if c is None:  # the round's token budget is spent: not asked at all
                    results.append(Result("", "budget", 0, 0, 0.0))
                    continue
                while True:
                    if self.stop.is_set():
                        raise Stopped("stopped")
                    try:
                        results.append(c.result(timeout=0.1))
                        checkpoint(f"generate:{self.phase}")
                        break
                    except TimeoutError:
                        continue
                done, tokens = done + 1, tokens + results[-1].completion_tokens
                self.progress = (self.phase, done, total, tokens)
                self.bus.emit(PhaseProgress(run_id, self.round, self.phase, done, total, tokens))
        except BaseException:
            for c in comps:
                if c is not None:
                    c.cancel()
            raise
        self.gen_seconds += time.perf_counter() - t0
        used = sum(r.completion_tokens for r in results)
        self.tokens += used
        self.round_tokens += used
        return results

    def _within_budget(self, reqs: Sequence[Request]) -> list[bool]:
        """Cap max_tokens so this round never generates more than ``round.max_tokens_per_round``:
        what is left is shared out evenly; a request whose share is zero is not sent at all.
        Returns which requests may be sent."""
        left = max(0, self.recipe.round.max_tokens_per_round - self.round_tokens)
        planned = sum(r.sampling.max_tokens for r in reqs)
        if not reqs or planned <= left:
            return [True] * len(reqs)
        self.budget_capped = True
        per, extra = divmod(left, len(reqs))
        allowed = []
        for i, r in enumerate(reqs):
            share = min(r.sampling.max_tokens, per + (1 if i < extra else 0))
            if share > 0:
                r.sampling = dataclasses.replace(r.sampling, max_tokens=share)
            allowed.append(share > 0)
        return allowed

    def round_tasks(self, rnd: int) -> list[TaskRow]:
        """The tasks round ``rnd`` plays (every solver answers each)."""
        return played_tasks(self.store, self.run_id, rnd)

    def debate_tasks(self, rnd: int) -> list[TaskRow]:
        """The round's tasks the debate, the judge and the hint phase take: all of them, or
        ``round.debate_tasks`` of them drawn by a seed of the run, the round and each task's
        fingerprint (so a resumed round draws the same ones), in id order."""
        tasks = self.round_tasks(rnd)
        n = self.recipe.round.debate_tasks
        if n is None or len(tasks) <= n:
            return tasks
        chosen = sorted(tasks, key=lambda tr: (seed_for(self.seed, rnd, tr.task.fingerprint, "debate"), tr.id))[:n]
        return sorted(chosen, key=lambda tr: tr.id)

    def mark(self, rnd: int, phase: str) -> None:
        """Record ``phase`` as done (inside the phase's write transaction)."""
        if not self.marking:
            return
        self.store.execute("update rounds set phase = ? where run_id = ? and round = ?", [phase, self.run_id, rnd])
        checkpoint(f"write:{phase}")

    def attempt_rows(self, rnd: int, items: list[tuple[TaskRow, AgentSpec, int]], results: list[Result],
                     turn: int) -> list[dict[str, Any]]:
        """Attempt rows for ``results`` (one per (task, agent, sample) in ``items``), each scored by
        the verifier as it is made; emits AnswerGiven for each."""
        ids = self.store.allocate_ids("attempts", len(items))
        rows = []
        for aid, (tr, agent, sample), res in zip(ids, items, results):
            verdict = self.domain.verify(tr.task, res.text)
            rows.append(dict(
                id=aid, run_id=self.run_id, round=rnd, task_id=tr.id, agent=agent.name, sample=sample, turn=turn,
                text=res.text, answer=verdict.answer, correct=verdict.correct, status=verdict.status,
                tokens=res.completion_tokens, seconds=res.seconds, truncated=res.truncated_prompt,
                endpoint=res.endpoint,
            ))
            self.bus.emit(AnswerGiven(self.run_id, rnd, tr.id, agent.name, turn, res.text, verdict.correct))
        return rows

    def agents(self, role: str) -> list[AgentSpec]:
        return self.recipe.agents_with(role)  # type: ignore[arg-type]

    def current_adapter(self, role: str = "solver") -> tuple[int | None, str | None]:
        """The adapter ``role`` runs under (engine.roles.in_use; None: the base model): with one
        shared adapter, the run's latest promoted one."""
        from engine.roles import in_use

        aid, path, _sha = in_use(self.store, self.run_id, role, self.role_fallback)
        return aid, path

    @property
    def per_role(self) -> bool:
        return self.recipe.train.adapters == "per-role"

    @property
    def role_fallback(self) -> bool:
        """A role without an adapter of its own runs under the solver's (train.role_fallback)."""
        from engine.roles import falls_back

        return falls_back(self.recipe)

    def serve(self, role: str) -> None:
        """Per-role adapters: make the runtime serve ``role``'s adapter before its requests. With
        one shared adapter the one the gate put in use serves every role, and nothing changes."""
        if not self.per_role:
            return
        from engine.roles import in_use, server

        server(self.rt, {role: in_use(self.store, self.run_id, role, self.role_fallback)})(role)

