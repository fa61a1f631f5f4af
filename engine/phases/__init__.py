"""The phases of a round, in order: one module each, one job each.

Every phase is a function ``run(ctx, rnd, difficulty, timings)`` over the round context
(``engine.roundbase.PhaseRunner``: the run's store, runtime, recipe, generation with stop checks
and the token budget, the adapter each role runs under, and the phase marker). A phase reads
what it needs from the store, runs its agents through the batched runtime, and writes all its
rows together with its phase marker in one transaction, so a crash loses only that phase's
unsaved work and resuming redoes exactly that phase. A recipe leaves a phase out with
``round.skip``; adding one means a module here and a name in ``PHASES``.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.phases import collect, debate, evaluate, hint, judge, propose, solve, train, verify
from engine.roundbase import PhaseRunner

Phase = Callable[[PhaseRunner, int, int, dict[str, float]], None]

#: name -> the phase, in the order a round plays them.
PHASES: dict[str, Phase] = {
    "propose": propose.run,    # the round's tasks: generated from the plan's mix, and proposed
    "solve": solve.run,        # every solver answers every task; the verifier scores each answer
    "debate": debate.run,      # critics critique, solvers revise (the reviser's requests)
    "judge": judge.run,        # the judge's verdict on each final answer, beside the verifier's
    "hint": hint.run,          # hint-guided critiques and rationales for what the round got wrong
    "verify": verify.run,      # the round's stats and per-skill scores
    "collect": collect.run,    # verified examples of every role join the training set
    "train": train.run,        # one LoRA shared by every role, or one per role
    "evaluate": evaluate.run,  # the gate: keep each new adapter only if it is not worse
}
