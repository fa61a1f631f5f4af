"""The Textual console (placeholder until the console issue lands): shows the recipe and doctor."""

from __future__ import annotations

import os


def run_console(recipe: str | None = None, home: str | os.PathLike[str] | None = None) -> int:
    from textual.app import App, ComposeResult
    from textual.widgets import Footer, Header, Static

    from engine.doctor import run_checks
    from engine.recipes import load_recipe

    rec, path, _ = load_recipe(recipe)
    checks = run_checks(home, model=rec.model.path, deep=False)
    lines = [f"recipe {rec.name} ({path})", ""] + [f"{'ok' if c.ok else '!!'}  {c.name}: {c.detail}" for c in checks]

    class SwarmApp(App[None]):
        TITLE = "swarm"
        BINDINGS = [("q", "quit", "Quit")]

        def compose(self) -> ComposeResult:
            yield Header()
            yield Static("\n".join(lines))
            yield Footer()

    SwarmApp().run()
    return 0
