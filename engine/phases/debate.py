"""The debate phase: for each debate turn a critic critiques every answer of the turn before and
its solver revises it with the critique (the reviser's requests); the verifier scores every
revision.
"""

from __future__ import annotations

from engine.agents import fill, request, seed_for
from engine.events import CritiqueMade
from engine.roundbase import PhaseRunner


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    critics = ctx.agents("critic")
    turns = ctx.recipe.round.debate_turns if critics else 0
    done_turns = ctx.store.execute(
        "select coalesce(max(turn), 0) from attempts where run_id = ? and round = ?", [ctx.run_id, rnd])[0][0]
    tasks = {tr.id: tr for tr in ctx.debate_tasks(rnd)}
    solvers = {a.name: a for a in ctx.agents("solver")}
    p = ctx.recipe.prompts
    for turn in range(int(done_turns) + 1, turns + 1):
        prev = ctx.store.execute(
            "select id, task_id, agent, sample, text from attempts where run_id = ? and round = ? and turn = ? order by id",
            [ctx.run_id, rnd, turn - 1])
        prev = [r for r in prev if r[1] in tasks and r[2] in solvers]
        crit_reqs = [
            request(critics[i % len(critics)], fill(p.critique, {"task": tasks[tid].task.prompt, "answer": text}),
                    seed_for(ctx.seed, rnd, tasks[tid].task.fingerprint, agent, s, "critique", turn), task=tid)
            for i, (_aid, tid, agent, s, text) in enumerate(prev)
        ]
        ctx.serve("critic")
        crits = ctx.generate(crit_reqs)
        items = [(tasks[tid], solvers[agent], s) for _aid, tid, agent, s, _t in prev]
        rev_reqs = [
            request(solvers[agent], fill(p.revise, {"task": tasks[tid].task.prompt, "answer": text, "critique": c.text}),
                    seed_for(ctx.seed, rnd, tasks[tid].task.fingerprint, agent, s, turn), task=tid)
            for (_aid, tid, agent, s, text), c in zip(prev, crits)
        ]
        ctx.serve("reviser")
        revs = ctx.generate(rev_reqs)
        crit_ids = ctx.store.allocate_ids("critiques", len(prev))
        crit_rows = [
            dict(id=cid, run_id=ctx.run_id, round=rnd, task_id=tid, attempt_id=aid,
                 agent=critics[i % len(critics)].name, turn=turn, text=c.text,
                 tokens=c.completion_tokens, seconds=c.seconds, endpoint=c.endpoint)
            for i, (cid, (aid, tid, _a, _s, _t), c) in enumerate(zip(crit_ids, prev, crits))
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
