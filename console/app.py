"""The Textual console: watch, inspect and steer the swarm from the keyboard.

The app holds no loop logic. It opens the engine, plays runs in a thread worker (the engine
blocks; the event loop never does), and receives the engine's events through
``console.bridge``: tokens coalesced and drained on a timer, everything else as messages.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from console.bridge import EngineEvent, TokenBuffer, subscriber
from console.screens.dialogs import Confirm, ErrorDialog, HelpScreen, ResumeOrFresh
from console.screens.inspector import InspectorScreen
from console.screens.picker import RecipePicker
from console.screens.plots import PlotsScreen
from console.screens.sql import SqlScreen
from console.screens.swarm import SwarmScreen
from console.screens.training import TrainingScreen
from engine import events as ev
from engine.api import Engine
from engine.errors import EngineError
from engine.recipes import Recipe, load_recipe


class SwarmApp(App[None]):
    TITLE = "swarm"
    BINDINGS = [
        Binding("s", "start", "Start/resume"),
        Binding("p", "pause", "Pause"),
        Binding("n", "step", "Step phase"),
        Binding("x", "stop", "Stop"),
        Binding("plus,equals_sign", "rounds(1)", "+round", show=False),
        Binding("minus", "rounds(-1)", "-round", show=False),
        Binding("z", "zoom", "Zoom"),
        Binding("i", "inspector", "Tasks"),
        Binding("e", "sql", "SQL"),
        Binding("t", "training", "Training"),
        Binding("g", "plots", "Curves"),
        Binding("T", "train_now", "Train now", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]
    HELP = [
        ("s", "start a run of the recipe, or resume its latest unfinished run (after a failed one: resume or fresh)"),
        ("p", "pause: stop at the next safe point (s resumes)"),
        ("n", "step: play one phase, then pause"),
        ("x", "stop the run at a safe point"),
        ("+ / -", "more / fewer rounds for the run"),
        ("z", "zoom the focused agent pane, and back"),
        ("tab / shift+tab", "cycle focus between panes"),
        ("i", "task inspector (escape: back, /: filter, enter: show debate, r: reload, R: replay the task under the "
              "adapter in use vs the one its round played with)"),
        ("e", "SQL: catalog, editor, history (ctrl+r or F5: run, ctrl+s: CSV, ctrl+o: Parquet)"),
        ("t", "training: loss, adapters, evals, debates, curriculum and skills (p: promote, b: roll back)"),
        ("g", "curves: training loss, dev and test accuracy with intervals, judge and debate per round, skills heat map"),
        ("T", "train now on the data so far, then evaluate and gate"),
        ("ctrl+p", "command palette: every action by name"),
        ("?", "this help"),
        ("q", "quit (asks first during a run; the run can be resumed later)"),
    ]

    def __init__(self, recipe: str | None = None, home: str | os.PathLike[str] | None = None, rounds: int = 3,
                 autostart: bool = False) -> None:
        super().__init__()
        self.recipe_arg = recipe
        self.home_arg = home
        self.rounds = rounds
        self.autostart = autostart
        self.engine: Engine | None = None
        self.recipe: Recipe | None = None
        self.recipe_path: Path | None = None
        self.run_id: int | None = None
        self.tokens = TokenBuffer()
        self.token_waits: deque[float] = deque(maxlen=10_000)  # token-to-screen delays, seconds
        self.quitting = False
        self.phase = ""
        self.round = 0

    # -- start-up ------------------------------------------------------------------------------

    def on_mount(self) -> None:
        try:
            # A second console while a run holds the store: a read-only view through that process.
            self.engine = Engine.open(self.home_arg, read_only_ok=True)
        except EngineError as e:
            self.push_screen(ErrorDialog(str(e)), callback=lambda _: self.exit())
            return
        self.engine.subscribe(subscriber(self.post_message, self.tokens))
        self.set_interval(1 / 20, self._drain_tokens)
        if self.recipe_arg:
            self._open_recipe(self.recipe_arg)
        else:
            self.push_screen(RecipePicker(), callback=self._picked)

    def _picked(self, path: Path | None) -> None:
        if path is None:
            self.exit()
        else:
            self._open_recipe(str(path))

    def _open_recipe(self, name: str) -> None:
        try:
            self.recipe, self.recipe_path, _ = load_recipe(name)
        except EngineError as e:
            self.push_screen(ErrorDialog(str(e)), callback=lambda _: self.exit())
            return
        self.sub_title = f"{self.recipe.name} · {self.recipe.model.path}"
        screen = SwarmScreen(self.recipe)
        self.push_screen(screen)
        if self.engine is not None and self.engine.read_only:
            note = self._read_only_note()
            self.sub_title = f"read-only view · {note}"

            def announce() -> None:
                screen.log_line(f"{note}. This console only looks: i tasks, t training, e SQL read the store "
                                "through that process; runs start and stop there.")
                screen.set_progress(f"read-only: {note}")

            self.call_after_refresh(announce)
            return
        if self.autostart:
            self.action_start()

    def _read_only_note(self) -> str:
        """Who holds the store, for a read-only console."""
        assert self.engine is not None
        try:
            hello = self.engine.holder or {}
        except EngineError as e:
            return f"the store's holder stopped answering ({e})"
        runs = ", ".join(f"run {r} {status}" for r, status in hello.get("running", []))  # type: ignore[union-attr]
        return f"store held by process {hello.get('pid')}" + (f" ({runs})" if runs else "")

    def _writable(self) -> bool:
        """False (and says why) when this console only views a store another process holds."""
        if self.engine is not None and self.engine.read_only:
            self.notify(f"read-only: {self._read_only_note()}; start, stop and train there", severity="warning")
            return False
        return True

    def on_unmount(self) -> None:
        if self.engine is not None:
            self.engine.stop()
            self.engine.close()

    # -- events --------------------------------------------------------------------------------

    def swarm(self) -> SwarmScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, SwarmScreen):
                return screen
        return None

    def _drain_tokens(self) -> None:
        chunks = self.tokens.drain()
        screen = self.swarm()
        if chunks and screen is not None:
            screen.feed_tokens(chunks, self.tokens.task_of)
            self.token_waits.append(self.tokens.waited)

    def on_engine_event(self, message: EngineEvent) -> None:
        e = message.event
        screen = self.swarm()
        for s in self.screen_stack:
            if isinstance(s, (TrainingScreen, PlotsScreen)):
                s.handle_engine_event(e)
        if screen is None:
            return
        screen.handle_engine_event(e)
        line = describe(e)
        if line:
            screen.log_line(line)
        if isinstance(e, ev.RunStarted):
            self.run_id = e.run_id
            self.rounds = e.rounds
        elif isinstance(e, ev.RoundStarted):
            self.round = e.round
        elif isinstance(e, ev.PhaseStarted):
            self.phase = e.phase
        if isinstance(e, (ev.RunStarted, ev.RoundStarted, ev.PhaseStarted, ev.TrainingProgress)):
            extra = f" · train step {e.step}/{e.steps} loss {e.loss:.3f}" if isinstance(e, ev.TrainingProgress) else ""
            screen.set_progress(f"run {self.run_id} · round {self.round + 1}/{self.rounds} · {self.phase}{extra}")
        elif isinstance(e, ev.RunFinished):
            screen.set_progress(f"run {e.run_id} {e.status} · s to {'resume' if e.status != 'finished' else 'start a new run'}")
        elif isinstance(e, ev.RunFailed):
            screen.set_progress(f"run {e.run_id} failed")

    # -- running -------------------------------------------------------------------------------

    def running(self) -> bool:
        return any(w.group == "run" and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers)

    def _next_run(self) -> int | None:
        """The run start/resume continues: the one in hand unless it finished, else the recipe's
        latest unfinished run; None for a fresh one."""
        assert self.engine is not None and self.recipe is not None
        run_id = self.run_id
        if run_id is not None and self.engine.run_info(run_id).status == "finished":
            run_id = None
        return run_id if run_id is not None else self.engine.latest_unfinished(self.recipe.name)

    def _play(self, step: bool, run_id: int | None) -> str:
        assert self.engine is not None and self.recipe_path is not None
        eng = self.engine
        if run_id is None:
            run_id = eng.create_run(str(self.recipe_path), rounds=self.rounds)
        self.run_id = run_id
        return eng.play(run_id, rounds=self.rounds, step=step)

    def _launch(self, step: bool = False) -> None:
        if self.engine is None or self.recipe is None or not self._writable():
            return
        if self.running():
            self.notify("a run is already playing")
            return
        run_id = self._next_run()
        info = self.engine.run_info(run_id) if run_id is not None else None
        if info is None or info.status != "failed":
            self._start_worker(step, run_id)
            return

        def chosen(answer: str | None) -> None:
            if answer is not None:
                self._start_worker(step, run_id if answer == "resume" else None)

        self.push_screen(ResumeOrFresh(run_id, info.error or ""), chosen)  # type: ignore[arg-type]

    def _start_worker(self, step: bool, run_id: int | None) -> None:
        self.run_worker(lambda: self._play(step, run_id), thread=True, exclusive=True, group="run",
                        exit_on_error=False, name="run")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "run":
            return
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self.push_screen(ErrorDialog(str(err) if isinstance(err, EngineError) else f"{type(err).__name__}: {err}"))
        if event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED) and self.quitting:
            self.exit()

    def action_start(self) -> None:
        self._launch()

    def action_step(self) -> None:
        self._launch(step=True)

    def action_pause(self) -> None:
        if self.engine is not None and self.running():
            self.engine.stop()
            self.notify("pausing at the next safe point")

    def action_stop(self) -> None:
        if self.engine is not None and self.running():
            self.engine.stop()
            self.notify("stopping at the next safe point")

    def action_train_now(self) -> None:
        if self.engine is None or self.recipe is None or not self._writable():
            return
        if self.running():
            self.notify("a run is playing; training happens after each round")
            return
        eng, name = self.engine, self.recipe.name

        def train() -> None:
            run_id = self.run_id or eng.latest_unfinished(name)
            if run_id is None:
                row = eng.query("select max(id) from runs where recipe_name = ?", [name]).rows
                run_id = row[0][0] if row else None
            if run_id is None:
                raise EngineError("no run of this recipe yet: start one with s")
            eng.train_now(int(run_id))

        self.notify("training on the data so far")
        self.run_worker(train, thread=True, exclusive=True, group="run", exit_on_error=False, name="train")

    def action_rounds(self, delta: int) -> None:
        self.rounds = max(1, self.rounds + delta)
        self.notify(f"rounds: {self.rounds} (takes effect on start/resume)")

    def action_zoom(self) -> None:
        screen = self.swarm()
        if screen is not None and self.screen is screen:
            screen.toggle_zoom()

    def action_inspector(self) -> None:
        if self.engine is not None and not isinstance(self.screen, InspectorScreen):
            self.push_screen(InspectorScreen(self.engine))

    def action_sql(self) -> None:
        if self.engine is not None and not isinstance(self.screen, SqlScreen):
            self.push_screen(SqlScreen(self.engine, self.engine.home / "exports"))

    def action_training(self) -> None:
        if self.engine is not None and not isinstance(self.screen, TrainingScreen):
            self.push_screen(TrainingScreen(self.engine))

    def action_plots(self) -> None:
        if self.engine is not None and not isinstance(self.screen, PlotsScreen):
            self.push_screen(PlotsScreen(self.engine))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.HELP))

    async def action_quit(self) -> None:
        if not self.running():
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes and self.engine is not None:
                self.quitting = True
                self.engine.stop()
                self.notify("stopping at a safe point, then quitting; resume later with s or swarm run --resume")

        self.push_screen(Confirm("A run is playing. Stop it at a safe point and quit?\n"
                                 "It can be resumed later (s here, or swarm run --resume)."), callback=answered)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:  # type: ignore[type-arg]
        yield from super().get_system_commands(screen)
        for key, action, text in [
            ("s", self.action_start, "Start or resume the run"), ("p", self.action_pause, "Pause the run"),
            ("n", self.action_step, "Step one phase"), ("x", self.action_stop, "Stop the run"),
            ("z", self.action_zoom, "Zoom the focused pane"), ("i", self.action_inspector, "Open the task inspector"),
            ("e", self.action_sql, "Open the SQL screen"), ("t", self.action_training, "Open the training screen"),
            ("g", self.action_plots, "Open the curves screen"),
            ("T", self.action_train_now, "Train now on the data so far"),
            ("+", lambda: self.action_rounds(1), "One more round"), ("-", lambda: self.action_rounds(-1), "One round fewer"),
            ("?", self.action_help, "Show the keys"),
        ]:
            yield SystemCommand(text, f"key: {key}", action)


def describe(e: ev.Event) -> str | None:
    """A log line for an event (None: not worth a line)."""
    if isinstance(e, ev.RunStarted):
        return f"run {e.run_id} {'resumed' if e.resumed else 'started'}: {e.recipe}, {e.rounds} round(s)"
    if isinstance(e, ev.RoundStarted):
        return f"round {e.round} at difficulty {e.difficulty}"
    if isinstance(e, ev.ModelNotice):
        return f"model: {e.text}"
    if isinstance(e, ev.PhaseFinished):
        return f"  {e.phase} done in {e.seconds:.1f} s"
    if isinstance(e, ev.TaskProposed) and e.source == "proposed":
        return f"  proposed: {e.prompt[:60]!r}" + (f" rejected ({e.rejected_reason})" if e.rejected_reason else "")
    if isinstance(e, ev.RoundFinished):
        s = e.stats
        return (f"round {e.round}: solve {s.get('solve_rate_first', 0):.0%} -> {s.get('solve_rate_final', 0):.0%}, "
                f"judge agrees {s.get('judge_agreement', float('nan')):.0%}")
    if isinstance(e, ev.AdapterExported):
        return f"  adapter {e.adapter_id} exported, logits cosine {e.cosine:.4f}"
    if isinstance(e, ev.EvalScored):
        return f"  {e.eval_set} adapter {e.adapter_id or 'base'}: {e.accuracy:.0%} [{e.ci_low:.0%}, {e.ci_high:.0%}]"
    if isinstance(e, ev.AdapterPromoted):
        if e.reason.startswith("training "):  # skipped or failed: there was nothing to gate
            return f"  {e.reason}"
        return f"  gate: {'promoted' if e.promoted else 'kept'}: {e.reason}"
    if isinstance(e, ev.RunFinished):
        return f"run {e.run_id} {e.status}"
    if isinstance(e, ev.RunFailed):
        return f"run {e.run_id} failed: {e.error}"
    return None


def run_console(recipe: str | None = None, home: str | os.PathLike[str] | None = None, rounds: int = 3) -> int:
    SwarmApp(recipe=recipe, home=home, rounds=rounds).run()
    return 0
