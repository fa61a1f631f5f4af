"""The recipe picker: bundled recipes with their validation result; enter opens one."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.errors import RecipeError
from engine.recipes import bundled_recipes, load_recipe
from console.screens.dialogs import MODAL_CSS


class RecipePicker(ModalScreen[Path | None]):
    DEFAULT_CSS = MODAL_CSS + "#recipes { height: auto; max-height: 16; } #why { color: $error; }"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self) -> None:
        super().__init__()
        self.paths = bundled_recipes()
        self.errors: dict[int, str] = {}

    def compose(self) -> ComposeResult:
        options = []
        for i, p in enumerate(self.paths):
            try:
                rec, _, _ = load_recipe(str(p))
                options.append(Option(f"{p.stem:<10} {rec.description}", id=str(i)))
            except RecipeError as e:
                self.errors[i] = str(e)
                options.append(Option(f"{p.stem:<10} INVALID", id=str(i)))
        with Vertical(id="dialog"):
            yield Static("[b]Pick a recipe[/b]  (enter opens, escape cancels)")
            yield OptionList(*options, id="recipes")
            yield Static("", id="why")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.query_one("#why", Static).update(self.errors.get(event.option_index, ""))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_index not in self.errors:
            self.dismiss(self.paths[event.option_index])
