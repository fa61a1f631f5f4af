"""Offline: the traces of the debate protocol's changed answers on one adapter's test sets, to read
what the step critic found: each answer the critique changed, marked R->W (a right first answer
revised wrong), W->R (a wrong one mended) or same, with the judge's verdicts, its own result and
the debate's pick (engine.protocol.debate_score, as ``swarm bench improve`` plays it).

HOME: a run's data dir (``swarm bench improve --keep DIR`` keeps each seed's); ADAPTER: an adapter
id of its newest run; LEVELS: comma-separated test levels. First answers recorded with the
adapter's test scores are reused. SETTINGS: as ``debate_rounds.py`` takes them.

Run 2026-12-07 on seed 7's run of the default on the Intel host, adapter 5 (round 4's), levels 2,3:
every right answer revised wrong was a check reaching 10 for a sum of 8 or 9 (README, the spaced check).

Usage: debate_flips.py HOME ADAPTER LEVELS [SETTINGS]"""
import sys

from benchmarks.probes.common import open_copy
from benchmarks.probes.debate_rounds import with_settings
from engine.evaluate import recorded_answers
from engine.pools import pool_tasks, set_name
from engine.protocol import debate_score


def main(src: str, aid: int, levels: list[int], settings: str = "") -> None:
    home, eng, run_id, rec, dom = open_copy(src)
    rec = with_settings(rec, settings)
    q = eng.store.execute
    rt = eng.runtime_for(rec, run_id)
    rt.set_adapter(q("select path from adapters where id = ?", [aid])[0][0]).result()
    for lvl in levels:
        tasks = pool_tasks(eng.store, run_id, "test", lvl)
        sc = debate_score(rt, rec, tasks, recorded_answers(eng.store, run_id, aid, set_name("test", lvl), tasks))
        s = sc.summary()
        print(f"== test-{lvl}: {s['first']:.1%} -> {s['final']:.1%}", flush=True)
        for t in tasks:
            tr = sc.traces[t.id]
            if tr.critique is None or tr.revision == tr.first:
                continue
            kind = ("R->W" if tr.first_right and not tr.revision_right else
                    "W->R" if tr.revision_right and not tr.first_right else "same")
            print(f"[{kind}] {t.task.prompt!r} pick={tr.answer} judge on first={tr.judge_first} "
                  f"on revision={tr.judge_revision} judge's result={tr.judge_answer!r}")
            print("   first:   ", tr.first.strip()[:200])
            print("   critique:", tr.critique)
            print("   revision:", tr.revision.strip()[:200])
    eng.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split(",")],
         sys.argv[4] if len(sys.argv) > 4 else "")
