"""Small modal screens: confirm, error, help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

MODAL_CSS = """
ModalScreen { align: center middle; }
#dialog { width: 72; max-width: 95%; height: auto; max-height: 90%; border: thick $primary; background: $surface; padding: 1 2; }
#dialog Button { margin: 1 1 0 0; }
"""


class Confirm(ModalScreen[bool]):
    DEFAULT_CSS = MODAL_CSS
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, markup=False)
            yield Button("Yes (y)", id="yes", variant="warning")
            yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ResumeOrFresh(ModalScreen[str | None]):
    """After a failed run: resume it ("resume"), start a fresh run ("fresh"), or neither (None)."""

    DEFAULT_CSS = MODAL_CSS
    BINDINGS = [Binding("r", "answer('resume')", "Resume"), Binding("f", "answer('fresh')", "Fresh run"),
                Binding("escape", "answer(None)", "Cancel")]

    def __init__(self, run_id: int, error: str) -> None:
        super().__init__()
        self.run_id, self.error = run_id, error

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"[b]Run {self.run_id} failed[/b]\n")
            yield Static(self.error or "(no error recorded)", markup=False)
            yield Button(f"Resume run {self.run_id} (r)", id="resume", variant="primary")
            yield Button("Start a fresh run (f)", id="fresh")
            yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_answer(self, value: str | None) -> None:
        self.dismiss(value)


class ErrorDialog(ModalScreen[None]):
    DEFAULT_CSS = MODAL_CSS
    BINDINGS = [Binding("escape,enter", "dismiss", "Close")]

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("[b]Error[/b]\n")
            yield Static(self.message, markup=False)
            yield Button("Close", id="close")

    def on_button_pressed(self) -> None:
        self.dismiss()


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = MODAL_CSS
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        width = max(len(k) for k, _ in self.rows)
        text = "\n".join(f"{k.ljust(width)}  {d}" for k, d in self.rows)
        with Vertical(id="dialog"):
            yield Static("[b]Keys[/b]  (every action is also in the command palette, ctrl+p)\n")
            yield Static(text, markup=False)
