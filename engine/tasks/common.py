"""The shapes every task domain shares: a task, a verdict and the domain interface."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Task:
    """A checkable task. ``reference`` is the expected answer; ``payload`` holds domain data."""

    domain: str
    prompt: str
    reference: str
    difficulty: int
    fingerprint: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """Ground truth for one answer. ``status``: ok, wrong, unparsable, or a sandbox status."""

    correct: bool
    status: str
    answer: str | None = None
    detail: str = ""


class Domain(Protocol):
    name: str

    def generate(self, rng: random.Random, difficulty: int, n: int) -> list[Task]: ...

    def verify(self, task: Task, text: str) -> Verdict: ...

    def parse_proposal(self, text: str, difficulty: int) -> Task | str:
        """A task, or the reason the proposal was rejected."""
        ...
