"""The solve phase: every solver answers every task (``round.samples`` times, or
``round.unsolved_samples`` at a level none of whose first answers was right the round before); the
verifier scores each answer as it is written.
"""

from __future__ import annotations

from engine.agents import fill, request, seed_for
from engine.roundbase import PhaseRunner


def unsolved_levels(ctx: PhaseRunner, rnd: int) -> set[int]:
    """The levels of round ``rnd - 1``'s tasks of which no first answer was right (none in round 0):
    levels the solvers cannot do yet, whose tasks train through worked references or rationales."""
    if rnd == 0:
        return set()
    rows = ctx.store.execute(
        "select t.difficulty from attempts a join tasks t on t.id = a.task_id where a.run_id = ? and a.round = ? "
        "and a.turn = 0 group by t.difficulty having not bool_or(coalesce(a.correct, false))", [ctx.run_id, rnd - 1])
    return {int(d) for (d,) in rows}


def fewer_samples(ctx: PhaseRunner, rnd: int) -> dict[int, int]:
    """``{level: round.unsolved_samples}`` for the levels round ``rnd - 1`` solved none of, when that
    setting is below ``round.samples``; every other level takes ``round.samples``."""
    rs = ctx.recipe.round
    if rs.unsolved_samples is None or rs.unsolved_samples >= rs.samples:
        return {}
    return {lvl: rs.unsolved_samples for lvl in unsolved_levels(ctx, rnd)}


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    fewer = fewer_samples(ctx, rnd)
    items = [(tr, solver, s) for tr in ctx.round_tasks(rnd) for solver in ctx.agents("solver")
             for s in range(fewer.get(tr.task.difficulty, ctx.recipe.round.samples))]
    reqs = [request(a, fill(ctx.recipe.prompts.solve, {"task": tr.task.prompt}),
                    seed_for(ctx.seed, rnd, tr.task.fingerprint, a.name, s, 0), task=tr.id) for tr, a, s in items]
    ctx.serve("solver")
    results = ctx.generate(reqs)
    rows = ctx.attempt_rows(rnd, items, results, 0)
    with ctx.store.transaction():
        ctx.store.insert("attempts", rows)
        ctx.mark(rnd, "solve")
