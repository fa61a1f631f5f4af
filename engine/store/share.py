"""Read-only queries from other processes while one process holds the store.

DuckDB lets one process open a file for writing and no one else open it at all, so while a run
plays, ``swarm sql`` or a second console could not read a thing. The process that holds the
store therefore answers read-only queries on a Unix socket beside it (owner-only: the socket is
created inside a private directory and moved into place, mode 0600), and ``RemoteStore`` is the
client: the same ``query``/``execute`` surface as ``Store`` for reads, refusing writes.

One request per connection, one JSON line each way::

    {"op": "query", "sql": "select ...", "params": [...], "limit": 100}
    {"columns": [...], "rows": [[...], ...]}          or   {"error": "..."}
    {"op": "hello"}  ->  {"pid": 123, "store": "...", "schema_version": 4, "running": [[run, status], ...]}

Queries run through ``Store.query``: one statement, SELECT-like only, inside a transaction that
is rolled back, so they see a consistent snapshot while the run keeps writing. Values JSON cannot
carry (timestamps, dates, decimals, UUIDs, bytes, intervals) travel tagged and come back as the
same Python types.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
import os
import socket
import socketserver
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.errors import StoreError
from engine.store.store import QueryResult, Store, check_read_only

#: Unix socket paths are limited to 107 bytes on Linux; longer data dirs use a short path in /tmp.
_MAX_SOCKET_PATH = 100
#: How long a client waits for an answer (a heavy query on a busy 2-core machine can be slow).
TIMEOUT_S = 60.0
_TAG = "$swarm"


def socket_path(store: Path) -> Path:
    """Where the holder of ``store`` listens: beside it, or (long paths) in a per-user /tmp dir.

    >>> socket_path(Path("/d/swarm.duckdb"))
    PosixPath('/d/swarm.duckdb.sock')
    >>> str(socket_path(Path("/" + "x" * 120 + "/swarm.duckdb"))).startswith(tempfile.gettempdir())
    True
    """
    p = store.with_name(store.name + ".sock")
    if len(os.fsencode(str(p))) <= _MAX_SOCKET_PATH:
        return p
    digest = hashlib.sha256(os.fsencode(str(store))).hexdigest()[:20]
    return Path(tempfile.gettempdir()) / f"swarm-{os.getuid()}" / f"{digest}.sock"


def _private_dir(path: Path) -> None:
    """Refuse a socket directory in /tmp that is not this user's alone (someone could swap the socket)."""
    if path.parent.parent != Path(tempfile.gettempdir()):
        return  # beside the store, in the user's own data dir
    st = path.parent.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise StoreError(f"{path.parent} is not private to this user (owner {st.st_uid}, mode "
                         f"{oct(st.st_mode & 0o777)}); remove it, or use a shorter --home path")


# -- values on the wire -------------------------------------------------------------------------

def encode(v: object) -> object:
    """A JSON-able form of a DuckDB value (tagged where JSON has no such type).

    >>> decode(json.loads(json.dumps(encode([dt.datetime(2026, 1, 2, 3, 4, 5), decimal.Decimal("1.50"), b"x"]))))
    [datetime.datetime(2026, 1, 2, 3, 4, 5), Decimal('1.50'), b'x']
    """
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dt.datetime):
        return {_TAG: "datetime", "v": v.isoformat()}
    if isinstance(v, dt.date):
        return {_TAG: "date", "v": v.isoformat()}
    if isinstance(v, dt.time):
        return {_TAG: "time", "v": v.isoformat()}
    if isinstance(v, dt.timedelta):
        return {_TAG: "timedelta", "v": v.total_seconds()}
    if isinstance(v, decimal.Decimal):
        return {_TAG: "decimal", "v": str(v)}
    if isinstance(v, uuid.UUID):
        return {_TAG: "uuid", "v": str(v)}
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {_TAG: "bytes", "v": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, (list, tuple)):
        return [encode(x) for x in v]
    if isinstance(v, dict):
        return {"$map" if k == _TAG else str(k): encode(x) for k, x in v.items()}
    return str(v)


_DECODERS = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda s: dt.timedelta(seconds=s),
    "decimal": decimal.Decimal,
    "uuid": uuid.UUID,
    "bytes": base64.b64decode,
}


def decode(v: object) -> object:
    if isinstance(v, list):
        return [decode(x) for x in v]
    if isinstance(v, dict):
        tag = v.get(_TAG)
        if isinstance(tag, str) and tag in _DECODERS and set(v) == {_TAG, "v"}:
            return _DECODERS[tag](v["v"])
        return {_TAG if k == "$map" else k: decode(x) for k, x in v.items()}
    return v


# -- the server (in the process that holds the store) -----------------------------------------

class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        line = self.rfile.readline(16 * 1024 * 1024)
        try:
            req = json.loads(line)
            answer = self.server.answer(req)
        except (ValueError, TypeError, KeyError) as e:
            answer = {"error": f"bad request: {e}"}
        except StoreError as e:
            answer = {"error": str(e)}
        except Exception as e:  # noqa: BLE001 - a query must never take the run down
            answer = {"error": f"{type(e).__name__}: {e}"}
        try:
            self.wfile.write(json.dumps(answer).encode() + b"\n")
        except OSError:
            pass  # the client went away


