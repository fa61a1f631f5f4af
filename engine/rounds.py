"""One round of the swarm, played phase by phase: propose, solve, debate (critique + revise),
judge, hint, verify, collect, train, evaluate (each one module of ``engine.phases``).

Each phase reads what it needs from the store, runs its agents concurrently through the
batched runtime, and writes all of its rows together with the round's phase marker in one
transaction. A crash or a stop mid-phase therefore loses only that phase's unsaved work, and
resuming redoes exactly that phase: nothing is repeated or lost. The verifier's verdict is
computed as each answer is written and is the only ground truth; the judge's verdict is
recorded beside it with their agreement.
"""

from __future__ import annotations

import time

from engine.curriculum import Plan
from engine.events import PhaseFinished, PhaseStarted, RoundFinished, RoundStarted
from engine.faults import checkpoint
from engine.phases import PHASES as PHASE_RUNS
from engine.phases.verify import round_stats
from engine.roundbase import TASK_COLUMNS, PhaseRunner, Stopped, TaskRow, task_from_row, tokens_used

__all__ = ["PHASES", "TASK_COLUMNS", "PhaseRunner", "RoundRunner", "Stopped", "TaskRow", "task_from_row"]

PHASES = tuple(PHASE_RUNS)


class RoundRunner(PhaseRunner):
    """Plays rounds of one run, phase by phase (``engine.phases``)."""

    def play(self, rnd: int, plan: Plan) -> dict[str, float]:
        """Play round ``rnd`` from its first unwritten phase; a new round is written with ``plan``."""
        row = self.store.execute("select phase, difficulty from rounds where run_id = ? and round = ?", [self.run_id, rnd])
        if not row:
            self.store.insert("rounds", [dict(run_id=self.run_id, round=rnd, status="running", phase=None,
                                              difficulty=plan.level, adapter_id=self.current_adapter()[0],
                                              mix={str(k): v for k, v in plan.mix.items()}, curriculum=plan.reason)])
            done = None
        else:
            done = row[0][0]
        difficulty, self.mix = plan.level, plan.mix
        self.round_tokens = tokens_used(self.store, self.run_id, rnd)
        self.budget_capped = False
        self.bus.emit(RoundStarted(self.run_id, rnd, difficulty))
        start = PHASES.index(done) + 1 if done in PHASES else 0
        timings: dict[str, float] = {}
        for phase in PHASES[start:]:
            if self.stop.is_set():
                raise Stopped("stopped")
            if phase in self.recipe.round.skip:  # left out by the recipe: recorded as passed, nothing run
                with self.store.transaction():
                    self.mark(rnd, phase)
                continue
            self.bus.emit(PhaseStarted(self.run_id, rnd, phase))
            self.phase, self.round, self.progress = phase, rnd, (phase, 0, 0, 0)
            t0 = time.perf_counter()
            PHASE_RUNS[phase](self, rnd, difficulty, timings)
            timings[phase] = time.perf_counter() - t0
            self.bus.emit(PhaseFinished(self.run_id, rnd, phase, timings[phase]))
            if self.single_phase and phase != PHASES[-1]:
                raise Stopped("paused after one phase")
        checkpoint("complete")
        self.store.execute("update rounds set status = 'complete', finished_at = coalesce(finished_at, current_timestamp) "
                           "where run_id = ? and round = ?", [self.run_id, rnd])
        stats = self.stats(rnd)
        self.bus.emit(RoundFinished(self.run_id, rnd, stats))
        return stats

    def stats(self, rnd: int) -> dict[str, float]:
        """Round ``rnd``'s figures (``engine.phases.verify.round_stats``)."""
        return round_stats(self, rnd)
