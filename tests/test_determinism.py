"""Same seed, same machine, same numbers: two runs of one seed give identical rows, training,
adapter and gate included (the improve benchmark's figures rest on this)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.api import Engine
from tests.conftest import small_recipe

QUERIES = {
    "tasks": "select round, source, pool, task_set, prompt, rejected_reason from tasks where run_id = ? order by id",
    "attempts": "select a.round, t.prompt, a.agent, a.sample, a.turn, a.text, a.correct from attempts a "
                "join tasks t on t.id = a.task_id where a.run_id = ? order by a.id",
    "critiques": "select round, agent, turn, text from critiques where run_id = ? order by id",
    "verdicts": "select round, judge, judge_text, verifier_correct from verdicts where run_id = ? order by id",
    "examples": "select round, source, messages from examples where run_id = ? order by id",
    "training": "select round, status, n_examples, loss_curve from training_runs where run_id = ? order by id",
    "adapters": "select round, sha256, promoted, decision, gate from adapters where run_id = ? order by id",
    "evals": "select round, eval_set, adapter_id is null, n, correct from evals where run_id = ? order by id",
}


def snapshot(eng: Engine, run_id: int) -> dict[str, list[tuple[Any, ...]]]:
    return {name: eng.store.execute(sql, [run_id]) for name, sql in QUERIES.items()}


@pytest.mark.slow
def test_two_runs_of_one_seed_give_identical_rows(tmp_path: Path) -> None:
    recipe = small_recipe(tmp_path, "builtin:smollm2-135m", **{
        "steps = 30": "steps = 3", "difficulty = 2": "difficulty = 1", "generated = 24": "generated = 8",
    })
    shots = []
    for k in range(2):
        eng = Engine.open(tmp_path / f"home-{k}")
        run_id = eng.create_run(str(recipe), rounds=1, train=True)
        assert eng.play(run_id) == "finished"
        shots.append(snapshot(eng, run_id))
        eng.close()
    first, second = shots
    assert first["adapters"], "the round trained no adapter: the test would prove less than it says"
    for name in QUERIES:
        assert first[name] == second[name], name
