"""Snapshot tests of the main screens on fixed data (pytest-textual-snapshot)."""

from __future__ import annotations

from engine.api import Engine
from tests.fixed_data import populate

from console.app import SwarmApp


def test_swarm_screen(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(SwarmApp(recipe="default"), terminal_size=(120, 36))


def test_task_inspector(snap_compare) -> None:  # type: ignore[no-untyped-def]
    eng = Engine.open()
    populate(eng)
    eng.close()

    async def open_inspector(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("i")
        await pilot.app.workers.wait_for_complete()
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(SwarmApp(recipe="default"), terminal_size=(120, 36), run_before=open_inspector)


def test_help(snap_compare) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(SwarmApp(recipe="default"), terminal_size=(100, 30), press=["question_mark"])


def test_training_screen_curriculum_and_skills(snap_compare) -> None:  # type: ignore[no-untyped-def]
    eng = Engine.open()
    populate(eng)
    eng.close()

    async def open_training(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("t")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(SwarmApp(recipe="default"), terminal_size=(140, 48), run_before=open_training)
