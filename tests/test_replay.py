"""Replay: the same tasks under two adapters, side by side (engine.compare, swarm replay)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main
from engine.api import Engine
from engine.compare import played_with
from engine.errors import EngineError
from engine.models import sha256_file
from tests.tiny_model import write_tiny_lora


@pytest.fixture
def played(tiny_recipe: Path, tmp_path: Path) -> tuple[int, int]:
    """A run of one round on the tiny model and a (random) adapter the gate kept after it."""
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    lora = write_tiny_lora(tmp_path / "lora.gguf", seed=3, scale=1.0)
    eng.store.insert("training_runs", [dict(id=1, run_id=run_id, round=0, backend="test", backend_reason="", settings={},
                                            n_examples=1, steps=1, loss_curve=None, tokens_per_second=None,
                                            seconds=None, status="done", error=None)])
    eng.store.insert("adapters", [dict(id=7, run_id=run_id, round=0, training_run_id=1, parent_id=None, path=str(lora),
                                       sha256=sha256_file(lora), export_cosine=1.0, promoted=True, decision="kept",
                                       gate={"kept": True})])
    eng.close()
    return run_id, 7


def test_replay_a_round_under_its_own_and_a_later_adapter(played: tuple[int, int]) -> None:
    run_id, adapter = played
    eng = Engine.open()
    assert played_with(eng.store, run_id, 0) is None  # round 0 played on the base model
    assert played_with(eng.store, run_id, 1) == adapter  # a round after the gate kept it would use it
    r = eng.replay(run_id, 0)  # against: as played (base); adapter: the one in use
    n = eng.store.execute("select count(*) from tasks where run_id = ? and round = 0 and rejected_reason is null "
                          "and not held_out", [run_id])[0][0]
    assert r.what == "round 0" and len(r.tasks) == n > 0
    assert (r.before.adapter_id, r.after.adapter_id) == (None, adapter)
    assert set(r.before.score.traces) == set(r.after.score.traces) == {t.id for t in r.tasks}
    assert sum(r.counts().values()) == n
    # the adapter changed what was said, so the two sides are really two models
    assert any(r.before.score.traces[t.id][0] != r.after.score.traces[t.id][0] for t in r.tasks)
    # each change is what the verifier said of each side
    for c in r.changes():
        a, b = r.before.score.traces[c.task.id], r.after.score.traces[c.task.id]
        assert c.before == (a[3], a[4]) and c.after == (b[3], b[4])
    rows = eng.store.execute("select adapter_id, eval_set, pool, n from debate_evals where pool = 'replay' order by id")
    assert rows == [(None, "replay:round-0", "replay", n), (adapter, "replay:round-0", "replay", n)]
    assert eng.store.execute("select count(*) from debate_eval_answers a join debate_evals d on d.id = a.debate_eval_id "
                             "where d.pool = 'replay'")[0][0] == 2 * n
    with pytest.raises(EngineError, match="no tasks in round 5"):
        eng.replay(run_id, 5)
    with pytest.raises(EngineError, match="no adapter 99"):
        eng.replay(run_id, 0, adapter=99)
    with pytest.raises(EngineError, match="no test set test-99"):
        eng.replay(run_id, set="test-99")
    eng.close()


def test_swarm_replay_of_one_task_and_of_a_test_set(played: tuple[int, int], capsys: pytest.CaptureFixture[str]) -> None:
    run_id, adapter = played
    eng = Engine.open()
    task = eng.store.execute("select min(id) from tasks where run_id = ? and round = 0 and rejected_reason is null "
                             "and not held_out", [run_id])[0][0]
    test_set = "test-1"
    eng.close()
    assert main(["replay", str(run_id), "--task", str(task), "--against", "base", "--adapter", str(adapter),
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["replayed"] == f"task {task}" and out["before"]["adapter"] is None and out["after"]["adapter"] == adapter
    assert [t["task"] for t in out["tasks"]] == [task]
    assert set(out["tasks"][0]["before"]) >= {"first", "critique", "revision", "first_right", "judge_first", "answer", "answer_right"}
    assert main(["replay", "--set", test_set, "--show"]) == 0  # the latest run; the adapter in use vs base
    text = capsys.readouterr().out
    assert f"{test_set}:" in text and "before base model" in text and f"after  adapter {adapter}" in text
    assert main(["replay", str(run_id)]) == 2  # neither a round, nor a set, nor a task


async def test_inspector_replays_the_selected_task(played: tuple[int, int], tiny_recipe: Path) -> None:
    from textual.widgets import DataTable, Static

    from console.app import SwarmApp

    run_id, adapter = played
    app = SwarmApp(recipe=str(tiny_recipe), rounds=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("i")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one("#tasks", DataTable)
        while table.get_row_at(table.cursor_row)[6]:  # a rejected proposal has nothing to replay
            await pilot.press("down")
        task = int(table.get_row_at(table.cursor_row)[0])
        await pilot.press("R")
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = str(app.screen.query_one("#debate", Static).render())
        assert text.startswith(f"REPLAY of task {task}")
        assert "── BEFORE: base model" in text and f"── AFTER: adapter {adapter}" in text
        assert sum(line.startswith("first answer") for line in text.splitlines()) == 2
