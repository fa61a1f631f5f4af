"""Offline: which kinds of written step a run's worked answers get wrong, round by round. Each
step an answer writes out (``engine.tasks.arith.claims``: ``8+7+1=15``) is put in a kind by its
numbers' widths (``arith.step_kind``: ``d+d+d`` a column sum with its carry, ``n-d`` a column that
borrows, ``d*d+d`` a product's column with its carry) and checked against its exact value. For
the kinds that add a carry, how many wrong ones wrote the value without it (``8+7+1=15``,
``7*2+1=14``). A pure read of the store (the rounds' first answers, turn 0, every solver and
sample), nothing loaded.

Run 2026-12-07 on three kept runs (README, what the first answers get wrong, step by step), rounds
1-2 against 6-7: a sum's carried column falls from 56-71% wrong to 18-31%; a difference's column
stays wrong in about half on two runs of three (59 -> 33% on the third); a column that pays a
borrow back stays wrong in three quarters, a product's carried column in nine tenths, on all three.

Usage: step_kinds.py HOME [ROUNDS]   (ROUNDS: e.g. 3,7, or 1+2,6+7 to pool rounds; default every round)"""
import sys
from collections import Counter
from pathlib import Path

import duckdb

from engine.tasks.arith import claims, operations, step_kind, step_value


def carry_left_out(computation: str, written: str) -> bool:
    """A step that adds a carry (``a+b+c``, ``a*b+c``) written as if it did not: the value of
    its first operation alone.

    >>> carry_left_out("8+7+1", "15"), carry_left_out("7*2+1", "14"), carry_left_out("8+7+1", "17")
    (True, True, False)
    """
    p = operations(computation)
    return len(p) == 5 and p[3] == "+" and str(step_value("".join(p[:3]))) == written


def main(home: str, groups: list[list[int]] | None = None) -> None:
    con = duckdb.connect(str(Path(home) / "swarm.duckdb"), read_only=True)
    run_id = con.execute("select max(id) from runs").fetchone()[0]  # type: ignore[index]
    rows = con.execute("select round, text from attempts where run_id = ? and turn = 0 and text is not null "
                       "order by round, id", [run_id]).fetchall()
    by_round: dict[int, list[str]] = {}
    for rnd, text in rows:
        by_round.setdefault(rnd, []).append(text)
    kinds = ("d+d", "d+d+d", "d-d", "n-d", "d-d-d", "d*d", "d*d+d")
    print("round  " + "  ".join(f"{k:>14}" for k in kinds) + "   carry left out")
    for group in groups if groups is not None else [[r] for r in sorted(by_round)]:
        seen: Counter[str] = Counter()
        wrong: Counter[str] = Counter()
        dropped = carried_wrong = 0
        for text in (t for rnd in group for t in by_round.get(rnd, [])):
            for _at, comp, written in claims(text):
                k = step_kind(comp)
                seen[k] += 1
                if step_value(comp) != int(written):
                    wrong[k] += 1
                    if k in ("d+d+d", "d*d+d"):
                        carried_wrong += 1
                        dropped += carry_left_out(comp, written)
        cells = [f"{wrong[k]:>4}/{seen[k]:<4} {100 * wrong[k] / seen[k]:>3.0f}%" if seen[k] else f"{'-':>14}"
                 for k in kinds]
        print(f"{'+'.join(map(str, group)):>5}  " + "  ".join(cells) + f"   {dropped} of {carried_wrong}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [[int(r) for r in g.split("+")] for g in sys.argv[2].split(",")] if len(sys.argv) > 2 else None)
