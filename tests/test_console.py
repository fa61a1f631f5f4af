"""Pilot tests of the console on the tiny model: screens, bindings, a run, quitting mid-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.app import SwarmApp
from console.screens.dialogs import Confirm, HelpScreen
from console.screens.inspector import InspectorScreen
from console.screens.picker import RecipePicker
from console.screens.sql import EXAMPLE, SqlScreen
from console.screens.swarm import SwarmScreen
from console.screens.training import TrainingScreen
from console.widgets.agent_pane import AgentPane
from textual.widgets import DataTable, Input, OptionList, Static, TextArea, Tree


async def wait_run(app: SwarmApp, pilot) -> None:  # type: ignore[no-untyped-def]
    for w in list(app.workers):
        if w.group == "run":
            await w.wait()
    await pilot.pause()


async def test_swarm_screen_runs_a_round_and_streams(tiny_recipe: Path) -> None:
    app = SwarmApp(recipe=str(tiny_recipe), rounds=1)
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app.screen, SwarmScreen)
        panes = app.screen.query(AgentPane)
        assert [p.agent for p in panes] == ["proposer", "solver-a", "solver-b", "critic", "judge"]
        await pilot.press("s")
        await wait_run(app, pilot)
        await pilot.pause(0.1)
        app._drain_tokens()
        progress = str(app.screen.query_one("#progress", Static).render())
        assert "finished" in progress
        solver = app.screen.query_one("#pane-solver-a", AgentPane)
        assert solver.streams  # tokens reached the pane
        assert set(solver.task_of) == set(solver.streams)  # every stream names its task
        assert solver.marks and set(solver.marks.values()) <= {"✓", "✗"}  # the verifier's word reached it
        judge = app.screen.query_one("#pane-judge", AgentPane)
        assert judge.marks  # agreement with the verifier, per verdict
        assert "solver-a" in str(solver.border_title)
        assert app.engine is not None
        assert app.engine.store.execute("select status from runs")[0][0] == "finished"


async def test_start_after_a_failed_run_offers_resume_or_fresh(tiny_recipe: Path) -> None:
    from console.screens.dialogs import ResumeOrFresh
    from engine.api import Engine

    eng = Engine.open()
    failed = eng.create_run(str(tiny_recipe), rounds=1)
    eng.store.execute("update runs set status = 'failed', error = 'RuntimeError: the disk was full' where id = ?",
                      [failed])
    eng.close()
    app = SwarmApp(recipe=str(tiny_recipe), rounds=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ResumeOrFresh)
        assert "the disk was full" in str(app.screen.query_one("#dialog").query(Static)[1].render())
        await pilot.press("escape")  # neither: nothing starts
        await pilot.pause()
        assert not app.running() and not isinstance(app.screen, ResumeOrFresh)
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("f")  # a fresh run; the failed one is left as it was
        await wait_run(app, pilot)
        assert app.engine is not None
        runs = dict(app.engine.store.execute("select id, status from runs order by id"))
        assert runs == {failed: "failed", failed + 1: "finished"}
        app.engine.store.execute("update runs set status = 'failed' where id = ?", [failed + 1])
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("r")  # resume the failed run: it finishes, no new run
        await wait_run(app, pilot)
        assert dict(app.engine.store.execute("select id, status from runs order by id"))[failed + 1] == "finished"
        assert app.engine.store.execute("select count(*) from runs")[0][0] == 2


async def test_grid_adapts_to_size(tiny_recipe: Path) -> None:
    # five panes: 2 + 2 + a wide one at 80 columns; 3 + 2 wider ones at 160 (no empty cells); one row at 200
    for width, cols, spans in [(80, 2, [1, 1, 1, 1, 2]), (160, 6, [2, 2, 2, 3, 3]), (200, 5, [1] * 5)]:
        app = SwarmApp(recipe=str(tiny_recipe))
        async with app.run_test(size=(width, 24)) as pilot:
            await pilot.pause()
            assert app.screen.query_one("#panes").styles.grid_size_columns == cols
            assert [p.styles.column_span for p in app.screen.query(AgentPane)] == spans


async def test_zoom_and_focus(tiny_recipe: Path) -> None:
    app = SwarmApp(recipe=str(tiny_recipe))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("tab")
        await pilot.press("tab")
        focused = app.focused
        assert isinstance(focused, AgentPane)
        await pilot.press("z")
        visible = [p for p in app.screen.query(AgentPane) if not p.has_class("hidden")]
        assert visible == [focused]
        await pilot.press("z")
        assert all(not p.has_class("hidden") for p in app.screen.query(AgentPane))


async def test_help_inspector_sql_training_screens(tiny_recipe: Path) -> None:
    app = SwarmApp(recipe=str(tiny_recipe), rounds=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_run(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")

        await pilot.press("i")
        assert isinstance(app.screen, InspectorScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#tasks", DataTable)
        assert table.row_count == 6
        while table.get_row_at(table.cursor_row)[6]:  # skip rejected proposals: they have no debate
            await pilot.press("down")
        await pilot.press("enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        debate = str(app.screen.query_one("#debate", Static).render())
        assert "TASK" in debate and "turn 0" in debate and "judge" in debate
        await pilot.press("slash")
        await pilot.press(*"zzz-no-match")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert table.row_count == 0
        await pilot.press("escape")

        await pilot.press("e")
        assert isinstance(app.screen, SqlScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("ctrl+r")  # the example the editor opens on runs as it is
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one("#sql-results", DataTable).row_count == 1  # the one round played
        editor = app.screen.query_one("#sql-input", TextArea)
        editor.load_text("select count(*) as n\nfrom attempts")  # several lines
        await pilot.press("f5")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one("#sql-results", DataTable).row_count == 1
        editor.load_text("delete from attempts")
        await pilot.press("ctrl+r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "refused" in str(app.screen.query_one("#sql-status", Static).render())
        catalog = app.screen.query_one("#sql-catalog", Tree)
        tables = [str(n.label) for n in catalog.root.children]
        assert {"rounds", "attempts", "skill_scores"} <= set(tables)
        editor.load_text("select  from rounds")
        editor.move_cursor((0, 7))
        catalog.focus()
        catalog.move_cursor(catalog.root.children[tables.index("rounds")])
        await pilot.press("space")  # opens the table: its columns
        await pilot.press("down", "enter")  # the first column's name goes in at the cursor
        assert editor.text == "select run_id from rounds"
        await pilot.press("escape")
        await pilot.press("e")  # the history outlives the screen, newest first
        history = app.screen.query_one("#sql-history", OptionList)
        assert history.option_count == 2  # what ran; the refused delete did not
        assert str(history.get_option_at_index(0).prompt) == "select count(*) as n from attempts"
        history.focus()
        history.highlighted = 1
        await pilot.press("enter")  # runs it again
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.query_one("#sql-input", TextArea).text == EXAMPLE
        assert "1 row" in str(app.screen.query_one("#sql-status", Static).render())
        await pilot.press("escape")

        await pilot.press("t")
        assert isinstance(app.screen, TrainingScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        debates = app.screen.query_one("#debates", DataTable)  # the round's own debate, scored afterwards
        assert debates.row_count == 1 and debates.get_row_at(0)[2] == "round 0 (sampled)"
        await pilot.press("escape")
        assert isinstance(app.screen, SwarmScreen)


async def test_quit_mid_run_asks_then_stops_resumably(tiny_recipe: Path) -> None:
    app = SwarmApp(recipe=str(tiny_recipe), rounds=3)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await pilot.pause(0.2)
        await pilot.press("q")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await wait_run(app, pilot)
    assert app.engine is not None


async def test_picker_lists_bundled_recipes() -> None:
    app = SwarmApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RecipePicker)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SwarmScreen)


async def test_train_now_records_a_training_attempt(tiny_recipe: Path) -> None:
    app = SwarmApp(recipe=str(tiny_recipe), rounds=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_run(app, pilot)
        assert app.engine is not None
        before = app.engine.store.execute("select count(*) from training_runs")[0][0]
        await pilot.press("T")
        await wait_run(app, pilot)
        rows = app.engine.store.execute("select status, error from training_runs order by id")
        assert len(rows) == before + 1
        # the tiny model answers nothing right: the attempt is recorded with the reason, not crashed
        assert rows[-1][0] == "skipped" and "0 verified examples so far" in rows[-1][1]
        log = "\n".join(str(line) for line in app.screen.query_one("#log").lines)
        assert "training skipped: 0 verified examples so far, train.min_examples is 4" in log


async def test_inspector_filters_by_domain_round_and_source(tiny_recipe: Path) -> None:
    from engine.api import Engine
    from tests.fixed_data import populate

    eng = Engine.open()
    populate(eng)
    eng.close()
    app = SwarmApp(recipe=str(tiny_recipe))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("i")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#tasks", DataTable)
        assert table.row_count == 3
        for query, n in [("domain=arith", 3), ("domain=python", 0), ("source=proposed", 2), ("round=0 106", 1),
                         ("round=1", 0)]:
            app.screen.query_one("#search", Input).value = query
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert table.row_count == n, query


def test_event_log_lines_for_the_gate_and_skipped_training() -> None:
    from console.app import describe
    from engine import events as ev

    assert describe(ev.AdapterPromoted(1, 0, 3, True, "held-out 40% vs 1% in use")) == "  gate: promoted: held-out 40% vs 1% in use"
    skipped = describe(ev.AdapterPromoted(1, 0, None, False, "training skipped: 1 verified examples so far"))
    assert skipped == "  training skipped: 1 verified examples so far"


async def test_pane_shows_verdicts_and_a_live_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.app import App

    import console.widgets.agent_pane as pane_mod

    clock = [100.0]
    monkeypatch.setattr(pane_mod, "monotonic", lambda: clock[0])  # the pane's clock only, not textual's

    class One(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            yield AgentPane("judge", "judge")

    app = One()
    async with app.run_test(size=(60, 12)) as pilot:
        pane = app.query_one(AgentPane)
        pane.feed({"r1": "fal"}, 1)
        clock[0] += 0.5
        pane.feed({"r1": "se}"}, 9)
        await pilot.pause()
        body = str(pane.query_one(".stream", Static).render())
        assert "verdict: wrong" in body and "}" not in body  # not the JSON tail
        assert "generating" in str(pane.border_subtitle) and "20 tok/s" in str(pane.border_subtitle)
        pane.settle()
        assert "idle · 0 tok/s" in str(pane.border_subtitle)
        # streams name their task; the verdict marks the oldest unmarked request on that task
        pane.feed({"r2": "true}", "r3": "tr"}, 2, {"r2": 7, "r3": 7})
        pane.mark(7, "✗")
        pane.mark(99, "✓")  # a task this pane never saw: nothing
        await pilot.pause()
        assert pane.marks == {"r2": "✗"}
        body = str(pane.query_one(".stream", Static).render())
        assert "• #7 ✗ verdict: right" in body and body.endswith("#7 ▸ verdict: …")


async def test_a_table_drawn_before_it_measures_new_rows_shows_them_whole() -> None:
    """A line drawn between ``add_row`` and the idle message that measures the row (a refresh on a
    busy machine: CI pictured the training screen's skills as "2 ca" for "2 carries") is redrawn
    at the measured widths; Textual's own DataTable keeps the cut line (Textualize/textual#4470)."""
    from textual.app import App, ComposeResult

    from console.widgets.table import Table

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield Table()

        def on_mount(self) -> None:
            self.query_one(Table).add_columns("skill", "what", "n")

    app = One()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(Table)
        table.clear()
        table.add_row("carries:2", "2 carries", "20")
        table.render_line(1)  # drawn before the idle message measures the new row
        for _ in range(3):
            await pilot.pause()
        shot = app.export_screenshot().replace("&#160;", " ")
        assert "2 carries" in shot and "carries:2" in shot
