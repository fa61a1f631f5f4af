"""Regenerate the README's screenshots from a real run on the default model.

    python -m console.screenshots [--home DIR] [--out console/screenshots]

Starts a run of the default recipe, saves the swarm screen while agents debate, stops the run
at a safe point, then saves the task inspector showing one debate, the curves of the run before
it in the data dir (so use a data dir that holds a trained run: ``swarm run --rounds 2`` first),
and the SQL screen with its example query run.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from console.app import SwarmApp
from textual.widgets import DataTable


async def shoot(home: str | None, out: Path, recipe: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    app = SwarmApp(recipe=recipe, home=home, rounds=1)
    async with app.run_test(size=(132, 40)) as pilot:
        await pilot.press("s")
        while app.phase != "debate":
            await pilot.pause(0.5)
        await pilot.pause(6)
        app.save_screenshot(str(out / "swarm.svg"))
        await pilot.press("x")
        for w in list(app.workers):
            if w.group == "run":
                await w.wait()
        await pilot.press("i")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#tasks", DataTable)
        while table.get_row_at(table.cursor_row)[6] or table.get_row_at(table.cursor_row)[7] in ("", "None"):
            await pilot.press("down")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.save_screenshot(str(out / "inspector.svg"))
        await pilot.press("escape", "g", "left_square_bracket")  # the run before this one: trained
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.save_screenshot(str(out / "curves.svg"))
        await pilot.press("escape", "e")
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        app.save_screenshot(str(out / "sql.svg"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home")
    ap.add_argument("--recipe", default="default")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "screenshots"))
    args = ap.parse_args()
    asyncio.run(shoot(args.home, Path(args.out), args.recipe))


if __name__ == "__main__":
    main()
