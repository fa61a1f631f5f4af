"""The store owns DuckDB: one connection per process, a cursor per thread, batched writes.

``Store.open`` creates the file if needed and applies pending migrations; a file written by a
newer schema, or locked by another process, raises StoreError. ``insert`` writes many rows in
one statement inside one transaction, so a phase's rows land together or not at all.
``query`` is the read-only path for users (``swarm sql``, the SQL screen): only SELECT-like
statements pass, and they run inside a transaction that is rolled back.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from engine.errors import StoreError
from engine.store.migrations import LATEST_VERSION, MIGRATIONS

#: Statement types a user query may contain.
_READ_ONLY_TYPES = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
#: Rows per INSERT statement; DuckDB handles large VALUES lists, this bounds the SQL size.
_INSERT_CHUNK = 500


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _json_default(o: object) -> object:
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _cell(value: object) -> object:
    """Python values DuckDB does not bind directly (dicts, lists) go in as JSON text."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_json_default)
    return value


class Store:
    """The run database. Thread-safe: each thread gets its own cursor."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
        self._con = con
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, read_only: bool = False) -> Store:
        """Open (creating and migrating unless read_only) the store at ``path``.

        Raises StoreError when the file is locked by another process, is not a DuckDB file,
        or carries a schema newer than this code.
        """
        p = Path(path)
        if read_only and not p.exists():
            raise StoreError(f"no store at {p} (run swarm once to create it)")
        if p.is_dir():
            raise StoreError(f"store path is a directory: {p}")
        try:
            con = duckdb.connect(str(p), read_only=read_only)
        except duckdb.IOException as e:
            msg = str(e)
            if "lock" in msg.lower():
                raise StoreError(
                    f"store {p} is in use by another process; close it (or wait for its run) "
                    f"and try again ({msg.splitlines()[0]})"
                ) from e
            raise StoreError(f"cannot open store {p}: {msg.splitlines()[0]}") from e
        except duckdb.Error as e:
            raise StoreError(f"cannot open store {p}: {str(e).splitlines()[0]}") from e
        store = cls(con, p, read_only)
        try:
            store._migrate()
        except BaseException:
            con.close()
            raise
        return store

    def _migrate(self) -> None:
        con = self._con
        has_table = con.execute(
            "select count(*) from information_schema.tables where table_name='schema_migrations'"
        ).fetchone()
        applied: set[int] = set()
        if has_table and has_table[0]:
            applied = {r[0] for r in con.execute("select version from schema_migrations").fetchall()}
        newest = max(applied, default=0)
        if newest > LATEST_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {newest}, newer than this swarm "
                f"understands ({LATEST_VERSION}); upgrade swarm or use another --home"
            )
        pending = [m for m in MIGRATIONS if m.version not in applied]
        if not pending:
            return
        if self.read_only:
            raise StoreError(
                f"store {self.path} needs migrations {[m.name for m in pending]} but was "
                "opened read-only; open it once read-write"
            )
        try:
            con.execute("begin")
            con.execute(
                "create table if not exists schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, why TEXT NOT NULL,"
                " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
            )
            for m in pending:
                con.execute(m.sql)
                con.execute(
                    "insert into schema_migrations (version, name, why) values (?, ?, ?)",
                    [m.version, m.name, m.why],
                )
            con.execute("commit")
        except duckdb.Error as e:
            con.execute("rollback")
            raise StoreError(f"migrating store {self.path} failed: {e}") from e

    @property
    def schema_version(self) -> int:
        row = self.cursor().execute("select max(version) from schema_migrations").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        with self._lock:
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()
            self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- cursors and transactions -------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (DuckDB connections are not shared between threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            with self._lock:
                cur = self._con.cursor()
                self._cursors.append(cur)
            self._local.cursor = cur
        return cur

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Run a block of writes atomically on this thread's cursor."""
        cur = self.cursor()
        if getattr(self._local, "in_tx", False):
            yield cur
            return
        cur.execute("begin")
        self._local.in_tx = True
        try:
            yield cur
        except BaseException:
            cur.execute("rollback")
            raise
        else:
            cur.execute("commit")
        finally:
            self._local.in_tx = False

    # -- writes -------------------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        """Run one engine statement (trusted SQL) and return its rows."""
        try:
            return self.cursor().execute(sql, [_cell(p) for p in params or []]).fetchall()
        except duckdb.Error as e:
            raise StoreError(f"store statement failed: {e}") from e

    def allocate_ids(self, table: str, n: int) -> list[int]:
        """Draw ``n`` ids from ``table``'s sequence so related rows can be written together."""
        if n <= 0:
            return []
        rows = self.cursor().execute(f"select nextval('seq_{table}') from range(?)", [n]).fetchall()
        return [int(r[0]) for r in rows]

    def insert(self, table: str, rows: Sequence[Mapping[str, object]]) -> int:
        """Insert many rows (dicts with the same keys) in one transaction; returns the count."""
        if not rows:
            return 0
        cols = list(rows[0].keys())
        for r in rows:
            if list(r.keys()) != cols:
                raise StoreError(f"insert into {table}: rows have different columns")
        placeholder = "(" + ", ".join("?" for _ in cols) + ")"
        col_sql = ", ".join(cols)
        try:
            with self.transaction() as cur:
                for start in range(0, len(rows), _INSERT_CHUNK):
                    chunk = rows[start : start + _INSERT_CHUNK]
                    sql = f"insert into {table} ({col_sql}) values " + ", ".join(
                        placeholder for _ in chunk
                    )
                    params = [_cell(r[c]) for r in chunk for c in cols]
                    cur.execute(sql, params)
        except duckdb.Error as e:
            raise StoreError(f"insert into {table} failed: {e}") from e
        return len(rows)

    # -- the read-only path ---------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[object] | None = None, limit: int | None = None) -> QueryResult:
        """Run user SQL that may only read. Raises StoreError for anything else or a SQL error."""
        check_read_only(sql)
        cur = self.cursor()
        try:
            cur.execute("begin")
            try:
                rel = cur.execute(sql, list(params or []))
                columns = [d[0] for d in rel.description or []]
                rows = rel.fetchmany(limit) if limit is not None else rel.fetchall()
            finally:
                cur.execute("rollback")
        except duckdb.Error as e:
            raise StoreError(f"query failed: {str(e).splitlines()[0]}") from e
        return QueryResult(columns, rows)


def check_read_only(sql: str) -> None:
    """Raise StoreError unless every statement in ``sql`` only reads."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise StoreError(f"query failed: {str(e).splitlines()[0]}") from e
    if not statements:
        raise StoreError("empty query")
    if len(statements) > 1:
        raise StoreError("one statement at a time, please")
    kind = statements[0].type
    if kind not in _READ_ONLY_TYPES:
        raise StoreError(
            f"refused: the store is read-only here and this is a {kind.name} statement "
            "(only SELECT, WITH ... SELECT, EXPLAIN, SHOW, DESCRIBE, SUMMARIZE are allowed)"
        )
