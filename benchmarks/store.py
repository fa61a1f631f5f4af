"""Store throughput: attempts ingested batched vs. one by one; inspector queries at scale."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import table, versions, write_results
from console.screens.inspector import TASKS_SQL
from engine.store import Store


def _rows(ids: list[int]) -> list[dict[str, Any]]:
    return [dict(id=i, run_id=1, round=0, task_id=i % 1000, agent="solver-a", sample=0, turn=0,
                 text="23 + 58 = 81. " * 4, answer="81", correct=i % 3 == 0, status="ok", tokens=12, seconds=0.1)
            for i in ids]


def run(quick: bool = False) -> dict[str, Any]:
    n_batched = 20_000 if quick else 100_000
    n_single = 500 if quick else 2_000
    n_big = 200_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "bench.duckdb")
        ids = store.allocate_ids("attempts", n_single)
        t0 = time.perf_counter()
        for r in _rows(ids):
            store.insert("attempts", [r])
        single = n_single / (time.perf_counter() - t0)
        ids = store.allocate_ids("attempts", n_batched)
        rows = _rows(ids)
        t0 = time.perf_counter()
        for start in range(0, len(rows), 1000):  # a phase writes its rows in batches like these
            store.insert("attempts", rows[start : start + 1000])
        batched = n_batched / (time.perf_counter() - t0)

        # A store of n_big attempts for the inspector's queries.
        n_tasks = n_big // 100
        cur = store.cursor()
        cur.execute("delete from attempts")
        cur.execute(f"""insert into tasks (id, run_id, round, source, domain, difficulty, prompt, reference, payload,
                        fingerprint, held_out) select i, 1, i // 500, 'generated', 'arith', 2, 'What is ' || i || ' + 1?',
                        (i + 1)::text, '{{}}', 'fp' || i, false from range({n_tasks}) t(i)""")
        cur.execute(f"""insert into attempts (id, run_id, round, task_id, agent, sample, turn, text, answer, correct,
                        status, tokens, seconds) select i, 1, (i // 100) // 500, i // 100, 'solver-' || (i % 2), i % 4,
                        (i % 8) // 4, 'answer ' || i, (i % 97)::text, i % 3 = 0, 'ok', 10, 0.1 from range({n_big}) t(i)""")
        cur.execute(f"""insert into verdicts (id, run_id, round, task_id, attempt_id, judge, judge_correct, judge_text,
                        verifier_correct, verifier_status, agreement, tokens, seconds) select i, 1, 0, i // 100, i, 'judge',
                        i % 2 = 0, '{{}}', i % 3 = 0, 'ok', (i % 2 = 0) = (i % 3 = 0), 2, 0.01
                        from range(0, {n_big}, 4) t(i)""")
        queries = {
            "inspector: latest tasks": TASKS_SQL.format(where="", having=""),
            "inspector: text search": TASKS_SQL.format(where=" and t.prompt ilike '%77 +%'", having=""),
            "inspector: judge disagrees": TASKS_SQL.format(
                where="", having="having count(v.id) filter (where v.agreement = false) > 0"),
            "inspector: one debate": "select * from attempts where task_id = 4242 order by agent, sample, turn",
            "solve rate per round": "select round, avg(correct::int) from attempts group by round order by round",
        }
        latencies = {}
        for name, sql in queries.items():
            store.query(sql)  # warm
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                store.query(sql)
                times.append(time.perf_counter() - t0)
            latencies[name] = min(times)
        store.close()
    rows = [["ingest one by one (rows/s)", single], ["ingest batched (rows/s)", batched]]
    rows += [[f"{k} on {n_big:,} attempts (ms)", v * 1000] for k, v in latencies.items()]
    print(table(["measure", "value"], rows))
    ratios = {"batched_vs_single_ingest": batched / single}
    path = write_results("store", {"quick": quick, "rows_single_per_s": single, "rows_batched_per_s": batched,
                                   "attempts": n_big, "query_seconds": latencies, "ratios": ratios,
                                   "versions": versions("duckdb")})
    print(f"wrote {path}")
    return {"ratios": ratios}


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
