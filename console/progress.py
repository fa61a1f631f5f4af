"""Headless progress for ``swarm run``: a line per phase on stderr and a summary per round."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from engine import events as ev


class Progress:
    """An event subscriber that renders progress to a stream (stderr by default)."""

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.tty = out.isatty()
        self.phase = ""
        self.round = 0
        self.answers = 0
        self.tokens = 0
        self.t0 = time.perf_counter()
        self.last_draw = 0.0

    def __call__(self, e: ev.Event) -> None:
        if isinstance(e, ev.RunStarted):
            verb = "resuming" if e.resumed else "starting"
            self._line(f"run {e.run_id}: {verb} recipe {e.recipe!r}, {e.rounds} round(s)")
        elif isinstance(e, ev.RoundStarted):
            self.round = e.round
            self._line(f"round {e.round}: difficulty {e.difficulty}")
        elif isinstance(e, ev.PhaseStarted):
            self.phase, self.answers, self.tokens, self.t0 = e.phase, 0, 0, time.perf_counter()
            self._bar()
        elif isinstance(e, ev.TokenStreamed):
            self.tokens += 1
            self._bar()
        elif isinstance(e, (ev.AnswerGiven, ev.CritiqueMade, ev.VerdictReached, ev.TaskProposed)):
            self.answers += 1
            self._bar()
        elif isinstance(e, ev.PhaseFinished):
            self._bar(force=True)
            self._line(f"  {e.phase:<8} done in {e.seconds:6.1f} s")
        elif isinstance(e, ev.RoundFinished):
            s = e.stats
            self._line(
                f"round {e.round} summary: tasks {s.get('tasks', 0):.0f} (accepted {s.get('accepted', 0):.0f}, "
                f"rejected {s.get('rejected', 0):.0f}); solve rate {s.get('solve_rate_first', 0):.1%} -> "
                f"{s.get('solve_rate_final', 0):.1%} after revision; judge agreement "
                f"{s.get('judge_agreement', float('nan')):.1%}; {s.get('tokens_per_second', 0):.0f} tok/s"
            )
        elif isinstance(e, ev.RunFinished):
            self._line(f"run {e.run_id}: {e.status}")
        elif isinstance(e, ev.RunFailed):
            self._line(f"run {e.run_id}: failed: {e.error}")
        else:
            self._other(e)

    def _other(self, e: ev.Event) -> None:
        text = {
            ev.TrainingProgress: lambda x: f"  train step {x.step}/{x.steps} loss {x.loss:.3f} {x.tokens_per_second:.0f} tok/s",
            ev.AdapterExported: lambda x: f"  adapter {x.adapter_id} exported (logits cosine {x.cosine:.4f})",
            ev.EvalScored: lambda x: f"  eval {x.eval_set}: {x.accuracy:.1%} [{x.ci_low:.1%}, {x.ci_high:.1%}]",
            ev.AdapterPromoted: lambda x: f"  gate: {'promoted' if x.promoted else 'kept previous'}: {x.reason}",
        }.get(type(e))
        if text is not None:
            self._line(text(e))  # type: ignore[no-untyped-call]

    def _bar(self, force: bool = False) -> None:
        if not self.tty:
            return
        now = time.perf_counter()
        if not force and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        secs = now - self.t0
        rate = self.tokens / secs if secs > 0 else 0.0
        self.out.write(f"\r  {self.phase:<8} {self.answers:5d} done  {self.tokens:6d} tok  {rate:6.0f} tok/s  {secs:6.1f} s ")
        self.out.flush()

    def _line(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\033[K")
        self.out.write(text + "\n")
        self.out.flush()
