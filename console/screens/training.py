"""The training screen: live loss, dev and test accuracy per adapter, the debate's worth per round
and on test sets, promote and roll back."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Sparkline, Static

from console.widgets.table import Table
from engine import events as ev
from engine.api import Engine
from engine.protocol import DebateScore


def _pct(v: object, signed: bool = False) -> str:
    """A fraction as percent (points when ``signed``); '-' when not defined."""
    if v is None or v != v:  # None or NaN
        return "-"
    return f"{100 * float(v):+.0f}" if signed else f"{100 * float(v):.0f}%"  # type: ignore[arg-type]


class TrainingScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("p", "promote", "Promote selected"),
        Binding("b", "rollback", "Roll back to base"),
        Binding("r", "refresh", "Refresh"),
    ]
    DEFAULT_CSS = """
    #loss { height: 4; }
    #train-status { height: 2; padding: 0 1; }
    #adapters { height: 1fr; }
    #evals { height: 1fr; }
    #debates { height: 1fr; }
    #curriculum { height: 2; padding: 0 1; }
    #skills { height: 1fr; }
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(id="training")
        self.engine = engine
        self.losses: list[float] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("no training yet in this session", id="train-status")
        yield Sparkline([], id="loss")
        yield Table(id="adapters", cursor_type="row")
        yield Table(id="evals")
        yield Table(id="debates")
        yield Static("", id="curriculum")
        yield Table(id="skills")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#adapters", DataTable).add_columns(
            "adapter", "run", "round", "backend", "examples", "steps", "tok/s", "cosine", "promoted", "decision")
        self.query_one("#evals", DataTable).add_columns("run", "round", "adapter", "set", "n", "accuracy", "95% interval")
        self.query_one("#debates", DataTable).add_columns(
            "run", "round", "debate on", "n", "first right", "after debate", "gain", "right->wrong", "wrong->right",
            "judge balanced acc.")
        self.query_one("#skills", DataTable).add_columns(
            "skill (weakest first)", "what", "dev", "change", "n", "round", "change", "n")
        self.action_refresh()
        if self.engine.read_only:  # no events from the process that plays: look again now and then
            self.set_interval(5.0, self.action_refresh)

    def handle_engine_event(self, e: ev.Event) -> None:
        if isinstance(e, ev.TrainingProgress):
            self.losses.append(e.loss)
            self.query_one("#loss", Sparkline).data = list(self.losses[-200:])
            self.query_one("#train-status", Static).update(
                f"round {e.round}: step {e.step}/{e.steps}  loss {e.loss:.4f}  {e.tokens_per_second:.0f} tok/s")
        elif isinstance(e, (ev.AdapterExported, ev.EvalScored, ev.AdapterPromoted)):
            self.action_refresh()

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def action_refresh(self) -> None:
        ad = self.engine.query(
            "select a.id, a.run_id, a.round, t.backend, t.n_examples, t.steps, round(t.tokens_per_second), "
            "round(a.export_cosine, 4), a.promoted, coalesce(a.role || ' adapter: ', '') || a.decision from adapters a "
            "join training_runs t on t.id = a.training_run_id order by a.id desc").rows
        evs = self.engine.query(
            "select run_id, round, coalesce(adapter_id::text, 'base'), eval_set, n, round(accuracy, 3), "
            "printf('[%.2f, %.2f]', ci_low, ci_high) from evals order by id desc").rows
        # The debate's worth: the debate protocol on test sets (swarm eval --debate, the improve
        # benchmark) and each round's own sampled debate, both scored by the verifier afterwards.
        protocol = []
        for run_id, rnd, name, *counts in self.engine.query(
                "select run_id, round, eval_set || ' ' || coalesce('#' || adapter_id::text, 'base') "
                "|| case when adapters is null then '' else ' per-role' end, n, first_correct, "
                "final_correct, right_to_wrong, wrong_to_right, judge_tp, judge_tn, judge_fp, judge_fn "
                "from debate_evals order by id desc").rows:
            d = DebateScore(*(int(c) for c in counts))  # type: ignore[arg-type]
            protocol.append((run_id, rnd, name, d.n, d.first_accuracy, d.final_accuracy, d.gain, d.right_to_wrong_rate,
                             d.wrong_to_right_rate, d.judge_balanced_accuracy))
        rounds = self.engine.query(
            "select run_id, round, 'round ' || round || ' (sampled)', (stats->>'first_n')::int, "
            "(stats->>'solve_rate_first')::double, (stats->>'solve_rate_final')::double, "
            "(stats->>'debate_gain')::double, (stats->>'right_to_wrong')::double, "
            "(stats->>'wrong_to_right')::double, (stats->>'judge_balanced_accuracy')::double "
            "from rounds where stats is not null order by run_id desc, round desc").rows
        debates = [(*r[:4], *(_pct(v, i == 2) for i, v in enumerate(r[4:]))) for r in protocol + rounds]
        # The latest run's curriculum and skills: where it is, why, and what it gets wrong.
        run_id, plan, skills = self.engine.latest_run(), "", []
        if run_id is not None:
            plans = self.engine.curriculum(run_id)
            if plans:
                r, lvl, mix, why, _ = plans[-1]
                mixed = ", ".join(f"{v} at level {k}" for k, v in mix.items())
                plan = f"run {run_id} round {r}: level {lvl} ({mixed}) - {why}"
            skills = [(k.skill, k.words, _pct(k.dev), _pct(k.dev_change, True), k.dev_n or "", _pct(k.round),
                       _pct(k.round_change, True), k.round_n or "") for k in self.engine.skills(run_id)]
        self.app.call_from_thread(self._fill, ad, evs, debates, plan, skills)

    def _fill(self, ad: list[tuple[object, ...]], evs: list[tuple[object, ...]], debates: list[tuple[object, ...]],
              plan: str = "", skills: list[tuple[object, ...]] | None = None) -> None:
        self.query_one("#curriculum", Static).update(Text(plan or "no curriculum yet"))
        for table_id, rows in (("#adapters", ad), ("#evals", evs), ("#debates", debates), ("#skills", skills or [])):
            table = self.query_one(table_id, DataTable)
            table.clear()
            for r in rows:
                table.add_row(*["" if v is None else str(v)[:70] for v in r], key=str(r[0]) if table_id == "#adapters" else None)

    def _selected(self) -> int | None:
        table = self.query_one("#adapters", DataTable)
        if not table.row_count:
            return None
        return int(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def _read_only(self) -> bool:
        if self.engine.read_only:
            self.notify("read-only view: promote and roll back in the console that holds the store",
                        severity="warning")
        return self.engine.read_only

    def action_promote(self) -> None:
        if self._read_only():
            return
        adapter = self._selected()
        if adapter is not None:
            self.app.run_worker(lambda: self.engine.use_adapter(adapter), thread=True, group="adapter",
                                exit_on_error=False)
            self.query_one("#train-status", Static).update(f"adapter {adapter} promoted and loaded")
            self.action_refresh()

    def action_rollback(self) -> None:
        if self._read_only():
            return
        self.app.run_worker(lambda: self.engine.use_adapter(None), thread=True, group="adapter", exit_on_error=False)
        self.query_one("#train-status", Static).update("rolled back to the base model")
        self.action_refresh()
