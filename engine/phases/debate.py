"""The debate phase: for each debate turn a critic critiques every answer of the turn before and
its solver revises it with the critique (the reviser's requests); or, with round.critique =
"steps", the answer's computations are checked one operation at a time and the answer continued
from its first slip (engine.stepcheck). The verifier scores every revision.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from engine.agents import fill, request, seed_for
from engine.events import CritiqueMade
from engine.recipes import AgentSpec
from engine.roundbase import PhaseRunner
from engine.runtime import Request, Result
from engine.stepcheck import Fault, critique_of, find_slips, finish


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    critics = ctx.agents("critic")
    turns = ctx.recipe.round.debate_turns if critics else 0
    done_turns = ctx.store.execute(
        "select coalesce(max(turn), 0) from attempts where run_id = ? and round = ?", [ctx.run_id, rnd])[0][0]
    tasks = {tr.id: tr for tr in ctx.debate_tasks(rnd)}
    solvers = {a.name: a for a in ctx.agents("solver")}
    known: dict[str, str | None] = {}  # the step critic's checked computations, not asked again in a later turn
    for turn in range(int(done_turns) + 1, turns + 1):
        prev = ctx.store.execute(
            "select id, task_id, agent, sample, text from attempts where run_id = ? and round = ? and turn = ? order by id",
            [ctx.run_id, rnd, turn - 1])
        prev = [r for r in prev if r[1] in tasks and r[2] in solvers]
        if ctx.recipe.round.critique == "steps":
            crit_texts, revs = _steps(ctx, rnd, turn, tasks, solvers, prev, known)
        else:
            crit_texts, revs = _text(ctx, rnd, turn, tasks, solvers, critics, prev)
        items = [(tasks[tid], solvers[agent], s) for _aid, tid, agent, s, _t in prev]
        crit_ids = ctx.store.allocate_ids("critiques", len(prev))
        crit_rows = [
            dict(id=cid, run_id=ctx.run_id, round=rnd, task_id=tid, attempt_id=aid,
                 agent=critics[i % len(critics)].name, turn=turn, text=text,
                 tokens=tokens, seconds=seconds, endpoint=endpoint)
            for i, (cid, (aid, tid, _a, _s, _t), (text, tokens, seconds, endpoint))
            in enumerate(zip(crit_ids, prev, crit_texts))
        ]
        for r in crit_rows:
            ctx.bus.emit(CritiqueMade(ctx.run_id, rnd, r["task_id"], r["agent"], r["text"]))
        att_rows = ctx.attempt_rows(rnd, items, revs, turn)
        with ctx.store.transaction():
            ctx.store.insert("critiques", crit_rows)
            ctx.store.insert("attempts", att_rows)
            if turn == turns:
                ctx.mark(rnd, "debate")
    if int(done_turns) >= turns:
        ctx.mark(rnd, "debate")


#: A critique as stored: its text, tokens, seconds and endpoint.
Critique = tuple[str, int, float, str]


def _text(ctx: PhaseRunner, rnd: int, turn: int, tasks: dict[int, Any], solvers: dict[str, AgentSpec],
          critics: list[AgentSpec], prev: list[Any]) -> tuple[list[Critique], list[Result]]:
    """round.critique = "text": the critic writes a critique, the solver revises with it."""
    p = ctx.recipe.prompts
    crit_reqs = [
        request(critics[i % len(critics)], fill(p.critique, {"task": tasks[tid].task.prompt, "answer": text}),
                seed_for(ctx.seed, rnd, tasks[tid].task.fingerprint, agent, s, "critique", turn), task=tid)
        for i, (_aid, tid, agent, s, text) in enumerate(prev)
    ]
    ctx.serve("critic")
    crits = ctx.generate(crit_reqs)
    rev_reqs = [
        request(solvers[agent], fill(p.revise, {"task": tasks[tid].task.prompt, "answer": text, "critique": c.text}),
                seed_for(ctx.seed, rnd, tasks[tid].task.fingerprint, agent, s, turn), task=tid)
        for (_aid, tid, agent, s, text), c in zip(prev, crits)
    ]
    ctx.serve("reviser")
    revs = ctx.generate(rev_reqs)
    return [(c.text, c.completion_tokens, c.seconds, c.endpoint) for c in crits], revs


def _steps(ctx: PhaseRunner, rnd: int, turn: int, tasks: dict[int, Any], solvers: dict[str, AgentSpec],
           prev: list[Any], known: dict[str, str | None]) -> tuple[list[Critique], list[Result]]:
    """round.critique = "steps" (engine.stepcheck): each answer's computations checked one
    operation at a time by greedy solver requests; where a slip is found its solver continues the
    answer from it with the checked value, sampling as it answers; an answer with none stands."""
    first_solver = next(iter(solvers.values()))
    t0 = time.perf_counter()
    stood: set[int] = set()  # a later turn asks nothing of an answer the turn before left as it was
    if turn > 1:
        before = {(tid, agent, s): text for _aid, tid, agent, s, text in ctx.store.execute(
            "select id, task_id, agent, sample, text from attempts where run_id = ? and round = ? and turn = ?",
            [ctx.run_id, rnd, turn - 2])}
        stood = {i for i, (_aid, tid, agent, s, text) in enumerate(prev) if before.get((tid, agent, s)) == text}
    ask = [i for i in range(len(prev)) if i not in stood]
    found = find_slips(ctx.rt, ctx.recipe, ctx.domain, first_solver, [prev[i][4] for i in ask],
                       seed=seed_for(ctx.seed, rnd, "steps", turn), before=lambda: ctx.serve("solver"), known=known,
                       tasks=[tasks[prev[i][1]].task for i in ask])
    slips: list[Fault | None] = [None] * len(prev)
    for i, slip in zip(ask, found):
        slips[i] = slip
    checked = time.perf_counter() - t0
    cont = [(i, slip.prefix(prev[i][4])) for i, slip in enumerate(slips) if slip is not None]

    def go_on(i: int, pre: str) -> Request:
        return request(solvers[prev[i][2]], fill(ctx.recipe.prompts.solve, {"task": tasks[prev[i][1]].task.prompt}),
                       seed_for(ctx.seed, rnd, tasks[prev[i][1]].task.fingerprint, prev[i][2], prev[i][3], turn),
                       prefix=pre, task=prev[i][1])

    reqs = [go_on(i, pre) for i, pre in cont]
    if reqs:
        ctx.serve("reviser")
    done = dict(zip((i for i, _pre in cont), ctx.generate(reqs)))
    pres = dict(cont)
    finished = finish(ctx.recipe, ctx.domain, [tasks[row[1]].task for row in prev],
                      [(i, pres[i] + done[i].text) for i in done], go_on, ctx.generate)  # round.step_plan
    revs = [replace(done[i], text=finished[i][0], completion_tokens=done[i].completion_tokens + finished[i][1])
            if i in done else
            Result(text=row[4], finish_reason="stop", prompt_tokens=0, completion_tokens=0, seconds=0.0)
            for i, row in enumerate(prev)]
    each = checked / len(prev) if prev else 0.0
    return [(critique_of(slip), 0, each, "inprocess") for slip in slips], revs
