"""The solve phase: every solver answers every task (``round.samples`` times); the verifier scores
each answer as it is written.
"""

from __future__ import annotations

from engine.agents import fill, request, seed_for
from engine.roundbase import PhaseRunner


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    items = [(tr, solver, s) for tr in ctx.round_tasks(rnd) for solver in ctx.agents("solver")
             for s in range(ctx.recipe.round.samples)]
    reqs = [request(a, fill(ctx.recipe.prompts.solve, {"task": tr.task.prompt}),
                    seed_for(ctx.seed, rnd, tr.task.fingerprint, a.name, s, 0), task=tr.id) for tr, a, s in items]
    ctx.serve("solver")
    results = ctx.generate(reqs)
    rows = ctx.attempt_rows(rnd, items, results, 0)
    with ctx.store.transaction():
        ctx.store.insert("attempts", rows)
        ctx.mark(rnd, "solve")
