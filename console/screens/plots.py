"""The curves screen: training loss per step, dev and test accuracy per round with their 95%
intervals, the judge's agreement and the debate's gain per round, and per-skill pass rates as a
heat map. The data is ``engine.report.curves``; the plots are textual-plotext widgets, and
``swarm report RUN`` draws the same figures as PNG or SVG (``console.report``)."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual_plotext import PlotextPlot

from console.widgets.table import Table
from engine import events as ev
from engine.api import Engine
from engine.report import Curves

#: Series colours, in order (plotext names).
COLORS = ["cyan", "orange", "green", "magenta", "blue", "red", "yellow"]


def heat_style(rate: float | None) -> str:
    """A cell's background for a pass rate: red (0) through yellow to green (1).

    >>> heat_style(0.0), heat_style(1.0), heat_style(None)
    ('black on rgb(220,50,47)', 'black on rgb(40,180,60)', '')
    """
    if rate is None:
        return ""
    r = max(0.0, min(1.0, rate))
    lo, mid, hi = (220, 50, 47), (230, 200, 40), (40, 180, 60)
    a, b, t = (lo, mid, r * 2) if r < 0.5 else (mid, hi, (r - 0.5) * 2)
    rgb = ",".join(str(round(x + (y - x) * t)) for x, y in zip(a, b))
    return f"black on rgb({rgb})"


class PlotsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "refresh", "Refresh"),
        Binding("left_square_bracket", "run(-1)", "Earlier run"),
        Binding("right_square_bracket", "run(1)", "Later run"),
    ]
    DEFAULT_CSS = """
    #plots-status { height: 1; padding: 0 1; }
    #plots { grid-size: 2 2; grid-columns: 1fr 1fr; grid-rows: 1fr 1fr; height: 1fr; }
    #plots > * { border: round $primary-darken-2; }
    #heat { height: 1fr; }
    """

    def __init__(self, engine: Engine, run_id: int | None = None) -> None:
        super().__init__(id="plots")
        self.engine = engine
        self.run_id = run_id
        self.live: list[float] = []  # this session's losses, step by step, before the store has them

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="plots-status")
        with Grid(id="plots"):
            yield PlotextPlot(id="plot-loss")
            yield PlotextPlot(id="plot-accuracy")
            yield PlotextPlot(id="plot-debate")
            yield Table(id="heat", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        titles = {"#plot-loss": "training loss per step", "#plot-accuracy": "accuracy % per round, 95% intervals "
                  "(flat lines: base model)", "#plot-debate": "judge and debate per round",
                  "#heat": "skills: dev pass rate per round"}
        for sel, title in titles.items():
            self.query_one(sel).border_title = title
        self.action_refresh()
        if self.engine.read_only:  # no events from the process that plays: look again now and then
            self.set_interval(5.0, self.action_refresh)

    def handle_engine_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.TrainingProgress):
            self.live.append(e.loss)
            if len(self.live) % 5 == 0 or e.step == e.steps:
                self.action_refresh()
        elif isinstance(e, (ev.RoundFinished, ev.EvalScored, ev.AdapterPromoted)):
            self.live.clear()
            self.action_refresh()

    def action_run(self, step: int) -> None:
        """Show an earlier ([) or later (]) run; past the latest, follow the latest again."""
        runs = [int(r[0]) for r in self.engine.query("select id from runs order by id").rows]
        if not runs:
            return
        current = self.run_id if self.run_id in runs else runs[-1]
        i = runs.index(current) + step
        self.run_id = None if i >= len(runs) - 1 else runs[max(0, i)]
        self.action_refresh()

    @work(thread=True, exclusive=True, group="plots", exit_on_error=False)
    def action_refresh(self) -> None:
        run_id = self.run_id if self.run_id is not None else self.engine.latest_run()
        data = self.engine.curves(run_id) if run_id is not None else None
        self.app.call_from_thread(self._draw, data)

    # -- drawing ---------------------------------------------------------------------------------

    def _draw(self, c: Curves | None) -> None:
        status = self.query_one("#plots-status", Static)
        if c is None:
            status.update("no runs yet: start one with s")
        else:
            status.update(f"run {c.run_id}{' (the latest)' if self.run_id is None else ''}: {len(c.loss)} training "
                          f"run(s), {len(c.debate)} round(s) with statistics"
                          + ("" if not c.empty() else " - nothing to plot yet") + "   [ / ]: earlier / later run")
        self._loss(c)
        self._accuracy(c)
        self._debate(c)
        self._heat(c)

    def _plot(self, sel: str) -> PlotextPlot:
        w = self.query_one(sel, PlotextPlot)
        w.plt.clear_figure()
        return w

    def _loss(self, c: Curves | None) -> None:
        w = self._plot("#plot-loss")
        plt, x0 = w.plt, 0
        for i, (rnd, losses) in enumerate(c.loss if c else []):
            plt.plot(list(range(x0 + 1, x0 + len(losses) + 1)), losses, color=COLORS[i % len(COLORS)],
                     label=f"round {rnd}")
            x0 += len(losses)
        if self.live:
            plt.plot(list(range(x0 + 1, x0 + len(self.live) + 1)), self.live, color="white", label="training now")
        plt.xlabel("step")
        w.refresh()

    def _accuracy(self, c: Curves | None) -> None:
        w = self._plot("#plot-accuracy")
        plt = w.plt
        color, rounds = 0, set()
        for pool, series, base in (("dev", c.dev if c else {}, c.dev_base if c else {}),
                                   ("test", c.test if c else {}, c.test_base if c else {})):
            for name, points in series.items():
                col = COLORS[color % len(COLORS)]
                color += 1
                xs = [p[0] for p in points]
                ys = [100 * p[1] for p in points]
                for p in points:  # the 95% interval (asymmetric, so not plotext's symmetric error bars)
                    plt.plot([p[0], p[0]], [100 * p[2], 100 * p[3]], color=col, marker="│" if pool == "dev" else "┆")
                plt.plot(xs, ys, color=col, label=name)
                plt.scatter(xs, ys, color=col, marker="●")  # drawn last: a round alone is a point, not a line
                rounds.update(xs)
                if name in base:
                    plt.hline(100 * base[name][0], color=col)
        plt.ylim(0, 100)
        if rounds:
            plt.xticks(sorted(rounds))
            plt.xlim(min(rounds) - 0.5, max(rounds) + 0.5)
        plt.xlabel("round")
        plt.ylabel("%")
        w.refresh()

    def _debate(self, c: Curves | None) -> None:
        w = self._plot("#plot-debate")
        plt = w.plt
        rows = c.debate if c else []
        for i, label in enumerate(("judge agrees with verifier", "judge balanced accuracy", "debate gain")):
            pts = [(r[0], 100 * v) for r in rows if (v := r[i + 1]) is not None]
            if pts:
                plt.plot([p[0] for p in pts], [p[1] for p in pts], color=COLORS[i], label=label)
                plt.scatter([p[0] for p in pts], [p[1] for p in pts], color=COLORS[i], marker="●")
        if rows:
            plt.xticks([r[0] for r in rows])
            plt.xlim(rows[0][0] - 0.5, rows[-1][0] + 0.5)
            plt.hline(50, color="gray")  # a coin; balanced accuracy below it is worse than guessing
            plt.hline(0, color="gray")
        plt.xlabel("round")
        plt.ylabel("%")
        w.refresh()

    def _heat(self, c: Curves | None) -> None:
        table = self.query_one("#heat", DataTable)
        table.clear(columns=True)
        if c is None or not c.skills:
            table.add_column("no skill scores yet")
            return
        self.query_one("#heat").border_title = f"skills: {c.skills_source} pass rate per round (weakest last round first)"
        table.add_column("skill")
        for r in c.rounds:
            table.add_column(f"r{r}", width=5)

        def latest(rates: list[float | None]) -> float:
            return next((v for v in reversed(rates) if v is not None), 2.0)

        for skill, rates in sorted(c.skills.items(), key=lambda kv: (latest(kv[1]), kv[0])):
            table.add_row(skill, *[Text(" - " if v is None else f"{100 * v:3.0f}%", style=heat_style(v)) for v in rates])
