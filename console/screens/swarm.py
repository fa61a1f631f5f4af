"""The swarm screen: a pane per agent, the run's progress, metrics and the event log."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, RichLog, Sparkline, Static

from console.widgets.agent_pane import AgentPane
from engine import events as ev
from engine.recipes import Recipe


def even_grid(n: int, most: int) -> tuple[int, list[int]]:
    """Grid columns and each pane's column span so ``n`` panes, at most ``most`` to a row, fill
    every row: rows hold as equal counts as can be, and a row of fewer panes gets wider ones.

    >>> even_grid(5, 4)  # 3 on the first row, 2 wider ones on the second
    (6, [2, 2, 2, 3, 3])
    >>> even_grid(5, 5), even_grid(4, 3), even_grid(1, 4)
    ((5, [1, 1, 1, 1, 1]), (2, [1, 1, 1, 1]), (1, [1]))
    """
    rows = -(-n // max(1, most))
    per_row = [n // rows + (1 if r < n % rows else 0) for r in range(rows)]
    cols = math.lcm(*per_row)
    return cols, [cols // k for k in per_row for _ in range(k)]


class SwarmScreen(Screen[None]):
    DEFAULT_CSS = """
    #progress { height: 1; padding: 0 1; background: $boost; }
    #panes { grid-gutter: 0 1; height: 1fr; }
    #metrics { height: 3; }
    #metrics > Static { width: 1fr; padding: 0 1; }
    #acc-spark { width: 24; height: 3; }
    #log { height: 8; border-top: solid $primary-darken-2; }
    SwarmScreen.zoomed #log, SwarmScreen.zoomed #metrics { display: none; }
    AgentPane.hidden { display: none; }
    """

    def __init__(self, recipe: Recipe) -> None:
        super().__init__(id="swarm")
        self.recipe = recipe
        self.zoomed: AgentPane | None = None
        self.accuracies: list[float] = []

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(f"recipe {self.recipe.name} · press s to start", id="progress")
        with Grid(id="panes"):
            for a in self.recipe.agents:
                yield AgentPane(a.name, a.role)
        with Horizontal(id="metrics"):
            yield Sparkline([], id="acc-spark")
            yield Static("dev: -", id="m-acc")
            yield Static("accepted: -", id="m-accept")
            yield Static("judge agrees: -", id="m-judge")
            yield Static("tok/s: -", id="m-tps")
        yield RichLog(id="log", max_lines=500, wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self._layout()

    def on_resize(self) -> None:
        self._layout()

    def _layout(self) -> None:
        grid = self.query_one("#panes", Grid)
        n = 1 if self.zoomed else len(self.recipe.agents)
        cols, spans = even_grid(n, max(1, self.size.width // 38))
        grid.styles.grid_size_columns = cols
        grid.styles.grid_size_rows = max(1, -(-sum(spans) // cols))
        shown = [p for p in self.panes() if self.zoomed is None or p is self.zoomed]
        for pane, span in zip(shown, spans):
            pane.styles.column_span = span

    def panes(self) -> list[AgentPane]:
        return list(self.query(AgentPane))

    def toggle_zoom(self) -> None:
        focused = self.focused if isinstance(self.focused, AgentPane) else None
        if self.zoomed is not None:
            self.zoomed = None
            for p in self.panes():
                p.remove_class("hidden")
        else:
            target = focused or self.panes()[0]
            self.zoomed = target
            for p in self.panes():
                p.set_class(p is not target, "hidden")
            target.focus()
        self.set_class(self.zoomed is not None, "zoomed")
        self._layout()

    def feed_tokens(self, chunks: dict[str, tuple[dict[str, str], int]], task_of: dict[str, int] | None = None) -> None:
        panes = {p.agent: p for p in self.panes()}
        for agent, (per_request, n_tokens) in chunks.items():
            pane = panes.get(agent)
            if pane is not None:  # helpers (eval, replay) have no pane
                pane.feed(per_request, n_tokens, task_of)

    def set_progress(self, text: str) -> None:
        self.query_one("#progress", Static).update(text)

    def log_line(self, text: str) -> None:
        self.query_one("#log", RichLog).write(text)

    def handle_engine_event(self, e: ev.Event) -> None:  # noqa: C901 - a plain dispatch
        if isinstance(e, ev.RoundFinished):
            s = e.stats
            self.query_one("#m-accept", Static).update(
                f"accepted: {s.get('accepted', 0):.0f}/{s.get('tasks', 0):.0f}")
            self.query_one("#m-judge", Static).update(f"judge agrees: {s.get('judge_agreement', float('nan')):.0%}")
            self.query_one("#m-tps", Static).update(f"tok/s: {s.get('tokens_per_second', 0):.0f}")
            for p in self.panes():
                p.settle()
        elif isinstance(e, ev.EvalScored):
            self.accuracies.append(e.accuracy)
            self.query_one("#acc-spark", Sparkline).data = list(self.accuracies)
            self.query_one("#m-acc", Static).update(
                f"dev: {e.accuracy:.0%} [{e.ci_low:.0%}, {e.ci_high:.0%}] ({e.eval_set})")
        elif isinstance(e, ev.AdapterPromoted) and e.promoted:
            for p in self.panes():
                p.adapter = f"adapter {e.adapter_id}"
        elif isinstance(e, ev.AnswerGiven) and e.correct is not None:
            for p in self.panes():
                if p.agent == e.agent:
                    p.mark(e.task_id, "✓" if e.correct else "✗")
        elif isinstance(e, ev.VerdictReached) and e.judge:
            for p in self.panes():
                if p.agent == e.judge:  # right or wrong: whether the judge agrees with the verifier
                    p.mark(e.task_id, "·" if e.judge_correct is None else "✓" if e.judge_correct == e.verifier_correct
                           else "✗")
        elif isinstance(e, ev.PhaseFinished):
            for p in self.panes():
                p.settle()
