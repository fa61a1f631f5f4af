"""The task inspector: every task of the store, filterable, and the whole debate of one."""

from __future__ import annotations

import json

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Select, Static

from console.widgets.table import Table
from engine.api import Engine
from engine.protocol import trace_lines

TASKS_SQL = """
select t.id, t.run_id, t.round, t.source, t.domain, t.difficulty,
       coalesce(t.rejected_reason, '') as rejected,
       round(avg(a.correct::int) filter (where a.turn = 0), 2) as solved_first,
       count(v.id) filter (where v.agreement = false) as disagreements,
       t.prompt
from tasks t
left join attempts a on a.task_id = t.id
left join verdicts v on v.attempt_id = a.id
where not t.held_out {where}
group by all {having}
order by t.id desc
limit 500
"""


class InspectorScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("enter", "show", "Show", show=False),
        Binding("r", "reload", "Reload"),
        Binding("R", "replay", "Replay under the adapter in use"),
    ]
    DEFAULT_CSS = """
    #filters { height: 3; }
    #filters Input { width: 1fr; }
    #filters Select { width: 28; }
    #tasks { height: 1fr; }
    #detail { height: 1fr; border-top: solid $primary-darken-2; padding: 0 1; }
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(id="inspector")
        self.engine = engine

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filters"):
            yield Input(placeholder="search text; round=N run=N domain=arith source=proposed  (/ to focus)", id="search")
            yield Select([("all verdicts", "all"), ("verified correct", "correct"), ("verified wrong", "wrong"),
                          ("judge disagrees", "disagree"), ("rejected", "rejected")], value="all", id="verdict",
                         allow_blank=False)
        yield Table(id="tasks", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="detail"):
            yield Static("select a task and press enter", id="debate", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#tasks", DataTable)
        table.add_columns("id", "run", "round", "source", "domain", "level", "rejected", "solved@1", "disagree", "task")
        self.reload()
        table.focus()

    def action_reload(self) -> None:
        self.reload()

    def action_focus_filter(self) -> None:
        self.query_one("#search", Input).focus()

    def on_input_changed(self) -> None:
        self.reload()

    def on_select_changed(self) -> None:
        self.reload()

    def _where(self) -> tuple[str, str, list[object]]:
        verdict = self.query_one("#verdict", Select).value
        clauses: list[str] = []
        params: list[object] = []
        words = []
        for word in self.query_one("#search", Input).value.split():
            key, _, value = word.partition("=")
            if key in ("round", "run") and value.isdigit():
                clauses.append(f"t.{'run_id' if key == 'run' else 'round'} = ?")
                params.append(int(value))
            elif key in ("domain", "source") and value:
                clauses.append(f"t.{key} = ?")
                params.append(value)
            else:
                words.append(word)
        if words:
            clauses.append("t.prompt ilike ?")
            params.append(f"%{' '.join(words)}%")
        if verdict == "rejected":
            clauses.append("t.rejected_reason is not null")
        having = {"correct": "having bool_or(a.correct)", "wrong": "having not coalesce(bool_or(a.correct), false)",
                  "disagree": "having count(v.id) filter (where v.agreement = false) > 0"}.get(str(verdict), "")
        return "".join(f" and {c}" for c in clauses), having, params

    @work(thread=True, exclusive=True, group="inspector", exit_on_error=False)
    def reload(self) -> None:
        where, having, params = self._where()
        res = self.engine.query(TASKS_SQL.format(where=where, having=having), params)
        self.app.call_from_thread(self._fill, res.rows)

    def _fill(self, rows: list[tuple[object, ...]]) -> None:
        table = self.query_one("#tasks", DataTable)
        table.clear()
        for r in rows:
            cells = ["" if v is None else str(v) for v in r]
            cells[-1] = cells[-1].replace("\n", " ")[:80]
            table.add_row(*cells, key=cells[0])

    def action_show(self) -> None:
        table = self.query_one("#tasks", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.load_debate(int(str(key)))

    def _selected(self) -> int | None:
        table = self.query_one("#tasks", DataTable)
        if not table.row_count:
            return None
        return int(str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value))

    def action_replay(self) -> None:
        """The selected task played again (debate protocol) under the adapter its round played with
        and under the run's adapter in use, side by side."""
        task_id = self._selected()
        if task_id is None:
            return
        if self.engine.read_only:
            self.notify("read-only view: replay in the console that holds the store (or swarm replay there)",
                        severity="warning")
            return
        if any(w.group == "run" and w.is_running for w in self.app.workers):
            self.notify("a run is playing: replay when it pauses", severity="warning")
            return
        self.query_one("#debate", Static).update(f"replaying task {task_id} under two adapters…")
        self.replay(task_id)

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def replay(self, task_id: int) -> None:
        from engine.errors import EngineError

        q = self.engine.query
        row = q("select run_id, round from tasks where id = ?", [task_id]).rows
        try:
            if not row or row[0][0] is None:
                raise EngineError(f"task {task_id} belongs to no run (an imported set): use swarm replay --set")
            r = self.engine.replay(int(row[0][0]), tasks=[task_id])
        except EngineError as e:
            self.app.call_from_thread(self.query_one("#debate", Static).update, f"replay failed: {e}")
            return
        change = r.changes()[0]
        out = [f"REPLAY of task {task_id} ({change.change or 'no change'}): {change.task.task.prompt.strip()}",
               f"reference: {change.task.task.reference}"]
        for label, side in (("BEFORE", r.before), ("AFTER", r.after)):
            t = side.score.traces[task_id]
            out += ["", f"── {label}: {side.name}", *trace_lines(t, lambda ok: "✓" if ok else "✗")]
        self.app.call_from_thread(self.query_one("#debate", Static).update, "\n".join(out))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.load_debate(int(str(event.row_key.value)))

    @work(thread=True, exclusive=True, group="debate", exit_on_error=False)
    def load_debate(self, task_id: int) -> None:
        q = self.engine.query
        task = q("select prompt, reference, source, rejected_reason, payload from tasks where id = ?", [task_id]).rows[0]
        attempts = q("select id, agent, sample, turn, text, answer, correct, status from attempts where task_id = ? "
                     "order by agent, sample, turn", [task_id]).rows
        crits = {r[0]: r[1:] for r in q("select attempt_id, agent, text from critiques where task_id = ?", [task_id]).rows}
        verdicts = {r[0]: r[1:] for r in q("select attempt_id, judge, judge_correct, verifier_correct, agreement "
                                            "from verdicts where task_id = ?", [task_id]).rows}
        examples = {r[0] for r in q("select attempt_id from examples where task_id = ?", [task_id]).rows}
        prompt, reference, source, rejected, payload = task
        out = [f"TASK {task_id} ({source})", prompt, f"reference: {reference}"]
        if rejected:
            data = json.loads(payload) if isinstance(payload, str) else {}
            out += [f"REJECTED: {rejected}", data.get("proposal_text", "")]
        for aid, agent, sample, turn, text, answer, correct, status in attempts:
            mark = "✓" if correct else "✗"
            out += ["", f"── {agent} sample {sample} turn {turn}: {mark} verifier {status} (answer {answer})", text.strip()]
            if aid in crits:
                out += [f"   critique by {crits[aid][0]}: {crits[aid][1].strip()}"]
            if aid in verdicts:
                judge, jc, vc, agree = verdicts[aid]
                out += [f"   judge {judge}: {'correct' if jc else 'wrong' if jc is not None else 'no verdict'}"
                        f" · verifier: {'correct' if vc else 'wrong'} · {'agree' if agree else 'DISAGREE'}"]
            if aid in examples:
                out += ["   → became a training example"]
        self.app.call_from_thread(self.query_one("#debate", Static).update, "\n".join(out))