class _Server(socketserver.UnixStreamServer):
    # One request at a time on one thread: DuckDB cursors are per thread, and a query is short.
    def __init__(self, path: str, store: Store) -> None:
        self.store = store
        super().__init__(path, _Handler, bind_and_activate=False)

    def answer(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op", "query")
        if op == "hello":
            running = self.store.query("select id, status from runs where status = 'running' order by id")
            return {"pid": os.getpid(), "store": str(self.store.path), "schema_version": self.store.schema_version,
                    "running": [list(r) for r in running.rows]}
        if op != "query":
            raise ValueError(f"unknown op {op!r}")
        limit = req.get("limit")
        res = self.store.query(str(req["sql"]), [decode(p) for p in req.get("params") or []],
                               int(limit) if limit is not None else None)
        return {"columns": res.columns, "rows": [encode(list(r)) for r in res.rows]}


class QueryServer:
    """Serve read-only queries on ``store`` over its socket until ``close``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = socket_path(store.path)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> QueryServer:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _private_dir(self.path)
        if self.path.exists() or self.path.is_symlink():
            # We hold the store's lock, so whoever left this socket no longer holds it.
            self.path.unlink()
        # Bind inside a fresh 0700 directory, narrow the mode, then move into place: the socket is
        # never reachable by another user, not even between bind and chmod.
        private = Path(tempfile.mkdtemp(prefix=".swarm-sock-", dir=self.path.parent))
        try:
            tmp = private / "s"
            server = _Server(str(tmp), self.store)
            try:
                server.server_bind()
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
                server.server_activate()
            except BaseException:
                server.server_close()
                raise
        finally:
            try:
                for leftover in private.iterdir():
                    leftover.unlink()
                private.rmdir()
            except OSError:
                pass
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="swarm-query-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        try:
            self.path.unlink()
        except OSError:
            pass


# -- the client ---------------------------------------------------------------------------------

def _ask(path: Path, req: dict[str, Any], timeout: float = TIMEOUT_S) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(json.dumps(req).encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    answer = json.loads(b"".join(chunks) or b"null")
    if not isinstance(answer, dict):
        raise StoreError(f"the process holding the store closed the connection ({path})")
    if "error" in answer:
        raise StoreError(str(answer["error"]))
    return answer


class RemoteStore:
    """Read-only view of a store that another process holds, through that process's socket."""

    read_only = True

    def __init__(self, store: Path, hello: dict[str, Any]) -> None:
        self.path = store
        self.socket = socket_path(store)
        self.holder_pid = int(hello["pid"])
        self.schema_version = int(hello["schema_version"])

    @classmethod
    def connect(cls, store: Path) -> RemoteStore:
        """Connect to the process holding ``store``. Raises StoreError when none answers."""
        path = socket_path(store)
        try:
            _private_dir(path)
            return cls(store, _ask(path, {"op": "hello"}, timeout=10.0))
        except (OSError, ValueError) as e:
            raise StoreError(f"store {store} is in use by another process that does not answer queries "
                             f"({path}: {e})") from e

    def hello(self) -> dict[str, Any]:
        return _ask(self.socket, {"op": "hello"}, timeout=10.0)

    def query(self, sql: str, params: Sequence[object] | None = None, limit: int | None = None) -> QueryResult:
        check_read_only(sql)
        try:
            answer = _ask(self.socket, {"op": "query", "sql": sql, "params": [encode(p) for p in params or []],
                                        "limit": limit})
        except (OSError, ValueError) as e:
            raise StoreError(f"the process holding {self.path} (pid {self.holder_pid}) stopped answering: {e}") from e
        return QueryResult(list(answer["columns"]), [tuple(r) for r in decode(answer["rows"])])  # type: ignore[union-attr]

    def execute(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        """Engine reads work as on a local store; writes are refused with who holds the store."""
        try:
            check_read_only(sql)
        except StoreError as e:
            raise StoreError(f"read-only: {self.path} is held by process {self.holder_pid} (a run or a console); "
                             "stop it to change anything here") from e
        return self.query(sql, params).rows

    @contextmanager
    def transaction(self) -> Iterator[None]:
        raise StoreError(f"read-only: {self.path} is held by process {self.holder_pid}; nothing can be written here")
        yield  # pragma: no cover

    def insert(self, table: str, rows: object) -> int:
        raise StoreError(f"read-only: {self.path} is held by process {self.holder_pid}; cannot insert into {table}")

    def allocate_ids(self, table: str, n: int) -> list[int]:
        raise StoreError(f"read-only: {self.path} is held by process {self.holder_pid}")

    def cursor(self) -> Any:
        raise StoreError(f"read-only: {self.path} is held by process {self.holder_pid}; no direct cursor")

    def close(self) -> None:
        pass

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_shared(path: Path) -> Store | RemoteStore:
    """Open ``path`` read-write if no one holds it (serving nothing), else a RemoteStore onto its holder."""
    try:
        return Store.open(path)
    except StoreError as e:
        if "in use by another process" not in str(e):
            raise
        return RemoteStore.connect(path)
