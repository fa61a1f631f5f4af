"""One agent's pane: its identity and state in the title, its live stream below."""

from __future__ import annotations

from time import monotonic

from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from engine.agents import JUDGE_PREFIX, parse_judgement


def readable(role: str, text: str) -> str:
    """What a pane shows for a stream: a judge's grammar-constrained JSON tail (``false}``; the
    prompt holds its start) as a verdict, a computing judge's number as its result, anything else
    as written.

    >>> readable("judge", "false}"), readable("judge", "tr"), readable("solver", "false}"), readable("judge", "81")
    ('verdict: wrong', 'verdict: …', 'false}', 'result: 81')
    """
    if role != "judge":
        return text
    if text.strip().lstrip("-").isdigit():
        return f"result: {text.strip()}"
    verdict = parse_judgement(JUDGE_PREFIX + text.strip())
    return "verdict: …" if verdict is None else f"verdict: {'right' if verdict else 'wrong'}"


class AgentPane(Widget, can_focus=True):
    """Shows the agent's latest request as it streams, above its last finished ones; each names its
    task (``#17``) and carries a mark once the verifier has spoken: ✓ / ✗ for a solver's answer,
    and for a judge whether its verdict agrees with the verifier."""

    DEFAULT_CSS = """
    AgentPane {
        border: round $primary-darken-2;
        height: 1fr;
        min-height: 5;
        padding: 0 1;
    }
    AgentPane:focus { border: round $accent; }
    AgentPane .stream { height: 1fr; color: $text; }
    AgentPane.idle { border: round $surface-lighten-2; }
    """

    #: Requests kept per pane (older ones drop off; their marks with them).
    KEEP = 16

    state: reactive[str] = reactive("idle")
    adapter: reactive[str] = reactive("base")

    def __init__(self, name: str, role: str) -> None:
        super().__init__(id=f"pane-{name}")
        self.agent = name
        self.role = role
        self.streams: dict[str, str] = {}
        self.task_of: dict[str, int] = {}  # request -> task
        self.marks: dict[str, str] = {}  # request -> ✓ / ✗ once known
        self.tokens = 0
        self.window_start = monotonic()
        self.rate = 0.0

    def compose(self) -> ComposeResult:
        yield Static("", classes="stream", markup=False)

    def on_mount(self) -> None:
        self._retitle()

    def feed(self, chunks: dict[str, str], n_tokens: int, task_of: dict[str, int] | None = None) -> None:
        """Append streamed text (request -> new text; ``task_of``: request -> task) and refresh."""
        for rid, text in chunks.items():
            self.streams[rid] = self.streams.get(rid, "") + text
            if task_of and rid in task_of:
                self.task_of[rid] = task_of[rid]
        for rid in list(self.streams)[:-self.KEEP]:
            del self.streams[rid]
            self.task_of.pop(rid, None)
            self.marks.pop(rid, None)
        self.tokens += n_tokens
        now = monotonic()
        if self.state == "idle":  # a new burst: measure from its first tokens, not from the last one
            self.window_start, self.tokens = now, n_tokens
        elapsed = now - self.window_start
        if elapsed >= 0.25:
            self.rate = self.tokens / elapsed
            if elapsed >= 2.0:  # a sliding window of about two seconds
                self.tokens, self.window_start = 0, now
        self.state = "generating"
        self._retitle()  # the rate changes while the state stays "generating"
        self._show()

    def mark(self, task_id: int, mark: str) -> None:
        """Mark this agent's oldest unmarked request on ``task_id`` (answers are verified in the order
        they were asked)."""
        for rid, task in self.task_of.items():
            if task == task_id and rid not in self.marks and rid in self.streams:
                self.marks[rid] = mark
                self._show()
                return

    def _label(self, rid: str) -> str:
        task = self.task_of.get(rid)
        return " ".join(x for x in (f"#{task}" if task is not None else "", self.marks.get(rid, "")) if x)

    def _show(self) -> None:
        if not self.streams:
            return
        rids = list(self.streams)
        lines = []
        for rid in rids[-4:-1]:
            text = readable(self.role, self.streams[rid]).strip()
            first = text.splitlines()[0][:200] if text else ""
            lines.append(f"• {self._label(rid)} {first}".replace("•  ", "• "))
        latest = rids[-1]
        label = self._label(latest)
        body = readable(self.role, self.streams[latest])[-600:]
        self.query_one(".stream", Static).update("\n".join(lines + ["", f"{label} ▸ {body}" if label else body]))

    def watch_state(self) -> None:
        self.set_class(self.state == "idle", "idle")
        self._retitle()

    def watch_adapter(self) -> None:
        self._retitle()

    def _retitle(self) -> None:
        self.border_title = f"{self.agent} · {self.role}"
        self.border_subtitle = f"{self.adapter} · {self.state} · {self.rate:.0f} tok/s"

    def settle(self) -> None:
        self.state = "idle"
        self.rate = 0.0
        self._retitle()
