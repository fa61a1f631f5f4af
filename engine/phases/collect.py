"""The collect phase: verified answers of every role join the run's training set.
"""

from __future__ import annotations

from engine.roundbase import PhaseRunner


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    """Verified answers join the training set; at round 0 the base model's replay answers too."""
    from engine.train.dataset import collect, collect_replay, replay_prompts

    with ctx.store.transaction():
        if ctx.train and ctx.recipe.train.replay_fraction > 0:
            collect_replay(ctx.store, ctx.rt, ctx.run_id, rnd, replay_prompts(ctx.recipe))
        collect(ctx.store, ctx.recipe, ctx.run_id, rnd, seed=ctx.seed)
        ctx.mark(rnd, "collect")
