"""Train, dev and test pools: disjoint on canonical forms, all there before round 0, and the test
pool never read by the loop."""

from __future__ import annotations

import random
from pathlib import Path

from engine.api import Engine
from engine.pools import duplicate_reason, known_keys, pool_of, reachable_levels
from engine.recipes import load_recipe
from engine.tasks import get_domain
from engine.tasks.arith import ARITH
from tests.conftest import small_recipe


def test_pools_exist_for_every_reachable_level_before_round_0(tiny_recipe: Path) -> None:
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    recipe = load_recipe(str(tiny_recipe))[0]
    sets = eng.store.execute("select pool, task_set, count(*) from tasks where run_id = ? group by all order by all", [run_id])
    expected = {(p, f"{p}-{lvl}") for p in ("dev", "test") for lvl in reachable_levels(recipe)}
    expected |= {("dev", "facts-dev"), ("test", "facts-test")}  # general facts, to see forgetting
    assert {(p, s) for p, s, _ in sets} == expected
    assert reachable_levels(recipe) == list(range(1, 10))
    assert all(n == 6 for p, s, n in sets if s not in ("dev-1", "test-1", "facts-dev", "facts-test"))  # 55 1-digit sums
    assert all(n == 16 for p, s, n in sets if s.startswith("facts-"))
    assert eng.store.execute("select count(*) from rounds where run_id = ?", [run_id])[0][0] == 0
    eng.close()


def test_pools_are_disjoint_on_the_canonical_form(tiny_recipe: Path) -> None:
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    rows = eng.store.execute("select fingerprint, pool, payload->>'expression' from tasks where run_id = ? "
                             "and domain = 'arith'", [run_id])
    by_key: dict[str, set[str]] = {}
    for fp, pool, expr in rows:
        by_key.setdefault(fp, set()).add(pool)
        assert pool_of(fp, 7) == pool  # the canonical form decides the pool
    assert all(len(p) == 1 for p in by_key.values())
    eng.close()


def test_a_reordered_sum_is_the_same_task() -> None:
    t = ARITH.parse_proposal("19 + 72", 2)
    u = ARITH.parse_proposal("72 + 19", 2)
    v = ARITH.parse_proposal("(72 + 19)", 2)
    assert not isinstance(t, str) and not isinstance(u, str) and not isinstance(v, str)
    assert t.fingerprint == u.fingerprint == v.fingerprint
    known = {t.fingerprint: "test"}
    assert duplicate_reason(u, known) == "duplicates a test task"
    assert duplicate_reason(ARITH.parse_proposal("72 - 19", 2), known) is None  # type: ignore[arg-type]


def test_proposals_repeating_dev_or_test_tasks_are_rejected(tiny_recipe: Path, monkeypatch: object) -> None:
    """The proposer is made to write a test task reordered and a dev task as is: both rejected."""
    import pytest

    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    q = eng.store.execute
    test_expr = q("select payload->>'expression' from tasks where run_id = ? and task_set = 'test-2' limit 1", [run_id])[0][0]
    dev_expr = q("select payload->>'expression' from tasks where run_id = ? and task_set = 'dev-2' limit 1", [run_id])[0][0]
    a, op, b = test_expr.split(" ")
    reordered = f"{b} {op} {a}"
    proposals = iter([reordered, dev_expr])
    original = ARITH.parse_proposal
    mp = pytest.MonkeyPatch()
    mp.setattr(type(ARITH), "parse_proposal", lambda self, text, d: original(next(proposals), d))
    try:
        eng.play(run_id)
    finally:
        mp.undo()
    reasons = dict(q("select payload->>'proposal_text', rejected_reason from tasks where run_id = ? and source = 'proposed'",
                     [run_id]))
    assert sorted(r for r in reasons.values()) == ["duplicates a dev task", "duplicates a test task"]
    # generated round tasks are drawn from the train share only
    for fp, pool in q("select fingerprint, pool from tasks where run_id = ? and source = 'generated' and round = 0", [run_id]):
        assert pool == "train" and pool_of(fp, 7) == "train"
    eng.close()


def test_the_loop_never_reads_the_test_pool(tmp_path: Path, tiny_model: Path) -> None:
    """Two runs of one seed, one with its test tasks deleted before playing: the rounds are
    identical, so nothing in them depended on the test pool."""
    from tests.conftest import small_recipe

    recipe = small_recipe(tmp_path, tiny_model)
    eng = Engine.open()
    a = eng.create_run(str(recipe), rounds=2, train=False)
    b = eng.create_run(str(recipe), rounds=2, train=False)
    eng.store.execute("delete from tasks where run_id = ? and pool = 'test'", [b])
    assert eng.play(a) == "finished" and eng.play(b) == "finished"
    q = eng.store.execute

    def rows(run: int) -> list[tuple[object, ...]]:
        return q("select a.round, t.prompt, a.agent, a.sample, a.turn, a.text, a.correct from attempts a "
                 "join tasks t on t.id = a.task_id where a.run_id = ? order by all", [run])

    assert rows(a) == rows(b) and rows(a)
    assert q("select count(*) from evals where pool = 'test'")[0][0] == 0
    eng.close()


def test_python_duplicates_by_behaviour(monkeypatch: object) -> None:
    """A proposal that restates a known task in other words is caught by what it computes."""
    py = get_domain("python")
    task = py.generate(random.Random(3), 1, 1)[0]
    inputs = [line.split("candidate(*")[1].split(") ==")[0] for line in task.payload["test"].splitlines() if "candidate(*" in line]
    text = ("SPEC: Return the input changed as the examples show, in a new way.\n```python\n"
            f"{task.reference.replace(task.payload['entry_point'], 'other_name')}\n```\nINPUTS: [{', '.join(inputs)}]")
    restated = py.parse_proposal(text, 1)
    assert not isinstance(restated, str), restated
    assert restated.fingerprint != task.fingerprint and restated.behaviour == task.behaviour
    assert duplicate_reason(restated, {task.fingerprint: "dev", task.behaviour: "dev"}) == "duplicates a dev task"


def test_known_keys_cover_imported_sets(tmp_path: Path) -> None:
    import json

    from engine.task_sets import import_jsonl
    from tests.test_tasks import HUMANEVAL

    f = tmp_path / "mini.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in HUMANEVAL))
    eng = Engine.open()
    import_jsonl(eng.store, f)
    keys = known_keys(eng.store, 999, "python")
    assert set(keys.values()) == {"imported"} and len(keys) == 3
    assert known_keys(eng.store, 999, "arith") == {}
    eng.close()


def test_python_test_sets_hold_families_never_trained_on(tmp_path: Path, tiny_model: Path) -> None:
    from engine.pools import family_of

    recipe = small_recipe(tmp_path, tiny_model, **{'domain = "arith"': 'domain = "python"',
                                                   "max_difficulty = 9": "max_difficulty = 5",
                                                   "difficulty = 2": "difficulty = 5"})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    rows = eng.store.execute("select fingerprint, pool from tasks where run_id = ? and pool in ('dev', 'test')", [run_id])
    seed = eng.run_info(run_id).seed
    families = {p: {family_of(fp) for fp, pool in rows if pool == p} for p in ("dev", "test")}
    # some test families are held out whole: no task of theirs, whatever its constants, can be
    # drawn for training; the other test tasks are new constants of trained families
    whole = {f for f in families["test"] if all(pool_of(f"{f}:{n:016x}", seed) == "test" for n in range(200))}
    assert whole and families["test"] - whole, families
    eng.close()
