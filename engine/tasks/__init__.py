"""Task domains, one file each, looked up by the name a recipe uses.

A domain provides a seeded ``generate(rng, difficulty, n)`` of checkable tasks, a
``verify(task, text) -> Verdict`` that gives ground truth for a free-text answer, and a
``parse_proposal(text, difficulty)`` that turns a proposer's text into a candidate task.
"""

from __future__ import annotations

from engine.tasks.arith import ARITH
from engine.tasks.common import Domain, Task, Verdict
from engine.tasks.python import PYTHON

DOMAINS: dict[str, Domain] = {ARITH.name: ARITH, PYTHON.name: PYTHON}


def get_domain(name: str) -> Domain:
    try:
        return DOMAINS[name]
    except KeyError:
        raise KeyError(f"unknown task domain {name!r} (known: {', '.join(sorted(DOMAINS))})") from None


def task_skills(task: Task) -> list[str]:
    """The skill tags of a task of any domain; none for tasks outside the recipe domains (facts)."""
    domain = DOMAINS.get(task.domain)
    try:
        return domain.skills(task) if domain is not None else []
    except (KeyError, ValueError, SyntaxError):  # a task from an older store without what skills read
        return []


__all__ = ["DOMAINS", "Domain", "Task", "Verdict", "get_domain", "task_skills"]
