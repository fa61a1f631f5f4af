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
    prompt holds its start) as a verdict, anything else as written.

    >>> readable("judge", "false}"), readable("judge", "tr"), readable("solver", "false}")
    ('verdict: wrong', 'verdict: …', 'false}')
    """
    if role != "judge":
        return text
    verdict = parse_judgement(JUDGE_PREFIX + text.strip())
    return "verdict: …" if verdict is None else f"verdict: {'right' if verdict else 'wrong'}"


class AgentPane(Widget, can_focus=True):
    """Shows the agent's latest request as it streams and its last finished answers."""

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

    state: reactive[str] = reactive("idle")
    adapter: reactive[str] = reactive("base")

    def __init__(self, name: str, role: str) -> None:
        super().__init__(id=f"pane-{name}")
        self.agent = name
        self.role = role
        self.streams: dict[str, str] = {}
        self.tokens = 0
        self.window_start = monotonic()
        self.rate = 0.0
        self.history: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="stream", markup=False)

    def on_mount(self) -> None:
        self._retitle()

    def feed(self, chunks: dict[str, str], n_tokens: int) -> None:
        """Append streamed text (request -> new text) and refresh."""
        for rid, text in chunks.items():
            self.streams[rid] = self.streams.get(rid, "") + text
        if len(self.streams) > 16:
            for rid in list(self.streams)[:-16]:
                done = self.streams.pop(rid).strip()
                if done:
                    self.history.append(done)
        self.history = self.history[-6:]
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
        latest = readable(self.role, list(self.streams.values())[-1]) if self.streams else ""
        lines = [f"• {readable(self.role, h).splitlines()[0][:200]}" for h in self.history[-3:]]
        body = "\n".join(lines + ["", latest[-600:]])
        self.query_one(".stream", Static).update(body)

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
