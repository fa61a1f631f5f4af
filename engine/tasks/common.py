"""The shapes every task domain shares: a task, a verdict and the domain interface."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

#: A filter on a draft task's canonical form (its fingerprint), applied before any costly work.
Accept = Callable[[str], bool]


@dataclass(frozen=True)
class Task:
    """A checkable task. ``reference`` is the expected answer; ``payload`` holds domain data.

    ``fingerprint`` is the task's canonical form: two tasks with the same one are the same task
    (arith: the expression up to the order of sums and products; python: the normalised spec).
    ``behaviour``, where a domain has one, is a second such key (python: what the reference
    returns on the task's inputs), so a task restated in other words is still a duplicate.
    """

    domain: str
    prompt: str
    reference: str
    difficulty: int
    fingerprint: str
    payload: dict[str, Any] = field(default_factory=dict)
    behaviour: str | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.fingerprint,) if self.behaviour is None else (self.fingerprint, self.behaviour)


@dataclass(frozen=True)
class Verdict:
    """Ground truth for one answer. ``status``: ok, wrong, unparsable, or a sandbox status."""

    correct: bool
    status: str
    answer: str | None = None
    detail: str = ""


class Domain(Protocol):
    name: str
    #: True when an answer is a value, right exactly when it equals ``Task.reference`` (arith);
    #: then ``verify`` of a task whose reference is replaced compares an answer with that value.
    valued: bool
    #: The answer formats a recipe may train the solver in (``task.answer_format``), ``plain``
    #: (the solver's own words) first.
    formats: tuple[str, ...]
    #: The ways a task can be put to a computing judge (``round.judge_view``), ``asked`` (the task
    #: as the solver sees it) first; arith adds ``swapped`` (its commutative operands swapped).
    views: tuple[str, ...]

    def generate(self, rng: random.Random, difficulty: int, n: int, accept: Accept | None = None) -> list[Task]:
        """Up to ``n`` distinct tasks at ``difficulty`` whose fingerprints ``accept`` allows."""
        ...

    def level_name(self, level: int) -> str:
        """What a difficulty level means, for reports (e.g. "2-digit addition")."""
        ...

    def verify(self, task: Task, text: str) -> Verdict: ...

    def worked(self, task: Task, fmt: str) -> str:
        """The task's verified answer written in ``fmt``, one of ``formats`` other than plain."""
        ...

    def view(self, task: Task, name: str) -> Task:
        """The same task, with the same reference, put as ``name`` (one of ``views``)."""
        ...

    def skills(self, task: Task) -> list[str]:
        """The skill tags a task exercises (arith: ``digits:2``, ``carries:1``; python: ``loop``)."""
        ...

    def describe_skill(self, skill: str) -> str:
        """A skill tag in words, for the proposer's prompt and the console."""
        ...

    def parse_proposal(self, text: str, difficulty: int) -> Task | str:
        """A task, or the reason the proposal was rejected."""
        ...


_STEP_BREAK = re.compile(r"[,;:]\s+")


def steps_of(text: str) -> list[str]:
    """A worked answer's steps: its text split where a comma, semicolon or colon ends a step.

    >>> steps_of("160+48: 0+8=8, 6+4=10, 1+0+1=2, so 208")
    ['160+48', '0+8=8', '6+4=10', '1+0+1=2', 'so 208']
    """
    return [s.strip() for s in _STEP_BREAK.split(text.strip()) if s.strip()]


def first_wrong_step(answer: str, worked: str) -> tuple[str, str] | None:
    """Where a worked ``answer`` first parts from the verified ``worked`` answer: (its step, the
    right one), ``("", right)`` where it stops short; None where it follows every step (the texts
    are compared step by step, spaces ignored).

    >>> first_wrong_step("72+88: 2+8=10, 7+8+1=16, so 160; 160+48: 0+8=8, 6+4=10, 0+4+1=5, so 508",
    ...                  "72+88: 2+8=10, 7+8+1=16, so 160; 160+48: 0+8=8, 6+4=10, 1+0+1=2, so 208")
    ('0+4+1=5', '1+0+1=2')
    >>> first_wrong_step("19+72: 9+2=11", "19+72: 9+2=11, 1+7+1=9, so 91")
    ('', '1+7+1=9')
    >>> first_wrong_step("19+72: 9+2=11, 1+7+1=9, so 91", "19+72: 9+2=11, 1+7+1=9, so 91") is None
    True
    """
    def key(s: str) -> str:
        return re.sub(r"\s+", "", s)

    got, want = steps_of(answer), steps_of(worked)
    for i, right in enumerate(want):
        if i >= len(got):
            return "", right
        if key(got[i]) != key(right):
            return got[i], right
    return None


def step_critique(answer: str, worked: str) -> str | None:
    """What a critic that knows the verified worked answer says of ``answer``: its first wrong
    step and the right one (None where no step is wrong).

    >>> step_critique("19+72: 9+2=11, 1+7+1=8, so 81", "19+72: 9+2=11, 1+7+1=9, so 91")
    '1+7+1=8 is wrong: it should be 1+7+1=9.'
    >>> step_critique("19+72: 9+2=11", "19+72: 9+2=11, 1+7+1=9, so 91")
    'It stops too early: next comes 1+7+1=9.'
    """
    found = first_wrong_step(answer, worked)
    if found is None:
        return None
    wrong, right = found
    return f"{wrong} is wrong: it should be {right}." if wrong else f"It stops too early: next comes {right}."
