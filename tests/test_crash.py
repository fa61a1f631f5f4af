"""Crash safety: SIGKILL the engine at points across a round (generation, store writes, training,
export, evaluation); the store stays consistent and ``swarm run --resume`` completes the run with
no duplicated or lost rows, matching an uninterrupted run of the same seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.api import Engine
from engine.store import Store
from tests.conftest import small_recipe

KILL_POINTS = [
    "generate:propose", "write:propose", "generate:solve", "write:solve", "generate:debate", "write:debate",
    "generate:judge", "write:judge", "generate:hint", "write:hint", "write:collect", "train:1", "export", "evaluate", "write:evaluate", "complete",
]
TABLES = ["tasks", "attempts", "critiques", "verdicts", "hints", "examples", "evals"]


@pytest.fixture(scope="module")
def crash_recipe(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    return small_recipe(tmp_path_factory.mktemp("crash"), tiny_model, **{
        'backend = "auto"': 'backend = "peft"', "steps = 30": "steps = 2", "dev = 6": "dev = 4",
        "debate_turns = 1": "debate_turns = 1\nhints = true",  # every phase, the hint phase too
    })


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def prepare(home: Path, recipe: Path) -> int:
    """A run with a few verified examples already in its training set, so every round trains."""
    eng = Engine.open(home)
    run_id = eng.create_run(str(recipe), rounds=1, train=True)
    msgs = [[{"role": "user", "content": f"What is {i} + 1?"}, {"role": "assistant", "content": str(i + 1)}] for i in range(4)]
    ids = eng.store.allocate_ids("examples", len(msgs))
    eng.store.insert("examples", [dict(id=i, run_id=run_id, round=0, task_id=None, attempt_id=None, source="verified",
                                       messages=m) for i, m in zip(ids, msgs)])
    eng.close()
    return run_id


def swarm(home: Path, cache: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SWARM_HOME=str(home), SWARM_CACHE=str(cache))
    env.pop("SWARM_KILL_AT", None)
    if kill_at:
        env["SWARM_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "console.cli", *args], env=env, capture_output=True, text=True, timeout=600)


def counts(home: Path) -> dict[str, int]:
    with Store.open(home / "swarm.duckdb", read_only=True) as s:
        out = {t: s.execute(f"select count(*) from {t}")[0][0] for t in TABLES}
        out["adapters"] = s.execute("select count(*) from adapters where decision is not null")[0][0]
        out["training_done"] = s.execute("select count(*) from training_runs where status = 'done'")[0][0]
    return out


def assert_consistent(path: Path) -> None:
    with Store.open(path, read_only=True) as s:
        q = s.execute
        assert q("select count(*) from rounds where status = 'complete' and phase <> 'evaluate'")[0][0] == 0
        orphans = {
            "attempts without task": "select count(*) from attempts a left join tasks t on t.id = a.task_id where t.id is null",
            "critiques without attempt": "select count(*) from critiques c left join attempts a on a.id = c.attempt_id where a.id is null",
            "verdicts without attempt": "select count(*) from verdicts v left join attempts a on a.id = v.attempt_id where a.id is null",
            "hints without attempt": "select count(*) from hints h left join attempts a on a.id = h.attempt_id "
                                     "where h.attempt_id is not null and a.id is null",
            "examples without attempt": "select count(*) from examples e left join attempts a on a.id = e.attempt_id "
                                        "where e.attempt_id is not null and a.id is null",
            "adapters without training": "select count(*) from adapters d left join training_runs r on r.id = d.training_run_id where r.id is null",
            "evals without adapter": "select count(*) from evals e left join adapters d on d.id = e.adapter_id "
                                     "where e.adapter_id is not null and d.id is null",
        }
        for what, sql in orphans.items():
            assert q(sql)[0][0] == 0, what
        # rows of a phase exist only once its marker says it is done
        order = ["propose", "solve", "debate", "judge", "hint", "verify", "collect", "train", "evaluate"]
        for rnd, phase in q("select round, coalesce(phase, '') from rounds"):
            done = order.index(phase) if phase in order else -1
            n_att = q("select count(*) from attempts where round = ? and turn = 0", [rnd])[0][0]
            n_ver = q("select count(*) from verdicts where round = ?", [rnd])[0][0]
            assert (n_att > 0) == (done >= order.index("solve")) or n_att == 0 and done >= 1
            assert n_ver == 0 or done >= order.index("judge")
            n_hints = q("select count(*) from hints where round = ?", [rnd])[0][0]
            assert n_hints == 0 or done >= order.index("hint")
        for path_, sha in q("select path, sha256 from adapters"):
            from engine.models import sha256_file

            assert Path(path_).exists() and sha256_file(path_) == sha
        assert q("select count(*) from (select task_id, agent, sample, turn, count(*) c from attempts "
                 "group by all having c > 1)")[0][0] == 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, crash_recipe: Path, shared_cache: Path) -> dict[str, int]:
    home = tmp_path_factory.mktemp("reference")
    run_id = prepare(home, crash_recipe)
    r = swarm(home, shared_cache, "run", "--resume", str(run_id))
    assert r.returncode == 0, r.stderr
    c = counts(home)
    assert c["training_done"] == 1 and c["adapters"] == 1 and c["evals"] > 0
    return c


@pytest.mark.slow
@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_then_resume(point: str, tmp_path: Path, crash_recipe: Path, shared_cache: Path,
                             reference: dict[str, int]) -> None:
    home = tmp_path / "h"
    run_id = prepare(home, crash_recipe)
    killed = swarm(home, shared_cache, "run", "--resume", str(run_id), kill_at=point)
    assert killed.returncode == -9, (point, killed.returncode, killed.stderr[-500:])
    assert_consistent(home / "swarm.duckdb")
    resumed = swarm(home, shared_cache, "run", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-1000:]
    assert "finished" in resumed.stderr
    assert_consistent(home / "swarm.duckdb")
    assert counts(home) == reference, point
    with Store.open(home / "swarm.duckdb", read_only=True) as s:
        assert s.execute("select status from runs where id = ?", [run_id])[0][0] == "finished"
        statuses = [r[0] for r in s.execute("select status from training_runs order by id")]
    assert statuses[-1] == "done"
    assert json.dumps(statuses).count("running") == 0
