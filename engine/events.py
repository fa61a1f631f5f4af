"""Events the engine emits: plain frozen dataclasses, delivered to subscribers.

The console turns them into Textual messages in one place; the headless CLI renders its
progress from the same stream. Subscribers are called on the engine's threads and must not
block: hand the event to your own queue or loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    run_id: int


@dataclass(frozen=True)
class RunStarted(Event):
    recipe: str
    rounds: int
    resumed: bool = False


@dataclass(frozen=True)
class RoundStarted(Event):
    round: int
    difficulty: int


@dataclass(frozen=True)
class PhaseStarted(Event):
    round: int
    phase: str
    total: int = 0


@dataclass(frozen=True)
class PhaseFinished(Event):
    round: int
    phase: str
    seconds: float


@dataclass(frozen=True)
class PhaseProgress(Event):
    """Requests the phase has finished of those it has sent so far (a phase may send several
    batches, e.g. critiques and then revisions), and the tokens they generated."""

    round: int
    phase: str
    done: int
    total: int
    tokens: int = 0


@dataclass(frozen=True)
class TokenStreamed(Event):
    agent: str
    text: str
    request: str = ""
    task_id: int | None = None  # the task the request works on, where it has one


@dataclass(frozen=True)
class AgentState(Event):
    agent: str
    state: str
    detail: str = ""


@dataclass(frozen=True)
class TaskProposed(Event):
    round: int
    task_id: int
    source: str
    prompt: str
    rejected_reason: str | None = None


@dataclass(frozen=True)
class AnswerGiven(Event):
    round: int
    task_id: int
    agent: str
    turn: int
    text: str
    correct: bool | None = None


@dataclass(frozen=True)
class CritiqueMade(Event):
    round: int
    task_id: int
    agent: str
    text: str


@dataclass(frozen=True)
class VerdictReached(Event):
    round: int
    task_id: int
    judge_correct: bool | None
    verifier_correct: bool
    judge: str = ""


@dataclass(frozen=True)
class Verified(Event):
    round: int
    task_id: int
    attempt_id: int
    correct: bool
    status: str


@dataclass(frozen=True)
class RoundFinished(Event):
    round: int
    stats: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelNotice(Event):
    """Something the model runtime is doing or decided before the run can go on: converting the
    weights, measuring weight types, which weights it serves and why."""

    text: str


@dataclass(frozen=True)
class TrainingProgress(Event):
    round: int
    step: int
    steps: int
    loss: float
    tokens_per_second: float


@dataclass(frozen=True)
class AdapterExported(Event):
    round: int
    adapter_id: int
    path: str
    cosine: float


@dataclass(frozen=True)
class EvalScored(Event):
    round: int
    eval_set: str
    adapter_id: int | None
    accuracy: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class AdapterPromoted(Event):
    round: int
    adapter_id: int | None
    promoted: bool
    reason: str


@dataclass(frozen=True)
class RunFinished(Event):
    status: str


@dataclass(frozen=True)
class RunFailed(Event):
    error: str


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan events out to subscribers; one failing subscriber does not stop the others."""

    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subs.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subs:
                    self._subs.remove(fn)

        return unsubscribe

    def emit(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs)
        for fn in subs:
            try:
                fn(event)
            except Exception:  # a subscriber's bug must not stop the run; it is logged
                log.exception("event subscriber %r failed on %s", fn, type(event).__name__)
