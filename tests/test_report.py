"""A run's curves from the store (engine.report), the curves screen, and ``swarm report``."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.cli import main
from engine.api import Engine
from engine.report import curves
from tests.fixed_data import populate, populate_curves


def test_curves_read_every_series_from_the_store() -> None:
    eng = Engine.open()
    run_id = populate_curves(eng)
    c = curves(eng.store, run_id)
    eng.close()
    assert [r for r, _ in c.loss] == [0, 1, 2] and all(len(x) == 12 for _, x in c.loss)
    assert c.loss[2][1][0] == pytest.approx(2.0)
    assert c.dev["dev-2"] == [(0, 0.42, 0.33, 0.52), (1, 0.40, 0.31, 0.50), (2, 0.61, 0.51, 0.70)]
    assert c.dev_base == {"dev-2": (0.25, 0.17, 0.34)}
    assert c.test == {"test-2": [(0, 0.44, 0.35, 0.54), (2, 0.58, 0.48, 0.67)]}  # only where scored
    assert c.test_base == {"test-2": (0.27, 0.19, 0.36)}
    assert c.debate == [(0, 0.47, 0.50, -0.08), (1, 0.58, 0.55, -0.02), (2, 0.66, 0.63, 0.04)]
    assert c.skills_source == "dev" and c.rounds == [0, 1, 2]
    assert c.skills["carries:2"] == pytest.approx([1 / 9, 0.1, 0.2])  # round 0: 1 of 9; then 2 of 20, 4 of 20
    assert not c.empty()


def test_curves_of_a_run_without_training_use_the_rounds_own_skills() -> None:
    eng = Engine.open()
    run_id = populate(eng)
    eng.store.execute("delete from skill_scores where source = 'dev'")
    c = eng.curves(run_id)
    eng.close()
    assert c.loss == [] and c.dev == {} and c.debate == []
    assert c.skills_source == "round" and c.skills["digits:3"] == [0.0]


def test_swarm_report_writes_png_and_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eng = Engine.open()
    populate_curves(eng)
    eng.close()
    png, svg = tmp_path / "run.png", tmp_path / "run.svg"
    assert main(["report", "1", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", "--format", "svg", "-o", str(tmp_path / "run")]) == 0  # the latest run
    text = svg.read_text()
    assert "<svg" in text and "training loss per step" in text and "carries:2" in text
    assert f"wrote {svg}" in capsys.readouterr().out


def test_swarm_report_on_a_run_with_nothing_to_plot(capsys: pytest.CaptureFixture[str]) -> None:
    eng = Engine.open()
    populate(eng)
    eng.store.execute("delete from skill_scores")
    eng.close()
    assert main(["report"]) == 1
    assert "nothing to plot yet" in capsys.readouterr().err


async def test_curves_screen_plots_the_latest_run() -> None:
    from textual.widgets import DataTable, Static
    from textual_plotext import PlotextPlot

    from console.app import SwarmApp
    from console.screens.plots import PlotsScreen

    eng = Engine.open()
    populate_curves(eng)
    eng.close()
    app = SwarmApp(recipe="default")
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("g")
        assert isinstance(app.screen, PlotsScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        status = app.screen.query_one("#plots-status", Static)
        assert "run 1 (the latest): 3 training run(s), 3 round(s)" in str(status.render())
        heat = app.screen.query_one("#heat", DataTable)
        assert heat.row_count == 6 and str(heat.get_row_at(0)[0]) == "carries:2"  # weakest in the last round first
        assert str(heat.get_row_at(0)[3]).strip() == "20%"
        loss = app.screen.query_one("#plot-loss", PlotextPlot)
        assert "round 2" in str(loss.render())  # the legend names every training run
        eng = app.engine
        assert eng is not None
        eng.store.insert("runs", [dict(id=2, recipe_name="arith", recipe_path="", recipe_toml="", model_path="",
                                       model_sha256=None, seed=1, rounds_planned=1, settings={}, status="created",
                                       error=None)])
        await pilot.press("r")  # the latest run now has nothing to plot
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "run 2 (the latest): 0 training run(s)" in str(status.render()) and heat.row_count == 0
        await pilot.press("left_square_bracket")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert str(status.render()).startswith("run 1: 3 training run(s)") and heat.row_count == 6
        await pilot.press("right_square_bracket")  # back to following the latest
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen.run_id is None and "run 2 (the latest)" in str(status.render())
        await pilot.press("escape")
        assert not isinstance(app.screen, PlotsScreen)
