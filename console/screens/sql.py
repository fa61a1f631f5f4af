"""The SQL screen: read-only queries over the store with a catalog, an editor and a history.

Left: the catalog (every table, its columns and types; space opens a table, enter puts the name
at the editor's cursor) above
the history (this data dir's last queries, kept across sessions; enter runs one again). Right: a
multi-line editor with SQL highlighting, opened on an example query that runs as it is, and the
results. ``ctrl+r`` (or F5) runs the editor's query; writes are refused by the store.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, OptionList, Static, TextArea, Tree

from console.widgets.table import Table
from engine.api import Engine
from engine.errors import EngineError

#: What the editor opens on: a real query, so ctrl+r shows something on the first try.
EXAMPLE = """-- ctrl+r runs; read-only. The catalog is on the left, history below it.
select run_id, round, difficulty, status, phase,
       round((stats->>'solve_rate_first')::double, 3) as solved_first,
       dev_score
from rounds
order by run_id desc, round desc
limit 50"""

#: Queries kept in the history file.
HISTORY_MAX = 200

CATALOG_SQL = ("select table_name, column_name, data_type from information_schema.columns "
               "where table_schema = 'main' order by table_name, ordinal_position")


def _editor() -> TextArea:
    """A SQL editor: highlighted where tree-sitter's SQL grammar is installed, plain otherwise."""
    try:
        return TextArea.code_editor(EXAMPLE, language="sql", id="sql-input", soft_wrap=True)
    except Exception:  # noqa: BLE001 - highlighting is a nicety: a missing grammar must not cost the screen
        return TextArea.code_editor(EXAMPLE, id="sql-input", soft_wrap=True)


class SqlScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+r,f5", "run", "Run", priority=True),
        Binding("ctrl+s", "export('csv')", "Export CSV"),
        Binding("ctrl+o", "export('parquet')", "Export Parquet"),
        Binding("ctrl+l", "focus_editor", "Editor", show=False),
    ]
    DEFAULT_CSS = """
    #sql-side { width: 34; border-right: solid $primary-darken-2; }
    #sql-catalog { height: 2fr; }
    #sql-history-title { height: 1; padding: 0 1; background: $boost; }
    #sql-history { height: 1fr; }
    #sql-main { width: 1fr; }
    #sql-input { height: 9; }
    #sql-status { height: 1; padding: 0 1; }
    #sql-results { height: 1fr; }
    """

    def __init__(self, engine: Engine, export_dir: Path, history_file: Path | None = None) -> None:
        super().__init__(id="sql")
        self.engine = engine
        self.export_dir = export_dir
        self.history_file = history_file if history_file is not None else engine.home / "sql-history.jsonl"
        self.history: list[str] = self._load_history()
        self.last: tuple[list[str], list[tuple[object, ...]]] | None = None
        self.last_sql = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="sql-side"):
                catalog: Tree[str] = Tree("tables (enter: insert name)", id="sql-catalog")
                catalog.auto_expand = False
                yield catalog
                yield Static("history (enter runs)", id="sql-history-title")
                yield OptionList(*[self._label(q) for q in reversed(self.history)], id="sql-history")
            with Vertical(id="sql-main"):
                yield _editor()
                yield Static("ctrl+r runs the query (read-only: SELECT, WITH, EXPLAIN, DESCRIBE, SUMMARIZE)",
                             id="sql-status")
                yield Table(id="sql-results", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sql-input", TextArea).focus()
        self.load_catalog()

    # -- the catalog -----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="sql-catalog", exit_on_error=False)
    def load_catalog(self) -> None:
        try:
            rows = self.engine.query(CATALOG_SQL).rows
        except EngineError as e:
            self.app.call_from_thread(self._status, f"catalog: {e}")
            return
        self.app.call_from_thread(self._fill_catalog, rows)

    def _fill_catalog(self, rows: list[tuple[object, ...]]) -> None:
        tree = self.query_one("#sql-catalog", Tree)
        tree.clear()
        tree.root.expand()
        tables: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in rows:
            tables.setdefault(str(table), []).append((str(column), str(kind)))
        for table, columns in tables.items():
            node = tree.root.add(table, data=table)
            for column, kind in columns:
                node.add_leaf(f"{column}  [dim]{kind.lower()}[/]", data=column)

    def on_tree_node_selected(self, event: Tree.NodeSelected) -> None:  # type: ignore[type-arg]
        if isinstance(event.node.data, str):  # a table or a column: its name at the editor's cursor
            self._insert(event.node.data)

    def _insert(self, text: str) -> None:
        editor = self.query_one("#sql-input", TextArea)
        editor.insert(text)

    # -- running ---------------------------------------------------------------------------------

    def action_focus_editor(self) -> None:
        self.query_one("#sql-input", TextArea).focus()

    def action_run(self) -> None:
        editor = self.query_one("#sql-input", TextArea)
        sql = (editor.selected_text or editor.text).strip()  # a selection runs alone
        if sql:
            self.run_query(sql)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        sql = list(reversed(self.history))[event.option_index]
        self.query_one("#sql-input", TextArea).load_text(sql)
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
        self._remember(sql)
        self._status(f"{len(rows)} row(s) in {secs * 1000:.0f} ms" + (" (the first 10000)" if len(rows) == 10_000 else ""))

    # -- history ---------------------------------------------------------------------------------

    @staticmethod
    def _label(sql: str) -> str:
        r"""A query on one short line, its comment lines left out.

        >>> SqlScreen._label("-- note\nselect a,\n   b from t")
        'select a, b from t'
        """
        code = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
        return " ".join(" ".join(code).split())[:60]

    def _load_history(self) -> list[str]:
        try:
            lines = self.history_file.read_text().splitlines()
        except OSError:
            return []
        out = []
        for line in lines[-HISTORY_MAX:]:
            try:
                out.append(str(json.loads(line)["sql"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a crash: skip it
        return out

    def _remember(self, sql: str) -> None:
        if sql in self.history:
            self.history.remove(sql)
        self.history.append(sql)
        del self.history[:-HISTORY_MAX]
        options = self.query_one("#sql-history", OptionList)
        options.clear_options()
        options.add_options([self._label(q) for q in reversed(self.history)])
        try:
            self.history_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.history_file.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps({"sql": q}) + "\n" for q in self.history))
            tmp.replace(self.history_file)
        except OSError as e:
            self.notify(f"history not saved: {e}", severity="warning")

    # -- export ----------------------------------------------------------------------------------

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
