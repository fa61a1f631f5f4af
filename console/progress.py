"""Headless progress for ``swarm run``: progress bars on a terminal, a line per phase and a
summary per round on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from engine import events as ev
from engine.rounds import PHASES


class Progress:
    """An event subscriber that renders progress to a stream (stderr by default). On a terminal,
    rich progress bars for the round (phases done) and the phase (requests done of those sent,
    tokens/s, time left); elsewhere (pipes, CI logs) plain lines only."""

    def __init__(self, out: TextIO = sys.stderr, live: bool | None = None) -> None:
        self.out = out
        self.live = out.isatty() if live is None else live
        self.bars: RichProgress | None = None
        self.round_task: TaskID | None = None
        self.phase_task: TaskID | None = None
        self.phase = ""
        self.sent = 0
        self.tokens = 0
        self.t0 = time.perf_counter()

    def __call__(self, e: ev.Event) -> None:
        if isinstance(e, ev.RunStarted):
            verb = "resuming" if e.resumed else "starting"
            self._line(f"run {e.run_id}: {verb} recipe {e.recipe!r}, {e.rounds} round(s)")
        elif isinstance(e, ev.RoundStarted):
            self._line(f"round {e.round}: difficulty {e.difficulty}")
            self._start_bars(e.round)
        elif isinstance(e, ev.PhaseStarted):
            self.phase, self.sent, self.tokens, self.t0 = e.phase, 0, 0, time.perf_counter()
            if self.bars is not None and self.phase_task is not None:
                self.bars.reset(self.phase_task, total=None, description=f"  {e.phase}", tps="")
        elif isinstance(e, ev.PhaseProgress):
            self.sent, self.tokens = e.total, e.tokens
            if self.bars is not None and self.phase_task is not None:
                secs = time.perf_counter() - self.t0
                self.bars.update(self.phase_task, completed=e.done, total=e.total,
                                 tps=f"{e.tokens / secs:5.0f} tok/s" if secs > 0 else "")
        elif isinstance(e, ev.PhaseFinished):
            if self.bars is not None and self.round_task is not None:
                self.bars.advance(self.round_task)
            work = f", {self.sent} requests, {self.tokens} tokens" if self.sent else ""
            self._line(f"  {e.phase:<8} done in {e.seconds:6.1f} s{work}")
        elif isinstance(e, ev.RoundFinished):
            self._stop_bars()
            s = e.stats
            self._line(
                f"round {e.round} summary: tasks {s.get('tasks', 0):.0f} (accepted {s.get('accepted', 0):.0f}, "
                f"rejected {s.get('rejected', 0):.0f}); solve rate {s.get('solve_rate_first', 0):.1%} -> "
                f"{s.get('solve_rate_final', 0):.1%} after revision; judge agreement "
                f"{s.get('judge_agreement', float('nan')):.1%}; {s.get('tokens_per_second', 0):.0f} tok/s"
            )
        elif isinstance(e, ev.RunFinished):
            self._stop_bars()
            self._line(f"run {e.run_id}: {e.status}")
        elif isinstance(e, ev.RunFailed):
            self._stop_bars()
            self._line(f"run {e.run_id}: failed: {e.error}")
        elif isinstance(e, ev.TrainingProgress) and self.bars is not None and self.phase_task is not None:
            self.bars.update(self.phase_task, completed=e.step, total=e.steps,
                             tps=f"{e.tokens_per_second:5.0f} tok/s loss {e.loss:.3f}")
        else:
            self._other(e)

    def _start_bars(self, rnd: int) -> None:
        if not self.live:
            return
        self._stop_bars()
        from rich.console import Console

        self.bars = RichProgress(
            TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[tps]}"),
            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
            console=Console(file=self.out), transient=True)
        self.round_task = self.bars.add_task(f"round {rnd}", total=len(PHASES), tps="phases")
        self.phase_task = self.bars.add_task("  -", total=None, tps="")
        self.bars.start()

    def _stop_bars(self) -> None:
        if self.bars is not None:
            self.bars.stop()
        self.bars = self.round_task = self.phase_task = None

    def _other(self, e: ev.Event) -> None:
        text = {
            ev.ModelNotice: lambda x: f"model: {x.text}",
            ev.TrainingProgress: lambda x: f"  train step {x.step}/{x.steps} loss {x.loss:.3f} {x.tokens_per_second:.0f} tok/s",
            ev.AdapterExported: lambda x: f"  adapter {x.adapter_id} exported (logits cosine {x.cosine:.4f})",
            ev.EvalScored: lambda x: f"  eval {x.eval_set}: {x.accuracy:.1%} [{x.ci_low:.1%}, {x.ci_high:.1%}]",
            ev.AdapterPromoted: lambda x: f"  gate: {'promoted' if x.promoted else 'kept previous'}: {x.reason}",
        }.get(type(e))
        if text is not None:
            self._line(text(e))  # type: ignore[no-untyped-call]

    def _line(self, text: str) -> None:
        if self.bars is not None:
            self.bars.console.print(text, markup=False, highlight=False)
            return
        self.out.write(text + "\n")
        self.out.flush()
