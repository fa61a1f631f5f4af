"""Offline: how many of an adapter's recorded test answers the column check reads a misstep in
(``engine.tasks.arith.column_fault``, round.step_columns), right answers and wrong ones apart. A
pure read of the store: no model is loaded. ``show``: print each flagged answer.

Run 2026-12-07 on the Intel host: seed 8's candidate run, adapter 3 (round 2's): 3-digit 28 of 42
wrong answers flagged, 0 of 58 right; mixed 40 of 83 wrong, 1 of 17 right (5*61 answered 305 with a
column 6*6=30). Seed 7's spaced run, adapter 5: 3-digit 16 of 26 wrong, 0 of 74 right; mixed 34 of
86 wrong, 0 of 14 right (README, the column check).

Usage: column_reads.py HOME ADAPTERS [show]"""
import sys
from collections import Counter

from benchmarks.probes.common import open_copy
from engine.evaluate import recorded_answers
from engine.pools import pool_tasks, set_name
from engine.tasks.arith import column_fault


def main(src: str, adapters: list[int], show: bool = False) -> None:
    _home, eng, run_id, _rec, dom = open_copy(src)
    for aid in adapters:
        for lvl in (1, 2, 3, 9):
            tasks = pool_tasks(eng.store, run_id, "test", lvl)
            answers = recorded_answers(eng.store, run_id, aid, set_name("test", lvl), tasks) if tasks else None
            if answers is None:
                continue
            seen: Counter[tuple[str, bool]] = Counter()
            for t, a in zip(tasks, answers):
                right = "right" if dom.verify(t.task, a).correct else "wrong"
                fault = column_fault(a)
                seen[(right, fault is not None)] += 1
                if show and fault is not None:
                    print(f"  [{right}] {t.task.payload['expression']} | {a.strip()[:150]} -> {fault[2]}")
            print(f"adapter {aid}, test-{lvl}: "
                  + ", ".join(f"{k} {seen[(k, True)]} of {seen[(k, True)] + seen[(k, False)]} flagged"
                              for k in ("right", "wrong")), flush=True)
    eng.close()


if __name__ == "__main__":
    main(sys.argv[1], [int(x) for x in sys.argv[2].split(",")], len(sys.argv) > 3 and sys.argv[3] == "show")
