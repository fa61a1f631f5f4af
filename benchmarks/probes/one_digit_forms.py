"""Offline: how one adapter answers all 100 one-digit sums, greedily, in the forms a step check can
ask them: inline (the reply started ``4+5=``, round.step_check = "inline"), as a task (``What is
4 + 5?``, its final number) and inline spaced (``4 + 5 = ``, round.step_spaced); the wrong ones
listed per form. A false belief two forms share is one the step critic's agreement rule cannot catch.

Run 2026-12-07 on seed 7's run of the default on the Intel host, adapter 5: inline 96/100 (4+4, 4+5,
5+4, 2+7 answered 10), task 97/100 (the first three), spaced 90/100 (4+5 and 5+4 right, 4+4 answered 5;
none of its slips the inline form's value).

Usage: one_digit_forms.py HOME ADAPTER (0: the base model)"""
import re
import sys

from benchmarks.probes.common import open_copy
from engine.agents import fill, request


def main(src: str, aid: int) -> dict[str, list[str]]:
    home, eng, run_id, rec, dom = open_copy(src)
    rt = eng.runtime_for(rec, run_id)
    if aid:
        rt.set_adapter(eng.store.execute("select path from adapters where id = ?", [aid])[0][0]).result()
    solver = rec.agents_with("solver")[0].model_copy(update={"temperature": 0.0})
    pairs = [(str(a), str(b)) for a in range(10) for b in range(10)]
    forms = {"inline": lambda a, b: dom.step_prefix(a, "+", b), "task": lambda a, b: "",
             "inline spaced": lambda a, b: dom.step_prefix(a, "+", b, spaced=True)}
    wrong: dict[str, list[str]] = {}
    for name, prefix in forms.items():
        reqs = [request(solver, fill(rec.prompts.solve, {"task": dom.step_task(a, "+", b).prompt}), 0, greedy=True,
                        prefix=prefix(a, b)) for a, b in pairs]
        wrong[name] = []
        for (a, b), c in zip(pairs, rt.submit_many(reqs)):
            text = c.result().text
            if name == "task":
                got = dom.verify(dom.step_task(a, "+", b), text).answer
            else:
                m = re.match(r"\s*(-?\d+)", text)
                got = m.group(1) if m else None
            if got != str(int(a) + int(b)):
                wrong[name].append(f"{a}+{b}->{got}")
        print(f"{name}: {100 - len(wrong[name])}/100 right; wrong: {' '.join(wrong[name])}", flush=True)
    eng.close()
    return wrong


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
