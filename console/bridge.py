"""The one place engine events become Textual messages.

The engine calls subscribers on its own threads. Tokens are not posted one by one: they are
buffered per request and drained by the app on a timer (``drain``), so 4-8 streaming agents
cost a few screen updates per tick instead of hundreds of messages a second. Every other
event is posted as an ``EngineEvent`` message (``post_message`` is thread-safe).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from textual.message import Message

from engine import events as ev


class EngineEvent(Message):
    """An engine event, delivered on the UI thread."""

    def __init__(self, event: ev.Event) -> None:
        super().__init__()
        self.event = event


class TokenBuffer:
    """Thread-safe accumulator of streamed text: agent -> request -> text since last drain."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, str]] = {}
        self._counts: dict[str, int] = {}
        self.tokens = 0
        self.oldest: float | None = None  # monotonic time of the oldest undrained token
        self.waited = 0.0  # how long the oldest token of the last drain waited for the screen
        self.task_of: dict[str, int] = {}  # request -> the task it works on (the latest 4096 requests)

    def add(self, e: ev.TokenStreamed) -> None:
        with self._lock:
            per_agent = self._pending.setdefault(e.agent, {})
            if e.request not in per_agent and e.task_id is not None and e.request not in self.task_of:
                self.task_of[e.request] = e.task_id
                if len(self.task_of) > 4096:
                    del self.task_of[next(iter(self.task_of))]
            per_agent[e.request] = per_agent.get(e.request, "") + e.text
            self._counts[e.agent] = self._counts.get(e.agent, 0) + 1
            self.tokens += 1
            if self.oldest is None:
                self.oldest = time.monotonic()

    def drain(self) -> dict[str, tuple[dict[str, str], int]]:
        """agent -> (request -> new text, tokens) since the last drain."""
        with self._lock:
            out = {a: (chunks, self._counts.get(a, 0)) for a, chunks in self._pending.items()}
            self._pending, self._counts = {}, {}
            self.waited = time.monotonic() - self.oldest if self.oldest is not None else 0.0
            self.oldest = None
        return out


def subscriber(post: Callable[[Message], object], buffer: TokenBuffer) -> Callable[[ev.Event], None]:
    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.TokenStreamed):
            buffer.add(e)
        else:
            post(EngineEvent(e))

    return on_event
