"""Checking code in the sandbox so that only code that really passes is called correct.

The checker (``harness_main.py``, run as the sandbox's ``main.py``) calls the untrusted code in
a child process it cannot be reached from, and prints its results with a token that this
process draws for every run and writes to the checker's stdin, which the child closed before
anything of the candidate ran. A result counts only when that token comes back: an early exit,
``os._exit``, killing the checker, stopping it, or printing a look-alike line all give no
result, and the run is recorded with the sandbox's status (or ``error``).

>>> check_candidate("def f(x):\\n    return x + 1", "f", "def check(c):\\n    assert c(1) == 2\\n").status
'ok'
>>> check_candidate("import sys\\nsys.exit(0)", "f", "def check(c):\\n    assert c(1) == 2\\n").status
'error'
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from engine.sandbox import Limits, Result, run_python

HARNESS = Path(__file__).with_name("harness_main.py")
LIMITS = Limits(wall_seconds=10, cpu_seconds=5)


@dataclass(frozen=True)
class Checked:
    """What the checker found: ``ok``, ``failed`` (a test failed), ``error``, ``timeout``,
    ``memory``, ``killed`` or, for references, ``nondeterministic``."""

    status: str
    detail: str = ""
    outputs: list[str] | None = None


def _run(mode: str, jobs: list[dict[str, object]], stdin_lines: list[str], limits: Limits,
         budget: float) -> tuple[list[dict[str, object]] | None, Result]:
    token = secrets.token_hex(16)
    spec = json.dumps({"mode": mode, "budget": budget, "jobs": jobs})
    stdin = "".join(line + "\n" for line in [*stdin_lines, token])
    res = run_python(HARNESS.read_text(), limits=limits, files={"jobs.json": spec}, stdin=stdin)
    for line in reversed(res.stdout.splitlines()):
        if token in line:
            try:
                data = json.loads(line)
            except ValueError:
                break
            if data.get("token") == token and isinstance(data.get("results"), list):
                return data["results"], res
            break
    return None, res


def _unfinished(res: Result) -> Checked:
    """No result with the token: the checker was cut short; say how."""
    if res.status in ("timeout", "memory", "killed"):
        return Checked(res.status, res.detail)
    return Checked("error", f"the checker did not finish ({res.status}{': ' + res.detail if res.detail else ''})")


def check_candidate(candidate: str, entry_point: str, test: str, prompt: str = "", limits: Limits = LIMITS) -> Checked:
    """Run ``test``'s ``check(candidate)`` against the function ``entry_point`` of ``candidate``.

    ``prompt`` is the task's own code (HumanEval prompts define helpers some tests call); it
    runs in the checker, not with the candidate.
    """
    budget = max(1.0, limits.wall_seconds - 1.5)
    results, res = _run("check", [{"candidate": candidate, "entry": entry_point}],
                        [json.dumps({"prompt": prompt, "test": test})], limits, budget)
    if results is None:
        return _unfinished(res)
    r = results[0]
    return Checked(str(r["status"]), str(r.get("detail", "")))


def outputs_many(jobs: list[tuple[str, str, list[str]]], limits: Limits = LIMITS) -> list[Checked]:
    """For each (reference source, entry point, argument tuples as reprs): the reprs of its
    results, from two fresh processes that must agree. One sandbox run for all of them."""
    if not jobs:
        return []
    budget = max(1.0, limits.wall_seconds - 1.5)
    # Many jobs share one run (the generator's own references: quick); one slow job ends it.
    batch_limits = dataclasses.replace(limits, wall_seconds=limits.wall_seconds + 0.5 * (len(jobs) - 1))
    results, res = _run("outputs", [{"candidate": c, "entry": e, "inputs": i} for c, e, i in jobs], [],
                        batch_limits, budget)
    if results is None:
        fail = _unfinished(res)
        return [fail] * len(jobs)
    return [Checked(str(r["status"]), str(r.get("detail", "")), list(r["outputs"]) if r.get("outputs") is not None else None)
            for r in results]
