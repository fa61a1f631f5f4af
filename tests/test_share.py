"""Read-only queries from other processes while one process holds the store (engine.store.share)."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from engine import events as ev
from engine.api import Engine
from engine.errors import StoreError
from engine.paths import store_path
from engine.store.share import RemoteStore, socket_path

SWARM = [sys.executable, "-m", "console.cli"]
ROOT = Path(__file__).resolve().parent.parent


def swarm(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SWARM, "--home", str(home), *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_swarm_sql_answers_while_a_round_holds_the_store(tiny_recipe: Path, swarm_home: Path) -> None:
    eng = Engine.open()
    sock = socket_path(store_path(swarm_home))
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600  # owner only
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    seen: dict[str, subprocess.CompletedProcess[str]] = {}

    def during_debate(e: ev.Event) -> None:
        # Mid-round, on the engine's own thread: another process asks while this one holds the file.
        if isinstance(e, ev.PhaseStarted) and e.phase == "debate" and not seen:
            seen["count"] = swarm(swarm_home, "sql", "--format", "csv",
                                  "select count(*) as n, max(created_at) as t from tasks where run_id = "
                                  f"{run_id} and round = 0")
            seen["status"] = swarm(swarm_home, "sql", "--format", "csv",
                                   f"select status from runs where id = {run_id}")
            seen["write"] = swarm(swarm_home, "sql", f"delete from tasks where run_id = {run_id}")

    eng.subscribe(during_debate)
    assert eng.play(run_id) == "finished"
    n_tasks = eng.store.execute("select count(*) from tasks where run_id = ? and round = 0", [run_id])[0][0]
    eng.close()

    assert seen["count"].returncode == 0, seen["count"].stderr
    lines = seen["count"].stdout.strip().splitlines()
    assert lines[0] == "n,t"
    n, stamp = lines[1].split(",", 1)
    assert int(n) == n_tasks > 0  # the round's tasks were written before the debate began
    dt.datetime.fromisoformat(stamp)  # a timestamp came through as one
    assert seen["status"].stdout.strip().splitlines()[1] == "running"
    assert seen["write"].returncode == 1 and "refused" in seen["write"].stderr
    assert not sock.exists()  # closed with the engine
    # Nothing held it back: the store is whole and the delete did nothing.
    eng = Engine.open()
    assert eng.store.execute("select count(*) from tasks where run_id = ? and round = 0", [run_id])[0][0] == n_tasks
    eng.close()


HOLDER = """
import sys, time
from engine.api import Engine
eng = Engine.open(sys.argv[1])
run_id = eng.create_run(sys.argv[2], rounds=1, train=False)
eng.store.execute("update runs set status = 'running' where id = ?", [run_id])
print(run_id, flush=True)
sys.stdin.readline()  # hold the store until told
eng.close()
"""


@pytest.fixture
def held_store(tiny_recipe: Path, swarm_home: Path):  # type: ignore[no-untyped-def]
    """Another process holding the store, with one run marked running; yields (process, run id)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(swarm_home), str(tiny_recipe)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip().isdigit(), "the holder did not start"
        yield proc, int(line)
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=60)


def test_engine_opens_read_only_onto_a_held_store(held_store: tuple[subprocess.Popen[str], int]) -> None:
    proc, run_id = held_store
    with pytest.raises(StoreError, match="in use by another process"):
        Engine.open()  # a writer is refused as before
    eng = Engine.open(read_only_ok=True)
    assert eng.read_only
    assert eng.holder == {"pid": proc.pid, "store": str(eng.store.path), "schema_version": eng.store.schema_version,
                          "running": [[run_id, "running"]]}
    assert eng.latest_run() == run_id
    assert eng.run_info(run_id).status == "running"
    row = eng.query("select created_at, settings, rounds_planned from runs where id = ?", [run_id]).rows[0]
    assert isinstance(row[0], dt.datetime) and row[2] == 1
    assert eng.curriculum(run_id) == []
    with pytest.raises(StoreError, match=f"read-only: .* held by process {proc.pid}"):
        eng.use_adapter(None, run_id)
    with pytest.raises(StoreError, match="read-only"):
        eng.create_run("default")
    with pytest.raises(StoreError, match="query failed"):
        eng.query("select nope from runs")
    eng.close()


def test_a_stale_socket_is_replaced_and_a_silent_holder_named(swarm_home: Path) -> None:
    path = store_path(swarm_home)
    sock = socket_path(path)
    swarm_home.mkdir(parents=True, exist_ok=True)
    sock.write_text("left by a killed process")
    eng = Engine.open()  # it holds the lock, so the old socket is nobody's
    assert stat.S_ISSOCK(sock.stat().st_mode)
    eng.close()
    with pytest.raises(StoreError, match="does not answer queries"):
        RemoteStore.connect(path)  # no one listens (and no one holds the store)


async def test_second_console_is_a_read_only_view(held_store: tuple[subprocess.Popen[str], int],
                                                  tiny_recipe: Path) -> None:
    from textual.widgets import DataTable, Static

    from console.app import SwarmApp
    from console.screens.inspector import InspectorScreen
    from console.screens.sql import SqlScreen

    proc, run_id = held_store
    app = SwarmApp(recipe=str(tiny_recipe), rounds=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        assert app.engine is not None and app.engine.read_only
        assert f"process {proc.pid}" in app.sub_title and f"run {run_id} running" in app.sub_title
        await pilot.press("s")  # refused with why, nothing starts
        await pilot.pause()
        assert not app.running()
        assert any("read-only" in n.message for n in app._notifications)
        await pilot.press("i")
        await pilot.pause(0.5)
        assert isinstance(app.screen, InspectorScreen)
        for w in list(app.screen.workers):
            await w.wait()
        await pilot.pause()
        assert app.screen.query_one("#tasks", DataTable).row_count == 0  # no round played yet; the query ran
        await pilot.press("escape", "e")
        assert isinstance(app.screen, SqlScreen)
        app.screen.run_query(f"select id, status from runs where id = {run_id}")
        for w in list(app.screen.workers):
            await w.wait()
        await pilot.pause()
        assert app.screen.query_one("#sql-results", DataTable).row_count == 1
        assert "1 row" in str(app.screen.query_one("#sql-status", Static).render())
    assert os.path.exists(socket_path(store_path(Path(os.environ["SWARM_HOME"]))))  # the holder still serves


def test_doctor_says_who_holds_the_store(held_store: tuple[subprocess.Popen[str], int]) -> None:
    from engine.doctor import check_store

    proc, run_id = held_store
    store = [c for c in check_store() if c.name == "store"][0]
    assert store.ok, store.detail
    assert f"held by process {proc.pid} (run {run_id} running)" in store.detail


def test_a_long_data_dir_shares_through_a_private_tmp_dir(tmp_path: Path) -> None:
    home = tmp_path / ("d" * 90)
    eng = Engine.open(home)
    sock = socket_path(store_path(home))
    assert str(sock).startswith("/tmp/swarm-") or not str(sock).startswith(str(home))
    assert eng.share_error is None and sock.exists()
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert RemoteStore.connect(store_path(home)).query("select 41 + 1").rows == [(42,)]
    eng.close()
    os.chmod(sock.parent, 0o777)  # someone else could now swap the socket: neither side uses it
    try:
        eng = Engine.open(home)
        assert eng.share_error is not None and "not private" in eng.share_error
        eng.close()
        with pytest.raises(StoreError, match="not private"):
            RemoteStore.connect(store_path(home))
    finally:
        os.chmod(sock.parent, 0o700)
