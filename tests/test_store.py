"""The store: migrations, schema refusal, batched writes from threads, the read-only path."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from engine.errors import StoreError
from engine.store import Store
from engine.store.migrations import LATEST_VERSION, MIGRATIONS

EXPECTED_TABLES = {
    "runs", "rounds", "agents", "tasks", "attempts", "critiques", "verdicts",
    "examples", "training_runs", "adapters", "evals", "schema_migrations",
}


def columns(store: Store, table: str) -> list[str]:
    rows = store.execute(
        "select column_name from information_schema.columns where table_name = ? order by ordinal_position",
        [table],
    )
    return [r[0] for r in rows]


def test_blank_db_migrates_to_expected_columns(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        tables = {r[0] for r in store.execute("select table_name from information_schema.tables")}
        assert EXPECTED_TABLES <= tables
        assert store.schema_version == LATEST_VERSION
        assert columns(store, "attempts") == [
            "id", "run_id", "round", "task_id", "agent", "sample", "turn", "text", "answer",
            "correct", "status", "tokens", "seconds", "truncated", "created_at", "endpoint",
        ]
        for t in ("critiques", "verdicts", "hints"):
            assert "endpoint" in columns(store, t)  # which server (or inprocess) wrote the row
        assert "agreement" in columns(store, "verdicts")
        assert {"held_out", "rejected_reason", "fingerprint"} <= set(columns(store, "tasks"))
        assert {"sha256", "promoted", "parent_id"} <= set(columns(store, "adapters"))
        assert {"ci_low", "ci_high", "accuracy"} <= set(columns(store, "evals"))
        migrations = store.execute("select version, name from schema_migrations order by version")
        assert migrations == [(m.version, m.name) for m in MIGRATIONS]


def test_a_version_1_store_migrates_its_held_out_sets_to_dev(tmp_path: Path) -> None:
    """A store written before pools: its held-out sets were what the gate read, so they become
    dev; imported sets become test; round tasks train. Old evals keep their numbers."""
    p = tmp_path / "old.duckdb"
    con = duckdb.connect(str(p))
    con.execute("create table schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, why TEXT NOT NULL,"
                " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)")
    con.execute(MIGRATIONS[0].sql)
    con.execute("insert into schema_migrations (version, name, why) values (1, 'm001_init', 'x')")
    for i, (run, held, name) in enumerate([(1, True, "held-out-2"), (1, False, None), (None, True, "mini")]):
        con.execute("insert into tasks (id, run_id, source, task_set, domain, prompt, fingerprint, held_out) "
                    "values (?, ?, 'generated', ?, 'arith', 'p', ?, ?)", [i + 1, run, name, f"f{i}", held])
    con.execute("insert into evals (id, run_id, round, adapter_id, eval_set, n, correct, accuracy, ci_low, ci_high) "
                "values (1, 1, 0, NULL, 'held-out-2', 10, 3, 0.3, 0.1, 0.6)")
    con.close()
    with Store.open(p) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.execute("select id, pool from tasks order by id") == [(1, "dev"), (2, "train"), (3, "test")]
        assert store.execute("select pool, accuracy from evals") == [("dev", 0.3)]
        assert {"pool", "behaviour"} <= set(columns(store, "tasks"))
        assert "gate" in columns(store, "adapters")
        assert columns(store, "eval_answers") == ["eval_id", "task_id", "correct", "text"]


def test_reopen_is_idempotent(tmp_path: Path) -> None:
    p = tmp_path / "s.duckdb"
    Store.open(p).close()
    with Store.open(p) as store:
        assert store.execute("select count(*) from schema_migrations")[0][0] == len(MIGRATIONS)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "s.duckdb"
    Store.open(p).close()
    con = duckdb.connect(str(p))
    con.execute("insert into schema_migrations (version, name, why) values (999, 'm999_future', 'x')")
    con.close()
    with pytest.raises(StoreError, match="schema version 999, newer"):
        Store.open(p)


def test_not_a_database(tmp_path: Path) -> None:
    p = tmp_path / "s.duckdb"
    p.write_text("hello, I am not a database")
    with pytest.raises(StoreError, match=str(p.name)):
        Store.open(p)


def test_batched_insert_and_ids(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        ids = store.allocate_ids("attempts", 1200)
        assert len(set(ids)) == 1200
        rows = [
            dict(id=i, run_id=1, round=0, task_id=1, agent="a", sample=0, turn=0, text=f"t{i}", tokens=3, seconds=0.1)
            for i in ids
        ]
        assert store.insert("attempts", rows) == 1200
        assert store.execute("select count(*), count(distinct id) from attempts")[0] == (1200, 1200)


def test_failed_batch_writes_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        good = dict(id=1, run_id=1, round=0, task_id=1, agent="a", sample=0, turn=0, text="x", tokens=1, seconds=0.0)
        with pytest.raises(StoreError):
            store.insert("attempts", [good, {**good}])  # duplicate primary key in the same batch
        assert store.execute("select count(*) from attempts")[0][0] == 0


def test_writes_from_two_threads(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        errors: list[BaseException] = []

        def writer(agent: str) -> None:
            try:
                for _ in range(20):
                    ids = store.allocate_ids("attempts", 25)
                    store.insert("attempts", [
                        dict(id=i, run_id=1, round=0, task_id=1, agent=agent, sample=0, turn=0, text="x", tokens=1, seconds=0.0)
                        for i in ids
                    ])
            except BaseException as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        counts = dict(store.execute("select agent, count(*) from attempts group by agent"))
        assert counts == {"a": 500, "b": 500}


@pytest.mark.parametrize(
    "sql",
    [
        "insert into runs (recipe_name, recipe_toml, model_path, seed, rounds_planned, status) values ('x','','',0,1,'r')",
        "delete from attempts",
        "update runs set status = 'x'",
        "drop table runs",
        "create table t (a int)",
        "copy runs to '/tmp/x.csv'",
        "attach 'other.duckdb'",
        "select 1; delete from runs",
        "pragma enable_profiling",
    ],
)
def test_query_refuses_writes(tmp_path: Path, sql: str) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        with pytest.raises(StoreError, match="refused|one statement"):
            store.query(sql)
        assert "t" not in {r[0] for r in store.execute("select table_name from information_schema.tables")}


def test_query_reads(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.duckdb") as store:
        res = store.query("with x as (select 41 + 1 as answer) select answer from x")
        assert res.columns == ["answer"] and res.rows == [(42,)]
        assert store.query("describe runs").rows
        with pytest.raises(StoreError, match="query failed"):
            store.query("select * from no_such_table")


def test_locked_by_another_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    p = tmp_path / "s.duckdb"
    Store.open(p).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,sys; c=duckdb.connect({str(p)!r}); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match="in use by another process"):
            Store.open(p)
    finally:
        holder.communicate("")
