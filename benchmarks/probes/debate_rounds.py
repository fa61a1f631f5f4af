"""Offline: the debate protocol (engine.protocol, as ``swarm bench improve`` plays it on the test
sets) with the adapter that was in use after each of some rounds of a finished run, so that issue
12's per-round curve of a test-only benchmark run can be read without playing the run again.

HOME needs only the run's store and its adapters (``runs/...``, as the run wrote them: ``swarm
bench improve --keep DIR`` keeps each seed's in ``DIR/seed-S``; ``open_copy`` finds adapters
recorded under another home). One
shared adapter is assumed (train.adapters = "shared"): every role runs under the one in use.
ROUNDS: comma-separated 0-based rounds (``1,3,5,7``: after the 2nd, 4th, 6th and 8th), ``base``
for the base model. First answers recorded with the adapter's test scores are reused.

SETTINGS (optional): the debate played with some of the run recipe's settings changed, each
``SECTION.KEY=VALUE`` (VALUE a TOML value), comma-separated: ``round.step_spaced=true``.

Usage: debate_rounds.py HOME ROUNDS [NAME [SETTINGS]]"""
import sys
import time
import tomllib
from typing import Any

from benchmarks.common import shared_cache, write_results
from benchmarks.probes.common import open_copy
from engine.evaluate import recorded_answers
from engine.pools import pool_tasks, set_name
from engine.protocol import DebateScore, debate_score

LEVELS = (1, 2, 3, 9)


def in_use_after(q: Any, run_id: int, rnd: int) -> int | None:
    """The shared adapter in use once round ``rnd``'s gate had decided: the latest kept by then."""
    row = q("select max(id) from adapters where run_id = ? and round <= ? and promoted "
            "and coalesce(role, 'solver') = 'solver'", [run_id, rnd])
    return row[0][0] if row else None


def with_settings(rec: Any, settings: str) -> Any:
    """``rec`` with ``SECTION.KEY=VALUE,...`` set (VALUE a TOML value), validated as a recipe is.

    >>> from engine.recipes import load_recipe
    >>> r = with_settings(load_recipe("default")[0], "round.step_spaced=true,round.debate_turns=2")
    >>> r.round.step_spaced, r.round.debate_turns
    (True, 2)
    """
    data = rec.model_dump()
    for item in filter(None, settings.split(",")):
        key, value = item.split("=", 1)
        section, field = key.split(".")
        data[section][field] = tomllib.loads(f"v = {value}")["v"]
    return type(rec).model_validate(data)


def main(src: str, rounds: list[str], name: str, settings: str = "") -> dict[str, Any]:
    with shared_cache():
        _home, eng, run_id, rec, dom = open_copy(src)
    assert rec.train.adapters == "shared", "one shared adapter assumed"
    rec = with_settings(rec, settings)
    q = eng.store.execute
    rt = eng.runtime_for(rec, run_id)
    seed = eng.run_info(run_id).seed
    out: dict[str, Any] = {"home": src, "run_id": run_id, "seed": seed, "levels": list(LEVELS), "settings": settings,
                           "rounds": {}}
    for r in rounds:
        aid = None if r == "base" else in_use_after(q, run_id, int(r))
        same = [k for k, v in out["rounds"].items() if v["adapter"] == aid]
        if same:  # the adapter in use did not change: the same greedy play
            out["rounds"][r] = {**out["rounds"][same[0]], "same_as": same[0]}
            continue
        path = None if aid is None else q("select path from adapters where id = ?", [aid])[0][0]
        rt.set_adapter(path).result()
        t0 = time.perf_counter()
        per: dict[str, Any] = {}
        total = DebateScore(0, 0, 0, 0, 0)
        for lvl in LEVELS:
            tasks = pool_tasks(eng.store, run_id, "test", lvl)
            if not tasks:
                continue
            sc = debate_score(rt, rec, tasks, recorded_answers(eng.store, run_id, aid, set_name("test", lvl), tasks))
            per[str(lvl)] = sc.summary()
            total = total + sc
        s = total.summary()
        out["rounds"][r] = {"adapter": aid, "all": s, "levels": per, "seconds": time.perf_counter() - t0}
        print(f"round {r} (adapter {aid}): first {s['first']:.1%}, after the debate {s['final']:.1%}, "
              f"gain {100 * s['gain']:+.1f} points, right->wrong {s['right_to_wrong']}, "
              f"judge balanced {s['judge_balanced_accuracy']}", flush=True)
    eng.close()
    write_results(name, out)
    return out


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","), sys.argv[3] if len(sys.argv) > 3 else "probe-debate-rounds",
         sys.argv[4] if len(sys.argv) > 4 else "")
