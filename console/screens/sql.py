"""The SQL screen: read-only queries over the store, history, export of results."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, OptionList, Static

from engine.api import Engine
from engine.errors import EngineError


class SqlScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+s", "export('csv')", "Export CSV"),
        Binding("ctrl+o", "export('parquet')", "Export Parquet"),
    ]
    DEFAULT_CSS = """
    #sql-input { dock: top; }
    #sql-status { height: 1; padding: 0 1; }
    #sql-body { height: 1fr; }
    #sql-history { width: 36; border-left: solid $primary-darken-2; }
    #sql-results { width: 1fr; }
    """

    def __init__(self, engine: Engine, export_dir: Path) -> None:
        super().__init__(id="sql")
        self.engine = engine
        self.export_dir = export_dir
        self.history: list[str] = []
        self.last: tuple[list[str], list[tuple[object, ...]]] | None = None
        self.last_sql = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="select round, status, stats from rounds   (enter runs; read-only)", id="sql-input")
        yield Static("", id="sql-status")
        with Horizontal(id="sql-body"):
            yield DataTable(id="sql-results", zebra_stripes=True)
            yield OptionList(id="sql-history")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sql-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.run_query(event.value.strip())

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        sql = self.history[event.option_index]
        self.query_one("#sql-input", Input).value = sql
        self.run_query(sql)

    @work(thread=True, exclusive=True, group="sql", exit_on_error=False)
    def run_query(self, sql: str) -> None:
        t0 = time.perf_counter()
        try:
            res = self.engine.query(sql, limit=10_000)
        except EngineError as e:
            self.app.call_from_thread(self._status, f"error: {e}")
            return
        self.app.call_from_thread(self._show, sql, res.columns, res.rows, time.perf_counter() - t0)

    def _status(self, text: str) -> None:
        self.query_one("#sql-status", Static).update(text)

    def _show(self, sql: str, columns: list[str], rows: list[tuple[object, ...]], secs: float) -> None:
        table = self.query_one("#sql-results", DataTable)
        table.clear(columns=True)
        table.add_columns(*columns)
        for r in rows:
            table.add_row(*["NULL" if v is None else str(v)[:120] for v in r])
        self.last, self.last_sql = (columns, rows), sql
        if not self.history or self.history[-1] != sql:
            self.history.append(sql)
            self.query_one("#sql-history", OptionList).add_option(sql[:60])
        self._status(f"{len(rows)} row(s) in {secs * 1000:.0f} ms")

    def action_export(self, fmt: str) -> None:
        if self.last is None:
            self._status("run a query first")
            return
        self.export_dir.mkdir(parents=True, exist_ok=True)
        path = self.export_dir / f"query-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        columns, rows = self.last
        if fmt == "csv":
            with open(path, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(columns)
                w.writerows(rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({c: [None if r[i] is None else str(r[i]) for r in rows] for i, c in enumerate(columns)})
            pq.write_table(table, path)
        self._status(f"exported {len(rows)} row(s) to {path}")
