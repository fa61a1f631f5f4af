"""Training data, GGUF adapter export, evaluation and the gate; end to end on the real model."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.api import Engine
from engine.evaluate import bootstrap_ci, gate, paired, score
from engine.models import check_gguf, sha256_file
from engine.errors import RecipeError
from engine.recipes import load_recipe
from engine.rounds import TaskRow
from engine.runtime import Request, Runtime, Sampling
from engine.tasks.arith import ARITH
from engine.train.dataset import collect, solve_messages, training_set
from engine.train.export import gguf_tensors, permute, write_adapter
from engine.train.runner import EXPORT_COSINE_MIN
from tests.conftest import small_recipe


def _attempt(eng: Engine, run_id: int, rnd: int, task_id: int, text: str, correct: bool, *, agent: str = "solver-a",
             sample: int = 0, turn: int = 0, answer: str | None = None) -> int:
    aid = eng.store.allocate_ids("attempts", 1)[0]
    eng.store.insert("attempts", [dict(id=aid, run_id=run_id, round=rnd, task_id=task_id, agent=agent, sample=sample,
                                       turn=turn, text=text, answer=answer, correct=correct, status="ok", tokens=1,
                                       seconds=0.0)])
    return aid


def _critique(eng: Engine, run_id: int, rnd: int, task_id: int, attempt_id: int, text: str) -> None:
    cid = eng.store.allocate_ids("critiques", 1)[0]
    eng.store.insert("critiques", [dict(id=cid, run_id=run_id, round=rnd, task_id=task_id, attempt_id=attempt_id,
                                        agent="critic", turn=1, text=text, tokens=1, seconds=0.0)])


def _task(eng: Engine, run_id: int, rnd: int | None, prompt: str, held_out: bool = False, *, reference: str = "1",
          expression: str | None = None) -> int:
    tid = eng.store.allocate_ids("tasks", 1)[0]
    eng.store.insert("tasks", [dict(id=tid, run_id=run_id, round=rnd, source="generated", task_set=None, domain="arith",
                                    difficulty=2, prompt=prompt, reference=reference,
                                    payload={"expression": expression} if expression else {}, fingerprint=f"f{tid}",
                                    held_out=held_out, rejected_reason=None)])
    return tid


def _columns(recipe: Any, **train: Any) -> Any:
    """``recipe`` with its answers worked in columns and ``train`` set."""
    return recipe.model_copy(update={"task": recipe.task.model_copy(update={"answer_format": "columns"}),
                                     "train": recipe.train.model_copy(update=train)})


def test_dataset_dedupes_caps_accumulates_and_never_takes_held_out(tiny_recipe: Path) -> None:
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    recipe = load_recipe(str(tiny_recipe))[0]
    t1 = _task(eng, run_id, 0, "What is 1 + 0?")
    held = _task(eng, run_id, None, "What is 0 + 1?", held_out=True)
    for text in ["1", "1", " 1 ", "It is 1", "One: 1", "1."]:
        _attempt(eng, run_id, 0, t1, text, True)
    _attempt(eng, run_id, 0, t1, "2", False)
    _attempt(eng, run_id, 0, held, "1", True)  # even a correct answer on a held-out task
    got = collect(eng.store, recipe, run_id, 0)
    assert got["solver"] == recipe.train.max_per_task == 2
    assert got["judge"] == 2  # one right and one wrong answer: the classes are balanced
    assert sum(collect(eng.store, recipe, run_id, 0).values()) == 0  # idempotent
    t2 = _task(eng, run_id, 1, "What is 2 + 0?")
    _attempt(eng, run_id, 1, t2, "2", True)
    assert collect(eng.store, recipe, run_id, 1) == {"solver": 1, "reviser": 0, "critic": 0, "judge": 0}
    data = training_set(eng.store, recipe, run_id, seed=0)
    assert len(data) == 5  # accumulated across rounds, no replay recorded yet
    solver_only = recipe.model_copy(update={"train": recipe.train.model_copy(update={"roles": ["solver"]})})
    assert len(training_set(eng.store, solver_only, run_id, seed=0)) == 3
    prompts = [m[-2]["content"] for m in data]
    assert all("0 + 1" not in p for p in prompts)
    assert data[0][:-1] == solve_messages(recipe, data[0][-2]["content"])[:-1] or data[0][0]["role"] == "system"
    assert {m[-1]["role"] for m in data} == {"assistant"}
    eng.close()


def test_unsolved_python_tasks_train_the_solver_on_their_reference_which_passes_their_tests(tmp_path: Path,
                                                                                          tiny_model: Path) -> None:
    """train.unsolved = "worked" in the python domain (answers are code, the format plain): a task no
    answer got right trains the solver on its reference implementation, in the code block a solver
    answers with, and that reply passes the task's own tests in the sandbox."""
    import random

    from engine.tasks.python import PYTHON

    recipe_path = small_recipe(tmp_path, tiny_model, **{'domain = "arith"': 'domain = "python"'})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe_path), rounds=1, train=False)
    base = load_recipe(str(recipe_path))[0]
    assert base.task.domain == "python" and base.task.answer_format == "plain"
    worked = base.model_copy(update={"train": base.train.model_copy(update={"unsolved": "worked"})})
    ids = {}
    for name, task in zip(("solved", "unsolved"), PYTHON.generate(random.Random(3), 2, 2)):
        tid = eng.store.allocate_ids("tasks", 1)[0]
        eng.store.insert("tasks", [dict(id=tid, run_id=run_id, round=0, source="generated", task_set=None,
                                        domain="python", difficulty=2, prompt=task.prompt, reference=task.reference,
                                        payload=task.payload, fingerprint=task.fingerprint, held_out=False,
                                        rejected_reason=None)])
        ids[name] = (tid, task)
    solved, unsolved = ids["solved"], ids["unsolved"]
    _attempt(eng, run_id, 0, solved[0], PYTHON.reference_answer(solved[1].reference), True)
    for agent in ("solver-a", "solver-b"):
        _attempt(eng, run_id, 0, unsolved[0], "```python\ndef nothing():\n    pass\n```", False, agent=agent)
    assert collect(eng.store, base, run_id, 0)["solver"] == 1  # skip (the default): the solved task only
    assert collect(eng.store, worked, run_id, 0)["solver"] == 1  # one reference for the unsolved one
    rows = eng.store.execute("select task_id, source, messages from examples where run_id = ? and role = 'solver' "
                             "order by id", [run_id])
    assert [(t, src) for t, src, _ in rows] == [(solved[0], "first"), (unsolved[0], "rationale")]
    reply = json.loads(rows[1][2])[-1]["content"]
    assert reply.startswith("```python\n") and unsolved[1].reference.strip() in reply
    assert PYTHON.verify(unsolved[1], reply).correct  # the sandbox runs the task's tests on it
    eng.close()


def test_a_computing_judge_learns_each_tasks_verified_result_without_an_answer(tiny_recipe: Path) -> None:
    from engine.agents import fill

    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    base = load_recipe(str(tiny_recipe))[0]
    recipe = base.model_copy(update={"round": base.round.model_copy(update={"judging": "compute"})})
    solved, unsolved = _task(eng, run_id, 0, "What is 1 + 0?"), _task(eng, run_id, 0, "What is 0 + 1?")
    held = _task(eng, run_id, None, "What is 1 - 0?", held_out=True)
    for text, ok in [("1", True), ("2", False)]:
        _attempt(eng, run_id, 0, solved, text, ok)
    _attempt(eng, run_id, 0, unsolved, "7", False)  # nobody got it: the judge still learns its result
    _attempt(eng, run_id, 0, held, "1", True)
    assert collect(eng.store, recipe, run_id, 0)["judge"] == 2  # one per train task, none for the held-out one
    judge = [json.loads(m) for (m,) in eng.store.execute(
        "select messages from examples where run_id = ? and role = 'judge' order by task_id", [run_id])]
    assert [m[-2]["content"] for m in judge] == [fill(recipe.prompts.judge_compute, {"task": t})
                                                 for t in ("What is 1 + 0?", "What is 0 + 1?")]
    assert [m[-1]["content"] for m in judge] == ["1", "1"] and all("Answer" not in m[-2]["content"] for m in judge)
    assert collect(eng.store, recipe, run_id, 0)["judge"] == 0  # known already
    # In a worked format the judge learns each task worked in it (and works it out at inference)
    worked = _columns(recipe)
    t2 = _task(eng, run_id, 1, "What is 19 + 72?", reference="91", expression="19 + 72")
    _attempt(eng, run_id, 1, t2, "81", False)
    assert collect(eng.store, worked, run_id, 1)["judge"] == 1
    assert [json.loads(m)[-1]["content"] for (m,) in eng.store.execute(
        "select messages from examples where run_id = ? and role = 'judge' and round = 1", [run_id])] == \
        ["19+72: 9+2=11, 1+7+1=9, so 91"]
    # With round.judge_view = "swapped" it learns the task put as it is asked it: its operands swapped, worked so
    viewed = worked.model_copy(update={"round": worked.round.model_copy(update={"judge_view": "swapped"})})
    t3 = _task(eng, run_id, 2, "What is 12 + 7 * 3?", reference="33", expression="12 + 7 * 3")
    _attempt(eng, run_id, 2, t3, "33", True)
    assert collect(eng.store, viewed, run_id, 2)["judge"] == 1
    (m,), = eng.store.execute("select messages from examples where run_id = ? and role = 'judge' and round = 2", [run_id])
    assert [x["content"] for x in json.loads(m)[-2:]] == [fill(recipe.prompts.judge_compute, {"task": "What is 12 + 3 * 7?"}),
                                                         "3*7=21; 12+21: 2+1=3, 1+2=3, so 33"]
    assert [x["content"] for x in json.loads(eng.store.execute(
        "select messages from examples where run_id = ? and role = 'solver' and round = 2", [run_id])[0][0])[-2:]][1] \
        == "7*3=21; 12+21: 2+1=3, 1+2=3, so 33"  # the solver learns it as asked
    from engine.agents import RESULT_GRAMMAR, judge_request

    judge = next(a for a in recipe.agents if a.role == "judge")
    assert judge_request(recipe, judge, "What is 19 + 72?", "81", 0, greedy=True).sampling.grammar == RESULT_GRAMMAR
    assert judge_request(worked, judge, "What is 19 + 72?", "81", 0, greedy=True).sampling.grammar is None
    eng.close()


def test_unsolved_tasks_can_train_the_solver_worked_from_their_verified_result(tiny_recipe: Path) -> None:
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    base = load_recipe(str(tiny_recipe))[0]
    cols, worked = _columns(base), _columns(base, unsolved="worked")
    solved = _task(eng, run_id, 0, "What is 19 + 72?", reference="91", expression="19 + 72")
    unsolved = _task(eng, run_id, 0, "What is 45 + 38?", reference="83", expression="45 + 38")
    held = _task(eng, run_id, None, "What is 11 + 11?", held_out=True, reference="22", expression="11 + 11")
    _attempt(eng, run_id, 0, solved, "91", True)
    _attempt(eng, run_id, 0, solved, "90", False, agent="solver-b")
    for agent in ("solver-a", "solver-b"):  # nobody got it: one worked example, not one per wrong answer
        _attempt(eng, run_id, 0, unsolved, "73", False, agent=agent)
    _attempt(eng, run_id, 0, held, "21", False)
    assert collect(eng.store, cols, run_id, 0)["solver"] == 1  # skip (the default): the solved task only
    assert collect(eng.store, worked, run_id, 0)["solver"] == 1  # the unsolved one, worked; the held-out one never
    rows = eng.store.execute("select task_id, source, messages from examples where run_id = ? and role = 'solver' "
                             "order by id", [run_id])
    assert [(t, src, json.loads(m)[-1]["content"]) for t, src, m in rows] == [
        (solved, "first", "19+72: 9+2=11, 1+7+1=9, so 91"), (unsolved, "rationale", "45+38: 5+8=13, 4+3+1=8, so 83")]
    eng.close()
    text = tiny_recipe.read_text().replace("[train]", '[train]\nunsolved = "worked"', 1)
    (tiny_recipe.parent / "plain-unsolved.toml").write_text(text)
    from engine.errors import RecipeError

    with pytest.raises(RecipeError, match=r"train.unsolved: 'worked' needs a task.answer_format other than plain"):
        load_recipe(str(tiny_recipe.parent / "plain-unsolved.toml"))


def test_step_critiques_teach_the_critic_the_first_wrong_step_and_the_reviser_the_worked_answer(
        tiny_recipe: Path) -> None:
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    base = load_recipe(str(tiny_recipe))[0]
    steps = _columns(base, critiques="steps")
    wrong = _task(eng, run_id, 0, "What is 160 + 48?", reference="208", expression="160 + 48")
    right = _task(eng, run_id, 0, "What is 19 + 72?", reference="91", expression="19 + 72")
    other = _task(eng, run_id, 0, "What is 11 + 22?", reference="33", expression="11 + 22")
    slip = _attempt(eng, run_id, 0, wrong, "160+48: 0+8=8, 6+4=10, 0+4+1=5, so 508", False, answer="508")
    _critique(eng, run_id, 0, wrong, slip, "The correct answer is 508.")  # the model's own critique
    _attempt(eng, run_id, 0, wrong, "160+48: 0+8=8, 6+4=10, 1+0+1=2, so 208", True, turn=1, answer="208")
    _attempt(eng, run_id, 0, right, "19+72: 9+2=11, 1+7+1=9, so 91", True, answer="91")
    _attempt(eng, run_id, 0, other, "11+22: 1+2=3, 1+2=3, so 33", True, answer="33")
    got = collect(eng.store, steps, run_id, 0)
    assert (got["critic"], got["reviser"]) == (2, 3)  # one fix, one confirmation (as many); the debate's revision
    rows = [(t, src, json.loads(m)) for t, src, m in eng.store.execute(
        "select task_id, source, messages from examples where run_id = ? and role in ('critic', 'reviser') "
        "and source = 'steps' order by id", [run_id])]
    assert [(t, m[-1]["content"]) for t, _s, m in rows] == [
        (wrong, "0+4+1=5 is wrong: it should be 1+0+1=2."), (wrong, "160+48: 0+8=8, 6+4=10, 1+0+1=2, so 208"),
        (right, "The answer 91 is right."), (right, "19+72: 9+2=11, 1+7+1=9, so 91")]
    assert "A reviewer said: 0+4+1=5 is wrong: it should be 1+0+1=2." in rows[1][2][-2]["content"]
    assert not eng.store.execute("select count(*) from examples where run_id = ? and role = 'critic' "
                                 "and source <> 'steps'", [run_id])[0][0]  # not the model's "The correct answer is 508."
    eng.close()
    from engine.errors import RecipeError

    (tiny_recipe.parent / "plain-steps.toml").write_text(
        tiny_recipe.read_text().replace("[train]", '[train]\ncritiques = "steps"', 1))
    with pytest.raises(RecipeError, match=r"plain-steps.toml.*train.critiques: 'steps' needs a worked "
                                          r"task.answer_format.*'plain' is not worked"):
        load_recipe(str(tiny_recipe.parent / "plain-steps.toml"))


def test_a_worked_answer_format_needs_room_to_write_the_work(tmp_path: Path) -> None:
    from engine.errors import RecipeError
    from engine.recipes import WORKED_MIN_TOKENS

    text = load_recipe("plain")[2].replace("[task]", '[task]\nanswer_format = "columns"', 1)
    (tmp_path / "cols.toml").write_text(text)
    with pytest.raises(RecipeError, match=rf"cols.toml: .*'solver-a' \(solver\) has max_tokens = 32, .*'columns'.*"
                                          rf"at least {WORKED_MIN_TOKENS}"):
        load_recipe(str(tmp_path / "cols.toml"))
    roomy = text.replace("max_tokens = 32", "max_tokens = 64")
    (tmp_path / "roomy.toml").write_text(roomy)
    assert load_recipe(str(tmp_path / "roomy.toml"))[0].task.answer_format == "columns"  # a verdict judge reads
    (tmp_path / "judge.toml").write_text(roomy.replace("[round]", '[round]\njudging = "compute"', 1))
    with pytest.raises(RecipeError, match=r"'judge' \(judge\) has max_tokens = 16"):
        load_recipe(str(tmp_path / "judge.toml"))


def test_role_cap_keeps_other_roles_to_a_share_of_the_solver_examples(tiny_recipe: Path) -> None:
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    base = load_recipe(str(tiny_recipe))[0]
    tid = _task(eng, run_id, 0, "What is 1 + 0?")
    rows = [("solver", "first", f"s{i}") for i in range(3)] + [("judge", "verifier", f"j{i}") for i in range(9)] + \
        [("critic", "critique", "c0")]
    ids = eng.store.allocate_ids("examples", len(rows))
    eng.store.insert("examples", [dict(id=i, run_id=run_id, round=0, task_id=tid, attempt_id=None, role=role, source=src,
                                       messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": t}])
                                  for i, (role, src, t) in zip(ids, rows)])

    def replies(cap: float | None, seed: int = 0) -> list[str]:
        rec = base.model_copy(update={"train": base.train.model_copy(update={"role_cap": cap})})
        return sorted(m[-1]["content"] for m in training_set(eng.store, rec, run_id, seed=seed))

    assert len(replies(None)) == 13  # no cap: every example
    capped = replies(1.0)
    assert [r for r in capped if r[0] == "s"] == ["s0", "s1", "s2"] and "c0" in capped
    assert sum(r[0] == "j" for r in capped) == 3  # as many verdicts as solver examples
    assert replies(1.0, seed=1) != capped or replies(1.0, seed=2) != capped  # a fresh draw per round's seed
    assert sum(r[0] == "j" for r in replies(0.5)) == 2  # round(0.5 * 3)
    eng.close()


def test_an_answer_format_trains_each_verified_answer_worked_in_it(tiny_recipe: Path) -> None:
    from engine.errors import RecipeError

    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    base = load_recipe(str(tiny_recipe))[0]
    recipe = _columns(base)
    tid = _task(eng, run_id, 0, "What is 19 + 72?", reference="91", expression="19 + 72")
    for text, ok in [("91", True), ("19 + 72 = 91", True), ("81", False)]:
        _attempt(eng, run_id, 0, tid, text, ok)
    got = collect(eng.store, recipe, run_id, 0)
    assert got["solver"] == 1  # both right answers are the same worked answer
    solver = [json.loads(m) for (m,) in eng.store.execute(
        "select messages from examples where run_id = ? and role = 'solver'", [run_id])]
    assert solver[0][-1]["content"] == "19+72: 9+2=11, 1+7+1=9, so 91"
    judge = [json.loads(m)[-2]["content"] for (m,) in eng.store.execute(
        "select messages from examples where run_id = ? and role = 'judge'", [run_id])]
    assert any("19 + 72 = 91" in u for u in judge)  # the judge still sees the answers as written
    # value: the verified result alone, however the solver worded it (plain keeps its words)
    values = recipe.model_copy(update={"task": base.task.model_copy(update={"answer_format": "value"})})
    t2 = _task(eng, run_id, 1, "What is 40 + 78?", reference="118", expression="40 + 78")
    _attempt(eng, run_id, 1, t2, "To find 40 + 78, we add them: 40 + 78 = 118. Then,", True, answer="118")
    _attempt(eng, run_id, 1, t2, "108", False, agent="solver-b", answer="108")
    assert collect(eng.store, values, run_id, 1)["solver"] == 1
    assert [json.loads(m)[-1]["content"] for (m,) in eng.store.execute(
        "select messages from examples where run_id = ? and role = 'solver' and round = 1", [run_id])] == ["118"]
    t3 = _task(eng, run_id, 2, "What is 5 + 6?", reference="11", expression="5 + 6")
    _attempt(eng, run_id, 2, t3, "It is 11.", True, answer="11")
    collect(eng.store, base, run_id, 2)
    assert [json.loads(m)[-1]["content"] for (m,) in eng.store.execute(
        "select messages from examples where run_id = ? and role = 'solver' and round = 2", [run_id])] == ["It is 11."]
    eng.close()
    bad = tiny_recipe.parent / "bad-format.toml"
    bad.write_text(tiny_recipe.read_text().replace("[task]", '[task]\nanswer_format = "roman"', 1))
    with pytest.raises(RecipeError, match=r"task.answer_format.*'roman'.*plain, value, columns, reversed, digits"):
        load_recipe(str(bad))


def test_learnable_filter_keeps_easy_tasks_only_as_replay(tiny_recipe: Path) -> None:
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    base = load_recipe(str(tiny_recipe))[0]
    recipe = base.model_copy(update={"train": base.train.model_copy(update={
        "learnable_max": 0.75, "easy_fraction": 0.5, "roles": ["solver"], "max_per_task": 8})})
    easy, learnable = _task(eng, run_id, 0, "What is 1 + 1?"), _task(eng, run_id, 0, "What is 2 + 2?")
    for i, agent in enumerate(["solver-a", "solver-a", "solver-b", "solver-b"]):
        _attempt(eng, run_id, 0, easy, f"1 + 1 = 2 ({i})", True, agent=agent, sample=i % 2)  # 4 of 4: easy
        _attempt(eng, run_id, 0, learnable, f"2 + 2 = 4 ({i})", i < 2, agent=agent, sample=i % 2)  # 2 of 4
    # a revision on the easy task is easy too; on the learnable one it stays a revision
    _attempt(eng, run_id, 0, easy, "2", True, agent="solver-a", turn=1)
    assert collect(eng.store, recipe, run_id, 0)["solver"] == 7
    sources = dict(eng.store.execute("select task_id, list(distinct source order by source) from examples "
                                     "where role = 'solver' group by task_id"))
    assert sources == {easy: ["easy"], learnable: ["first"]}
    data = training_set(eng.store, recipe, run_id, seed=0)
    # 2 learnable answers; easy ones fill easy_fraction = 0.5 of the set: 2 more
    assert len(data) == 4 and sum("1 + 1" in m[-2]["content"] for m in data) == 2
    off = base.model_copy(update={"train": base.train.model_copy(update={"roles": ["solver"], "max_per_task": 8})})
    assert len(training_set(eng.store, off, run_id, seed=0)) == 2  # easy ones stay a share: 0.2 of 2 rounds to 0
    eng.close()
    eng = Engine.open()  # with the filter off (the default) nothing is easy
    run2 = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    t = _task(eng, run2, 0, "What is 3 + 3?")
    _attempt(eng, run2, 0, t, "6", True)
    collect(eng.store, off, run2, 0)
    assert eng.store.execute("select source from examples where run_id = ?", [run2]) == [("first",)]
    eng.close()


def test_every_role_gets_examples_in_its_own_context_labelled_by_the_verifier(tiny_recipe: Path) -> None:
    from engine.agents import JUDGE_PREFIX, fill
    from engine.train.dataset import export_rows

    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    recipe = load_recipe(str(tiny_recipe))[0]
    p, agents = recipe.prompts, {a.name: a for a in recipe.agents}
    t = _task(eng, run_id, 0, "What is 23 + 58?")
    # solver-b: wrong, then fixed after a critique; solver-a: right, kept right after a critique
    wrong = _attempt(eng, run_id, 0, t, "71", False, agent="solver-b", answer="71")
    _critique(eng, run_id, 0, t, wrong, "71 is too small.")
    _attempt(eng, run_id, 0, t, "It is 81.", True, agent="solver-b", turn=1, answer="81")
    right = _attempt(eng, run_id, 0, t, "81", True, agent="solver-a", answer="81")
    _critique(eng, run_id, 0, t, right, "Looks fine.")
    _attempt(eng, run_id, 0, t, "81.", True, agent="solver-a", turn=1, answer="81")
    got = collect(eng.store, recipe, run_id, 0)
    assert got == {"solver": 2, "reviser": 2, "critic": 2, "judge": 2}
    cols, rows = export_rows(eng.store, run_id)
    ex = [dict(zip(cols, r)) for r in rows]
    for e in ex:
        e["messages"] = json.loads(e["messages"])
    by = lambda role: [e for e in ex if e["role"] == role]  # noqa: E731
    # solver: each answer in the system prompt of the agent that gave it (max_per_task = 2 per task)
    solver = by("solver")
    assert {e["source"] for e in solver} <= {"first", "revision"}
    for e in solver:
        assert e["messages"][-2]["content"] == fill(p.solve, {"task": "What is 23 + 58?"})
    assert {e["messages"][0]["content"] for e in solver} <= {agents["solver-a"].system, agents["solver-b"].system}
    # reviser: the revise prompt with the answer and critique it revised
    fix = next(e for e in by("reviser") if "71 is too small." in e["messages"][-2]["content"])
    assert fix["messages"][-2]["content"] == fill(p.revise, {"task": "What is 23 + 58?", "answer": "71",
                                                             "critique": "71 is too small."})
    assert fix["messages"][0]["content"] == agents["solver-b"].system and fix["messages"][-1]["content"] == "It is 81."
    # critic: the critique that led to a fix, and one confirmation (no more than the fixes)
    critic = sorted(by("critic"), key=lambda e: e["source"])
    assert [e["source"] for e in critic] == ["critique", "verifier"]
    assert critic[0]["messages"][-1]["content"] == "71 is too small." and critic[0]["attempt_id"] == wrong
    assert critic[1]["messages"][-1]["content"] == "The answer 81 is right." and critic[1]["attempt_id"] == right
    assert critic[0]["messages"][0]["content"] == agents["critic"].system
    # judge: as many right as wrong verdicts, from the verifier, in the judge's own context
    judge = by("judge")
    assert sorted(e["messages"][-1]["content"] for e in judge) == [JUDGE_PREFIX + "false}", JUDGE_PREFIX + "true}"]
    assert all(e["messages"][0]["content"] == agents["judge"].system for e in judge)
    wrong_verdict = next(e for e in judge if e["messages"][-1]["content"].endswith("false}"))
    assert wrong_verdict["messages"][-2]["content"] == fill(p.judge, {"task": "What is 23 + 58?", "answer": "71"})
    assert len(export_rows(eng.store, run_id, ["judge", "critic"])[1]) == 4
    # the hint phase: a critique written with the result in view, whose revision passed, trains the critic and the
    # reviser without the hint; a rationale that passed trains the solver; one that failed trains nothing
    t2 = _task(eng, run_id, 1, "What is 7 + 8?")
    w2 = _attempt(eng, run_id, 1, t2, "14", False, agent="solver-b", turn=1, answer="14")
    t3 = _task(eng, run_id, 1, "What is 9 + 9?")
    _attempt(eng, run_id, 1, t3, "17", False, turn=1, answer="17")
    eng.store.insert("hints", [
        dict(id=1, run_id=run_id, round=1, task_id=t2, attempt_id=w2, kind="critique", agent="critic",
             text="14 is one short.", reviser="solver-b", revision="15", correct=True, tokens=5, seconds=0.0),
        dict(id=2, run_id=run_id, round=1, task_id=t2, attempt_id=None, kind="rationale", agent="solver-a",
             text="7 + 8 = 15", reviser=None, revision=None, correct=True, tokens=5, seconds=0.0),
        dict(id=3, run_id=run_id, round=1, task_id=t3, attempt_id=None, kind="rationale", agent="solver-a",
             text="9 + 9 = 19", reviser=None, revision=None, correct=False, tokens=5, seconds=0.0)])
    got = collect(eng.store, recipe, run_id, 1)
    assert got == {"solver": 1, "reviser": 1, "critic": 1, "judge": 0}
    _, rows = export_rows(eng.store, run_id)
    new = {(r[5], r[6]): json.loads(r[7]) for r in rows if r[2] == 1}
    assert new[("critic", "hint")][-2]["content"] == fill(p.critique, {"task": "What is 7 + 8?", "answer": "14"})
    assert new[("critic", "hint")][-1]["content"] == "14 is one short."
    assert new[("reviser", "hint")][-2]["content"] == fill(p.revise, {"task": "What is 7 + 8?", "answer": "14",
                                                                      "critique": "14 is one short."})
    assert new[("solver", "rationale")][-2:] == [{"role": "user", "content": fill(p.solve, {"task": "What is 7 + 8?"})},
                                                 {"role": "assistant", "content": "7 + 8 = 15"}]
    assert all("15" not in m["content"] for e in new.values() for m in e[:-1])  # the hint is not in the prompt
    eng.close()


def test_permute_matches_llama_cpp_layout() -> None:
    w = np.arange(12 * 2).reshape(12, 2)
    p = permute(w, 3)  # 3 heads of 4 rows: rows (0,2,1,3) within each head
    assert p[:4, 0].tolist() == [0, 4, 2, 6]
    assert sorted(p.ravel().tolist()) == sorted(w.ravel().tolist())
    assert (permute(w, 6, 3) == permute(w, 3)).all()  # k uses the KV head count


def test_export_names_shapes_and_loads_in_llama_cpp(tmp_path: Path, tiny_model: Path) -> None:
    rng = np.random.default_rng(0)
    n_embd, n_kv, n_ff, r = 64, 32, 128, 4
    outs = {"self_attn.q_proj": n_embd, "self_attn.k_proj": n_kv, "self_attn.v_proj": n_kv, "self_attn.o_proj": n_embd,
            "mlp.gate_proj": n_ff, "mlp.up_proj": n_ff, "mlp.down_proj": n_embd}
    ins = {"mlp.down_proj": n_ff}
    state = {}
    for layer in range(2):
        for mod, out in outs.items():
            base = f"base_model.model.model.layers.{layer}.{mod}"
            state[f"{base}.lora_A.default.weight"] = rng.standard_normal((r, ins.get(mod, n_embd))).astype(np.float32) * 0.3
            state[f"{base}.lora_B.default.weight"] = rng.standard_normal((out, r)).astype(np.float32) * 0.3
    tensors = gguf_tensors(state, n_head=4, n_head_kv=2)
    assert set(tensors) == {f"blk.{i}.{n}.weight.lora_{ab}" for i in range(2)
                            for n in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
                            for ab in "ab"}
    q_b = state["base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight"]
    assert (tensors["blk.0.attn_q.weight.lora_b"] == permute(q_b, 4)).all()
    v_b = state["base_model.model.model.layers.0.self_attn.v_proj.lora_B.default.weight"]
    assert (tensors["blk.0.attn_v.weight.lora_b"] == v_b).all()
    path = tmp_path / "a.gguf"
    sha = write_adapter(path, tensors, alpha=8.0)
    assert sha == sha256_file(path) and not list(tmp_path.glob("*.part"))
    assert check_gguf(path).architecture == "llama"
    with Runtime(tiny_model, n_ctx=256, n_parallel=1) as rt:
        req = Request(prompt="hello", sampling=Sampling(temperature=0.0, max_tokens=8))
        base = rt.generate(req).text
        rt.set_adapter(path).result(timeout=30)
        assert rt.generate(req).text != base


def test_score_and_gate(tiny_runtime: Runtime, tiny_recipe: Path) -> None:
    import random

    recipe = load_recipe(str(tiny_recipe))[0]
    tasks = [TaskRow(i, t) for i, t in enumerate(ARITH.generate(random.Random(0), 2, 5))]
    sc, texts = score(tiny_runtime, recipe, tasks)
    assert sc.n == 5 and len(texts) == 5 and sc.ci_low <= sc.accuracy <= sc.ci_high
    assert sorted(sc.outcomes) == list(range(5)) and sum(sc.outcomes.values()) == sc.correct
    assert bootstrap_ci([True, True, False, False], 200, seed=3) == bootstrap_ci([True, True, False, False], 200, seed=3)


def test_gate_is_a_paired_test_against_every_reference() -> None:
    ref = {i: i < 60 for i in range(100)}  # 60% right
    same = dict(ref)
    assert gate(same, {"base": ref}, 0.05)[0]
    # 3 points lower overall, losing 8 tasks and winning 5: noise by the pairing, yet no better:
    # dropped, since the next round retrains from the base anyway
    noisy = {i: (i < 52) or (60 <= i < 65) for i in range(100)}
    assert paired(noisy, ref).worse == 8 and paired(noisy, ref).better == 5
    assert paired(noisy, ref).p_worse > 0.05
    keep, why, _ = gate(noisy, {"base": ref}, 0.05)
    assert not keep and why.endswith("loses more than it wins against base: dropped")
    # the mirror, 3 points higher, winning 8 and losing 5: kept; a tie (4 and 4) too
    higher = {i: (i < 55) or (60 <= i < 68) for i in range(100)}
    assert (paired(higher, ref).worse, paired(higher, ref).better) == (5, 8) and gate(higher, {"base": ref}, 0.05)[0]
    tie = {i: (i < 56) or (60 <= i < 64) for i in range(100)}
    assert (paired(tie, ref).worse, paired(tie, ref).better) == (4, 4) and gate(tie, {"base": ref}, 0.05)[0]
    # 8 points lower, every loss on a task the reference had right: worse
    lower = {i: i < 52 for i in range(100)}
    keep, why, numbers = gate(lower, {"base": {i: False for i in range(100)}, "best kept #4": ref}, 0.05)
    assert not keep and "best kept #4" in why and "dropped" in why
    assert numbers["vs"]["best kept #4"]["worse"] == 8 and numbers["vs"]["best kept #4"]["p_worse"] < 0.05
    assert numbers["vs"]["base"]["better"] == 52


@pytest.mark.slow
def test_two_rounds_train_export_swap_evaluate_on_the_real_model(tmp_path: Path) -> None:
    recipe = small_recipe(tmp_path, "builtin:smollm2-135m", **{
        "steps = 30": "steps = 3", "difficulty = 2": "difficulty = 1", "generated = 24": "generated = 8",
    })
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=2, train=True)
    assert eng.play(run_id) == "finished"
    q = eng.store.execute
    done = q("select round, backend, backend_reason, status, loss_curve from training_runs where run_id = ? and status = 'done'", [run_id])
    assert done, q("select round, status, error from training_runs")
    for _rnd, backend, reason, _status, curve in done:
        assert backend in {"unsloth", "peft"} and reason and len(json.loads(curve)) == 3
    adapters = q("select id, round, path, sha256, export_cosine, promoted, decision from adapters where run_id = ?", [run_id])
    assert adapters
    for aid, rnd, path, sha, cos, promoted, decision in adapters:
        assert Path(path).exists() and sha256_file(path) == sha
        assert (Path(path).parent / "peft" / "adapter_model.safetensors").exists()  # the PEFT copy vLLM loads
        assert cos >= EXPORT_COSINE_MIN and decision
        evals = q("select adapter_id, n, accuracy, ci_low, ci_high from evals where run_id = ? and round = ?", [run_id, rnd])
        assert any(e[0] == aid for e in evals) and all(e[3] <= e[2] <= e[4] for e in evals)
    promoted = [a for a in adapters if a[5]]
    assert eng._runtime is not None and eng._runtime.serves(promoted[-1][2] if promoted else None)  # hot-swapped
    assert len({a[2] for a in adapters}) == len(adapters)  # one file per adapter, none overwritten
    # the gate read dev sets only, with each task's outcome kept; nothing in the loop scored a test set
    assert {r[0] for r in q("select pool from evals where run_id = ?", [run_id])} == {"dev"}
    assert q("select count(*) from evals e where run_id = ? and not exists "
             "(select 1 from eval_answers a where a.eval_id = e.id)", [run_id])[0][0] == 0
    for a in adapters:
        numbers = json.loads(q("select gate from adapters where id = ?", [a[0]])[0][0])
        assert numbers["test"].startswith("exact") and numbers["facts"]["n"] == 16  # forgetting checked too
        assert numbers["facts"]["base"] >= 12  # the base model knows the facts it is checked on
    assert q("select count(*) from rounds where run_id = ? and status = 'complete'", [run_id])[0][0] == 2
    # one warm training worker did both rounds' prepare, train and export, and ended with the play
    log = (eng.home / "runs" / str(run_id) / "trainer.log").read_text()
    assert log.count(" ready") == 1 and log.count("== train") == 2 and log.count("== export") == 2
    assert eng._trainer is None
    assert q("select count(*) from examples where run_id = ? and source = 'replay'", [run_id])[0][0] > 0
    # what the curriculum reads: the adapter in use after each gate, per skill on the dev sets and at the level
    n_dev = q("select count(*) from tasks where run_id = ? and task_set in ('dev-1', 'dev-2')", [run_id])[0][0]
    for rnd in (0, 1):
        level, dev_score = q("select difficulty, dev_score from rounds where run_id = ? and round = ?", [run_id, rnd])[0]
        rows = q("select adapter_id, skill, n from skill_scores where run_id = ? and round = ? and source = 'dev'",
                 [run_id, rnd])
        in_use = {r[0] for r in rows}
        assert len(in_use) == 1 and dict((sk, n) for _, sk, n in rows)["terms:2"] >= n_dev // 2
        acc = q("select accuracy from evals where run_id = ? and round <= ? and eval_set = ? and adapter_id is not "
                "distinct from ? order by id desc limit 1", [run_id, rnd, f"dev-{level}", in_use.pop()])
        assert acc and dev_score == pytest.approx(acc[0][0])
    eng.close()


def test_curriculum_follows_dev_scores_and_says_why(tiny_recipe: Path) -> None:
    eng = Engine.open()
    recipe = load_recipe(str(tiny_recipe))[0]
    run_id = eng.create_run(str(tiny_recipe), rounds=6, train=True)
    s = eng.store
    first = eng._plan(run_id, 0, recipe)
    assert first.level == recipe.task.difficulty == 2 and "round 0" in first.reason
    assert sum(first.mix.values()) == recipe.task.generated and first.mix.get(3, 0) >= 1  # next level mixed in
    # task.ahead_share: a share spread over the levels two and more above, said in the reason
    from engine.curriculum import plan

    ahead = recipe.model_copy(update={"task": recipe.task.model_copy(update={"generated": 40, "ahead_share": 0.2})})
    glimpse = plan(s, run_id, 0, ahead)
    assert glimpse.mix == {2: 22, 3: 10, 4: 2, 5: 2, 6: 1, 7: 1, 8: 1, 9: 1}
    assert glimpse.reason.endswith("10 from level 3, 2 from level 4, 2 from level 5, 1 from level 6, 1 from level 7, "
                                   "1 from level 8 and 1 from level 9")
    # task.ahead_top: that share of the tasks ahead from the top level (the recipe's aim), the rest even
    aim = ahead.model_copy(update={"task": ahead.task.model_copy(update={"ahead_top": 0.5})})
    assert plan(s, run_id, 0, aim).mix == {2: 22, 3: 10, 4: 1, 5: 1, 6: 1, 7: 1, 9: 4}

    def done(rnd: int, level: int, dev: float | None) -> None:
        s.insert("rounds", [dict(run_id=run_id, round=rnd, status="complete", phase="evaluate", difficulty=level,
                                 dev_score=dev)])

    done(0, 2, 0.9)
    nxt = eng._plan(run_id, 1, recipe)
    assert nxt.level == 3 and "passed 80%" in nxt.reason  # the adapter in use passes 90% of dev-2: harder
    done(1, 3, 0.1)
    assert eng._plan(run_id, 2, recipe).level == 3  # one bad round at a new level is not enough to go down
    done(2, 3, 0.11)  # under 20% again and not rising (0.15 would be rising: it stays, see next_level)
    down = eng._plan(run_id, 3, recipe)
    assert down.level == 2 and "two rounds in a row, not rising" in down.reason
    done(3, 2, 0.5)
    done(4, 2, 0.5)
    done(5, 2, 0.51)
    stalled = eng._plan(run_id, 6, recipe)
    assert stalled.level == 3 and "stopped rising" in stalled.reason
    # a level whose train data ran out: round 6 asked for 4 tasks at level 1 and the generator found 2
    s.insert("rounds", [dict(run_id=run_id, round=6, status="complete", phase="evaluate", difficulty=1, dev_score=0.5,
                             mix={"1": 4})])
    s.insert("tasks", [dict(id=900 + i, run_id=run_id, round=6, source="generated", domain="arith", difficulty=1,
                            prompt=f"What is {i} + 1?", reference=str(i + 1), fingerprint=f"x{i}", held_out=False,
                            pool="train") for i in range(2)])
    moved = eng._plan(run_id, 7, recipe)
    assert moved.level == 2 and "ran out of new train tasks at level 1" in moved.reason
    eng.close()


def test_imported_sets_are_test_sets_the_gate_never_reads(tmp_path: Path) -> None:
    from engine.pools import dev_sets, report_sets
    from engine.task_sets import import_jsonl
    from tests.test_tasks import HUMANEVAL

    f = tmp_path / "mini.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in HUMANEVAL))
    py = Path(__file__).resolve().parent.parent / "recipes" / "python.toml"
    recipe_path = tmp_path / "py.toml"
    recipe_path.write_text(py.read_text().replace("dev = 20\ntest = 20", "dev = 2\ntest = 2"))
    eng = Engine.open()
    import_jsonl(eng.store, f)
    recipe = load_recipe(str(recipe_path))[0]
    run_id = eng.create_run(str(recipe_path), rounds=1, train=True)
    assert list(dev_sets(eng.store, run_id, recipe, recipe.task.difficulty)) == ["dev-2", "dev-3"]
    sets = report_sets(eng.store, run_id, recipe)
    assert list(sets) == [f"test-{lvl}" for lvl in range(1, 6)] + ["imported:mini", "facts-test"]
    assert len(sets["imported:mini"]) == 3
    arith = load_recipe("default")[0]
    assert "imported:mini" not in report_sets(eng.store, run_id, arith, [2])  # another domain's sets stay out
    eng.close()


def test_worker_errors_reach_the_caller_with_their_cause(tmp_path: Path) -> None:
    from engine.errors import TrainingError
    from engine.train.runner import run_worker

    with pytest.raises(TrainingError, match=r"KeyError: 'no-such-command'"):
        run_worker("no-such-command", {}, tmp_path / "worker.log")


def test_round_skips_training_below_min_examples(tmp_path: Path, tiny_model: Path) -> None:
    from engine.events import AdapterPromoted

    recipe = small_recipe(tmp_path, tiny_model, **{"max_per_task = 2": "max_per_task = 2\nmin_examples = 1000"})
    eng = Engine.open()
    seen: list[AdapterPromoted] = []
    eng.subscribe(lambda e: seen.append(e) if isinstance(e, AdapterPromoted) else None)
    run_id = eng.create_run(str(recipe), rounds=1, train=True)
    assert eng.play(run_id) == "finished"
    q = eng.store.execute
    rows = q("select status, error from training_runs where run_id = ?", [run_id])
    assert len(rows) == 1 and rows[0][0] == "skipped" and "min_examples is 1000" in rows[0][1]
    assert q("select count(*) from adapters where run_id = ?", [run_id])[0][0] == 0
    assert seen and "training skipped" in seen[0].reason
    eng.close()


def test_an_example_is_counted_cut_only_when_it_runs_past_max_seq_len() -> None:
    from engine.train.worker import encode

    class Chars:  # one token per character
        def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
            return {"input_ids": [ord(c) for c in text]}

    class Template:
        def render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
            return "".join(f"{m['role'][0]}:{m['content']};" for m in messages) + ("a:" if add_generation_prompt else "")

    msgs = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "12345"}]  # u:Q;a:12345; is 12
    ids, labels, cut = encode(Chars(), Template(), msgs, 12)  # type: ignore[misc]
    assert len(ids) == 12 and not cut and labels[:6] == [-100] * 6
    ids, labels, cut = encode(Chars(), Template(), msgs, 11)  # type: ignore[misc]
    assert len(ids) == 11 and cut
    assert encode(Chars(), Template(), msgs, 8) is None  # the prompt (6) leaves too little room


def test_warm_start_continues_from_earlier_lora_weights(tmp_path: Path, tiny_model: Path) -> None:
    """A second training run given the first one's lora.npz starts from those weights (with a
    vanishing learning rate it ends where it began); other ranks are refused by name."""
    from engine.errors import TrainingError
    from engine.train.runner import run_worker

    log = tmp_path / "worker.log"
    prep = run_worker("prepare", {"home": str(tmp_path), "gguf": str(tiny_model)}, log)
    data = tmp_path / "examples.jsonl"
    msgs = [[{"role": "user", "content": f"What is {i} + 2?"}, {"role": "assistant", "content": str(i + 2)}] for i in range(6)]
    msgs.append([{"role": "user", "content": "Count."}, {"role": "assistant", "content": " ".join(map(str, range(80)))}])
    data.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    cfg = {"base_dir": prep["base_dir"], "gguf": str(tiny_model), "examples": str(data), "rank": 4, "alpha": 8,
           "dropout": 0.0, "learning_rate": 1e-2, "steps": 3, "batch_size": 2, "max_seq_len": 64,
           "targets": ["q_proj", "v_proj"], "seed": 0, "backend": "peft"}
    said: list[str] = []
    out = run_worker("train", {**cfg, "out": str(tmp_path / "first.npz")}, log, on_log=said.append)
    assert out["n_examples"] == 7 and out["n_cut"] == 1  # the long one is cut at max_seq_len, and said so
    assert any(line.startswith("1 of 7 examples run past train.max_seq_len (64 tokens)") for line in said)
    first = dict(np.load(tmp_path / "first.npz"))
    assert any(np.abs(v).sum() > 0 for k, v in first.items() if "lora_B" in k)  # B starts at zero: it trained
    run_worker("train", {**cfg, "learning_rate": 1e-12, "steps": 1, "init": str(tmp_path / "first.npz"),
                         "out": str(tmp_path / "second.npz")}, log)
    second = dict(np.load(tmp_path / "second.npz"))
    assert set(second) == set(first)
    assert all(np.allclose(first[k], second[k], atol=1e-6) for k in first)
    with pytest.raises(TrainingError, match="rank or targets changed"):
        run_worker("train", {**cfg, "rank": 8, "init": str(tmp_path / "first.npz"), "out": str(tmp_path / "x.npz")}, log)


def test_the_warm_trainer_keeps_one_worker_resets_the_lora_and_survives_a_crash(tmp_path: Path,
                                                                               tiny_model: Path) -> None:
    """Two trainings in one warm worker: the second starts from the base (its first loss, on the
    same data and seed, equals the first training's: LoRA B is zero again), says it is warm, and
    exports an adapter that passes the check. A killed worker is replaced on the next call; a
    cancel kills it and the next call starts another."""
    import threading

    from engine.errors import TrainingError
    from engine.train.runner import Trainer, TrainConfig, train_lora

    spec = load_recipe("default")[0].train.model_copy(update={"steps": 3, "rank": 4, "alpha": 8, "batch_size": 2,
                                                              "max_seq_len": 64, "backend": "peft"})
    msgs = [[{"role": "user", "content": f"What is {i} + 2?"}, {"role": "assistant", "content": str(i + 2)}] for i in range(6)]
    trainer = Trainer(tmp_path / "trainer.log")
    lines: list[str] = []

    def cfg(name: str, steps: int = 3) -> TrainConfig:
        return TrainConfig(home=tmp_path, gguf=tiny_model, workdir=tmp_path / name,
                           spec=spec.model_copy(update={"steps": steps}), seed=3, check_prompts=["What is 12 + 30?"])

    try:
        first = train_lora(cfg("a"), msgs, trainer=trainer, on_log=lines.append)
        pid = trainer.pid
        second = train_lora(cfg("b"), msgs, trainer=trainer, on_log=lines.append)
        assert trainer.starts == 1 and trainer.pid == pid
        assert second.loss_curve[0] == pytest.approx(first.loss_curve[0], abs=1e-4)
        assert [x for x in lines if x.startswith("training with")][1].endswith(", warm")
        assert first.cosine >= EXPORT_COSINE_MIN and second.cosine >= EXPORT_COSINE_MIN
        assert first.adapter_path != second.adapter_path

        assert trainer._proc is not None
        trainer._proc.kill()  # a crash between rounds
        trainer._proc.wait()
        third = train_lora(cfg("c"), msgs, trainer=trainer)
        assert trainer.starts == 2 and third.cosine >= EXPORT_COSINE_MIN

        cancel = threading.Event()
        with pytest.raises(TrainingError, match="cancelled"):
            train_lora(cfg("d", steps=2000), msgs, trainer=trainer, cancel=cancel, on_progress=lambda *a: cancel.set())
        assert trainer._proc is None
        train_lora(cfg("e"), msgs, trainer=trainer)
        assert trainer.starts == 3
    finally:
        trainer.close()
    assert trainer._proc is None


def _fake_trainer(calls: list[tuple[Any, list[Any]]]) -> Any:
    """A stand-in for ``train_lora`` (the real one is tested end to end elsewhere): it writes a
    different random tiny adapter each call, in its own file, and records ``(config, examples)``."""
    from engine.train.runner import Trained
    from tests.tiny_model import write_tiny_lora

    def fake_train(cfg, examples, cancel=None, on_progress=None, on_log=None, trainer=None):  # type: ignore[no-untyped-def]
        out = cfg.workdir / "adapter.gguf"
        assert not out.exists(), "an adapter file would be overwritten"
        cfg.workdir.mkdir(parents=True, exist_ok=True)
        write_tiny_lora(out, seed=len(calls) + 1)
        calls.append((cfg, examples))
        return Trained("peft", "fake", cfg.spec.steps, [1.0], 1.0, 1.0, 1.0, len(examples), out, sha256_file(out), 1.0)

    return fake_train


def test_epochs_give_a_round_enough_steps_for_its_training_set(tmp_path: Path, tiny_model: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """train.epochs: a round's steps grow with its training set (never under train.steps)."""
    from engine.train import runner

    recipe = small_recipe(tmp_path, tiny_model, **{"max_per_task = 2": "max_per_task = 2\nmin_examples = 1\nepochs = 2",
                                                   "steps = 30": "steps = 3"})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    eng.store.insert("examples", [dict(id=i, run_id=run_id, round=0, task_id=None, attempt_id=None, source="verified",
                                       messages=[{"role": "user", "content": f"What is {i} + 1?"},
                                                 {"role": "assistant", "content": str(i + 1)}])
                                  for i in eng.store.allocate_ids("examples", 40)])
    calls: list[tuple[Any, list[Any]]] = []
    monkeypatch.setattr(runner, "train_lora", _fake_trainer(calls))
    eng.train_now(run_id)
    (cfg, examples), = calls
    steps, n = eng.store.execute("select steps, n_examples from training_runs where run_id = ?", [run_id])[0]
    assert n == len(examples) >= 40 and steps == cfg.spec.steps == math.ceil(2 * n / 8) > 3  # 2 passes, batches of 8
    eng.close()


def test_train_now_twice_gives_two_adapters_each_scored_on_its_own(tmp_path: Path, tiny_model: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Training stands in with a fake that writes a different random adapter each time (the
    real one is tested end to end elsewhere); each lands in its own file and is scored itself."""
    from engine.train import runner

    # task.target_high = 0.01: any level below its answers pass counts as learnt (the tiny model gets few right)
    recipe = small_recipe(tmp_path, tiny_model, **{"max_per_task = 2": "max_per_task = 2\nmin_examples = 1",
                                                   "[eval]": "[eval]\nrecall_learnt = 0.0\nrecall_test = \"paired\""})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    eng.store.insert("examples", [dict(id=eng.store.allocate_ids("examples", 1)[0], run_id=run_id, round=0, task_id=None,
                                       attempt_id=None, source="verified",
                                       messages=[{"role": "user", "content": "What is 1 + 1?"},
                                                 {"role": "assistant", "content": "2"}])])
    monkeypatch.setattr(runner, "train_lora", _fake_trainer([]))
    eng.train_now(run_id)
    eng.train_now(run_id)
    q = eng.store.execute
    adapters = q("select id, path, sha256, decision from adapters where run_id = ? order by id", [run_id])
    assert len(adapters) == 2 and adapters[0][1] != adapters[1][1]
    for _aid, path, sha, decision in adapters:
        assert sha256_file(path) == sha and decision
    answers = {}
    for aid, *_ in adapters:
        rows = q("select a.task_id, a.text from evals e join eval_answers a on a.eval_id = e.id "
                 "where e.run_id = ? and e.adapter_id = ? and e.eval_set = 'dev-2' order by a.task_id", [run_id, aid])
        assert rows, f"adapter {aid} was not scored"
        answers[aid] = rows
    first, second = answers.values()
    assert first != second  # the second adapter's own weights answered, not the first's
    # the round's level is 2: each new adapter was also scored on level 1's recall sample, against
    # the adapter in use then (the base model for the first, the first if kept for the second), level 1
    # counting as learnt (eval.recall_learnt = 0)
    for aid, _path, _sha, decision in adapters:
        gate_numbers = json.loads(q("select gate from adapters where id = ?", [aid])[0][0])
        assert gate_numbers["recall"]["n"] == 6 and "recall-1" in gate_numbers["sets"]
        assert "levels below" in decision
        # eval.recall_test = "paired": the loss on them is weighed by the paired test at eval.alpha
        assert gate_numbers["recall"]["alpha"] == 0.05 and 0.0 <= gate_numbers["recall"]["p_worse"] <= 1.0
        assert f"p={gate_numbers['recall']['p_worse']:.3f}" in decision
    scored = {r[0] for r in q("select coalesce(adapter_id, 0) from evals where run_id = ? and eval_set = 'recall-1'",
                              [run_id])}
    assert {0, adapters[0][0], adapters[1][0]} <= scored
    eng.close()


def test_the_base_model_is_scored_on_a_new_level_only_while_it_is_in_use(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While no adapter is in use the gate scores the base model on every dev set of the round;
    once one is, a level the base model was never scored on (dev-4 here, the round having moved to
    level 3) is scored for the adapter in use and the new one only, and the base model stays a
    reference on the sets it was scored on before (dev-3)."""
    from engine.train import runner

    recipe = small_recipe(tmp_path, tiny_model, **{"max_per_task = 2": "max_per_task = 2\nmin_examples = 1"})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    q = eng.store.execute
    eng.store.insert("examples", [dict(id=eng.store.allocate_ids("examples", 1)[0], run_id=run_id, round=0, task_id=None,
                                       attempt_id=None, source="verified",
                                       messages=[{"role": "user", "content": "What is 1 + 1?"},
                                                 {"role": "assistant", "content": "2"}])])
    monkeypatch.setattr(runner, "train_lora", _fake_trainer([]))

    def scored_sets(adapter_id: int | None) -> set[str]:
        return {r[0] for r in q("select eval_set from evals where run_id = ? and adapter_id is not distinct from ? "
                                "and eval_set like 'dev-%'", [run_id, adapter_id])}

    eng.train_now(run_id)  # round 0 at level 2: the base model is in use, scored on dev-2 and dev-3
    (first,) = [r[0] for r in q("select id from adapters where run_id = ?", [run_id])]
    assert scored_sets(None) == {"dev-2", "dev-3"} and scored_sets(first) == {"dev-2", "dev-3"}
    q("update adapters set promoted = true where id = ?", [first])  # in use, whatever its gate said
    q("update rounds set difficulty = 3 where run_id = ? and round = 0", [run_id])
    eng.train_now(run_id)  # level 3: dev-3 and dev-4
    second = q("select max(id) from adapters where run_id = ?", [run_id])[0][0]
    assert scored_sets(None) == {"dev-2", "dev-3"}  # not dev-4
    assert scored_sets(first) == {"dev-2", "dev-3", "dev-4"} and scored_sets(second) == {"dev-3", "dev-4"}
    numbers = json.loads(q("select gate from adapters where id = ?", [second])[0][0])
    n3, n4 = (q("select count(*) from tasks where run_id = ? and task_set = ?", [run_id, s])[0][0]
              for s in ("dev-3", "dev-4"))
    assert n4 > 0 and numbers["vs"]["base"]["n"] == n3 and numbers["vs"][f"best kept #{first}"]["n"] == n3 + n4
    right = q("select sum(correct) from evals where run_id = ? and adapter_id = ? and eval_set in ('dev-3', 'dev-4')",
              [run_id, second])[0][0]
    decision = q("select decision from adapters where id = ?", [second])[0][0]
    assert decision.startswith(f"dev {right / (n3 + n4):.1%} vs base ")  # the head counts every dev task
    eng.close()


def test_the_gate_drops_an_adapter_that_forgets_the_levels_below() -> None:

    dev = {i: i < 50 for i in range(100)}
    in_use_below = {100 + i: True for i in range(40)}
    # 3 of 40 lost and 1 won on the levels below: within the 10% allowed, kept
    keep, why, numbers = gate(dev, {"base": dev}, 0.05, None,
                              (in_use_below | {140: False}, {100 + i: i >= 3 for i in range(40)} | {140: True}, 0.1))
    assert keep and numbers["recall"] == {"n": 41, "in_use": 40, "new": 38, "lost": 3, "won": 1, "net_allowed": 4}
    assert "levels below 38/41 (in use 40)" in why
    # level 1 forgotten (seen on seed 9: test-1 from 100% to 14% while levels 2 and 3 rose): dropped
    # even though it wins on the round's own dev tasks
    better = {i: i < 60 for i in range(100)}
    keep, why, _ = gate(better, {"base": dev}, 0.05, None, (in_use_below, {100 + i: i >= 30 for i in range(40)}, 0.1))
    assert not keep and why.endswith("forgot the levels below: lost 30 of 40 tasks, won 0 (net allowed 4): dropped")


def test_the_paired_recall_test_weighs_the_loss_against_the_sample() -> None:
    """eval.recall_test = "paired": seed 9's first adapter (default recipe, Intel host) lost 7 of
    the 13 of 16 one-digit sums the base model got right and won 3; net 4 is over the 1 a share of 0.1 allows, so
    "share" drops it (and the curriculum, seeing no gain, stepped down a level), while the paired
    test calls it noise (p = 0.172) and keeps it. A loss the test calls significant still drops."""
    dev, better = {i: i < 10 for i in range(100)}, {i: i < 60 for i in range(100)}
    in_use = {i: i < 13 for i in range(16)}  # 13 of 16 right
    new = {i: 7 <= i for i in range(16)}  # tasks 0-6 lost, 13-15 won
    numbers = gate(better, {"base": dev}, 0.05, None, (in_use, new, 0.1))[2]["recall"]
    assert (numbers["lost"], numbers["won"], numbers["net_allowed"]) == (7, 3, 1)
    assert not gate(better, {"base": dev}, 0.05, None, (in_use, new, 0.1))[0]
    keep, why, numbers = gate(better, {"base": dev}, 0.05, None, (in_use, new, 0.1), 0.05)
    assert keep and round(numbers["recall"]["p_worse"], 3) == 0.172 and "(in use 13), lost 7, won 3, p=0.172: not" in why
    # 30 of 40 lost, none won: p < 0.05, dropped all the same
    keep, why, _ = gate(better, {"base": dev}, 0.05, None,
                        ({i: True for i in range(40)}, {i: i >= 30 for i in range(40)}, 0.1), 0.05)
    assert not keep and why.endswith("(net allowed 4, p < 0.05): dropped")


def test_recall_sets_are_the_first_dev_tasks_of_each_level_below(tmp_path: Path, tiny_model: Path) -> None:
    from engine.pools import pool_tasks, recall_sets

    recipe_path = small_recipe(tmp_path, tiny_model)
    eng = Engine.open()
    run_id = eng.create_run(str(recipe_path), rounds=1, train=True)
    recipe = load_recipe(str(recipe_path))[0]
    assert recall_sets(eng.store, run_id, recipe, 1) == {}  # nothing below level 1
    small = recipe.model_copy(update={"eval": recipe.eval.model_copy(update={"recall": 4})})
    sets = recall_sets(eng.store, run_id, small, 4)
    assert list(sets) == ["recall-1", "recall-2", "recall-3"]
    for lvl in (1, 2, 3):
        assert [t.id for t in sets[f"recall-{lvl}"]] == [t.id for t in pool_tasks(eng.store, run_id, "dev", lvl)[:4]]
    off = recipe.model_copy(update={"eval": recipe.eval.model_copy(update={"recall": 0})})
    assert recall_sets(eng.store, run_id, off, 4) == {}
    eng.close()


def _per_role_run(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, train: str,
                  warm: bool = False) -> tuple[Engine, int, list[tuple[Any, list[Any]]]]:
    """A run of the small recipe with per-role adapters (20 steps, min_examples 2, plus ``train``'s
    lines in [train]), round 0 played without training, ``_role_examples`` added, then trained
    by ``_fake_trainer`` (``warm``: each training also leaves the lora.npz warm_start continues
    from); returns the engine, the run and the trainer's calls."""
    from engine.train import runner

    recipe = small_recipe(tmp_path, tiny_model, **{
        "max_per_task = 2": f'max_per_task = 2\nmin_examples = 2\nadapters = "per-role"\n{train}',
        "steps = 30": "steps = 20"})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    _role_examples(eng, run_id)
    calls: list[tuple[Any, list[Any]]] = []
    fake = _fake_trainer(calls)

    def with_lora(cfg, examples, **kw):  # type: ignore[no-untyped-def]
        out = fake(cfg, examples, **kw)
        (cfg.workdir / "lora.npz").write_bytes(b"")  # what warm_start continues from
        return out

    monkeypatch.setattr(runner, "train_lora", with_lora if warm else fake)
    eng.train_now(run_id)
    return eng, run_id, calls


def _record_served(monkeypatch: pytest.MonkeyPatch, eng: Engine, run_id: int,
                   names: dict[str, str]) -> list[tuple[str, str]]:
    """Every request the run's runtime serves from now on, as (role, the name ``names`` gives the
    adapter's sha256 it ran under, else "base")."""
    rt = eng.runtime_for(eng.run_info(run_id).recipe, run_id)
    served: list[tuple[str, str]] = []
    submit = rt.submit_many

    def recording(reqs):  # type: ignore[no-untyped-def]
        reqs = list(reqs)
        served.extend((r.role, names.get(rt.adapter_sha256, "base")) for r in reqs)
        return submit(reqs)

    monkeypatch.setattr(rt, "submit_many", recording)
    return served


def _role_examples(eng: Engine, run_id: int) -> None:
    """Round 0's examples by hand: 6 solver, 3 critic, 3 judge, 1 reviser (each message names its role)."""
    tid = eng.store.execute("select id from tasks where run_id = ? and pool = 'train' and rejected_reason is null "
                            "limit 1", [run_id])[0][0]
    rows = []
    for role, n, reply in (("solver", 6, "3"), ("critic", 3, "The answer 3 is right."), ("judge", 3, "VERDICT: right"),
                           ("reviser", 1, "3")):
        for i in range(n):
            rows.append(dict(id=eng.store.allocate_ids("examples", 1)[0], run_id=run_id, round=0, task_id=tid,
                             attempt_id=None, role=role, source="verified",
                             messages=[{"role": "user", "content": f"{role} question {i}"},
                                       {"role": "assistant", "content": reply}]))
    eng.store.insert("examples", rows)


def test_role_steps_keep_the_solvers_steps(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train.role_steps: with per-role adapters the solver trains the round's steps, each other
    role with examples the fixed number, however many examples it has; a shared adapter refuses it."""
    eng, run_id, calls = _per_role_run(tmp_path, tiny_model, monkeypatch, "role_steps = 3")
    runs = {r[0]: r[1:] for r in eng.store.execute(
        "select role, status, steps, n_examples from training_runs where run_id = ?", [run_id])}
    assert runs["solver"] == ("done", 20, 6) and runs["critic"] == ("done", 3, 3) and runs["judge"] == ("done", 3, 3)
    assert runs["reviser"][0] == "skipped"
    assert sorted(cfg.spec.steps for cfg, _ in calls) == [3, 3, 20]
    eng.close()
    shared = small_recipe(tmp_path, tiny_model, **{"max_per_task = 2": "max_per_task = 2\nrole_steps = 3"})
    with pytest.raises(RecipeError, match=r"small.toml: .*train.role_steps: 3 needs train.adapters = 'per-role'"):
        load_recipe(str(shared))


def test_role_fallback_runs_roles_without_an_adapter_under_the_solvers(tmp_path: Path, tiny_model: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """train.role_fallback = "solver": with per-role adapters a role without a kept adapter of its
    own runs under the solver's in use (the base model with "base"), one with its own under that;
    the next round serves them so; with warm_start the solver trains first and the other roles
    start from its new adapter; a shared adapter refuses the setting."""
    from engine.roles import BASE, roles_in_use

    eng, run_id, calls = _per_role_run(tmp_path, tiny_model, monkeypatch, 'role_fallback = "solver"\nwarm_start = true\n'
                                       'roles = ["critic", "judge", "solver", "reviser"]', warm=True)
    q = eng.store.execute
    ads = {r[0]: r[1:] for r in q("select role, id, path, sha256 from adapters where run_id = ?", [run_id])}
    # the solver first (whatever train.roles' order), from nothing; the others from its new adapter
    first, rest = calls[0][0], [cfg for cfg, _ in calls[1:]]
    assert first.init_lora is None and first.workdir == Path(ads["solver"][1]).parent and len(rest) == 2
    assert all(cfg.init_lora == Path(ads["solver"][1]).with_name("lora.npz") for cfg in rest)
    q("update adapters set promoted = false where run_id = ?", [run_id])  # whatever the gate said
    eng.use_adapter(ads["solver"][0])
    solver = tuple(ads["solver"])
    assert roles_in_use(eng.store, run_id, fallback=True) == {r: solver for r in ("solver", "critic", "reviser", "judge")}
    assert roles_in_use(eng.store, run_id) == {"solver": solver, "critic": BASE, "reviser": BASE, "judge": BASE}
    eng.use_adapter(ads["critic"][0])
    in_use = roles_in_use(eng.store, run_id, fallback=True)
    assert in_use["critic"] == tuple(ads["critic"]) and in_use["judge"] == in_use["reviser"] == solver

    served = _record_served(monkeypatch, eng, run_id, {ads["solver"][2]: "solver", ads["critic"][2]: "critic"})
    assert eng.play(run_id, rounds=2) == "finished"
    assert {a for r, a in served if r in ("solver", "judge")} == {"solver"}
    assert {a for r, a in served if r == "critic"} == {"critic"} and ("proposer", "base") in served
    eng.close()
    shared = small_recipe(tmp_path, tiny_model, **{"max_per_task = 2": 'max_per_task = 2\nrole_fallback = "solver"'})
    with pytest.raises(RecipeError, match=r"train.role_fallback: 'solver' needs train.adapters = 'per-role'"):
        load_recipe(str(shared))


def test_joint_critic_reviser_trains_one_adapter_for_both(tmp_path: Path, tiny_model: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """train.joint_critic_reviser: with per-role adapters the critic and the reviser train one
    adapter on both roles' examples (train.role_steps steps), recorded for each role; the gate
    decides them together, promoting one by hand promotes both, and the next round serves both
    roles under it; a shared adapter refuses the setting."""
    from engine.roles import roles_in_use

    eng, run_id, calls = _per_role_run(tmp_path, tiny_model, monkeypatch, "joint_critic_reviser = true\nrole_steps = 3")
    q = eng.store.execute
    runs = {r[0]: r[1:] for r in q("select role, status, steps, n_examples from training_runs where run_id = ?", [run_id])}
    # the reviser's one example alone is below train.min_examples (2); with the critic's three it trains
    assert runs == {"solver": ("done", 20, 6), "critic+reviser": ("done", 3, 4), "judge": ("done", 3, 3)}
    assert len(calls) == 3
    joint = next(ex for cfg, ex in calls if cfg.spec.steps == 3 and len(ex) == 4)
    assert sorted(m[0]["content"].split()[0] for m in joint) == ["critic"] * 3 + ["reviser"]
    ads = {r[0]: r[1:] for r in q("select role, id, path, sha256, training_run_id, decision, promoted from adapters "
                                  "where run_id = ?", [run_id])}
    assert set(ads) == {"solver", "critic", "reviser", "judge"}
    assert ads["critic"][1:4] == ads["reviser"][1:4] and ads["critic"][0] != ads["reviser"][0]
    assert "with the new critic and reviser" in ads["critic"][4] and ads["critic"][4:] == ads["reviser"][4:]
    eng.use_adapter(ads["reviser"][0])  # by hand: both roles it was trained for
    in_use = roles_in_use(eng.store, run_id)
    assert in_use["critic"][1] == in_use["reviser"][1] == ads["critic"][1]
    assert {in_use["critic"][0], in_use["reviser"][0]} == {ads["critic"][0], ads["reviser"][0]}
    served = _record_served(monkeypatch, eng, run_id, {ads["critic"][2]: "debate"})
    assert eng.play(run_id, rounds=2) == "finished"
    revisions = q("select count(*) from attempts where run_id = ? and round = 1 and turn > 0", [run_id])[0][0]
    assert {a for r, a in served if r == "critic"} == {"debate"}
    assert sum(1 for r, a in served if r == "solver" and a == "debate") == revisions > 0
    eng.close()
    shared = small_recipe(tmp_path, tiny_model, **{"max_per_task = 2": "max_per_task = 2\njoint_critic_reviser = true"})
    with pytest.raises(RecipeError, match=r"train.joint_critic_reviser needs train.adapters = 'per-role'"):
        load_recipe(str(shared))


def test_per_role_adapters_train_gate_and_serve_each_role(tmp_path: Path, tiny_model: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """train.adapters = "per-role": each role with examples trains its own adapter on its own
    examples only (steps shared out by their number; a role with too few is skipped and says so),
    the solver's is gated on pass@1 and the others on the debate protocol over the dev set (both
    debates recorded with the adapters each role ran under); promoted, each role's requests in
    the next round run under that role's adapter, a role without one (the reviser, the proposer)
    on the base model."""
    from engine.roles import roles_in_use

    eng, run_id, calls = _per_role_run(tmp_path, tiny_model, monkeypatch, "")
    q = eng.store.execute
    runs = {r[0]: r[1:] for r in q("select role, status, steps, n_examples, error from training_runs where run_id = ?", [run_id])}
    assert set(runs) == {"solver", "critic", "judge", "reviser"}
    assert runs["reviser"][0] == "skipped" and "1 reviser example so far, train.min_examples is 2" in runs["reviser"][3]
    # the solver's set carries the replay share (none recorded here), the others only their own examples
    assert runs["solver"][1:3] == (10, 6) and runs["critic"][1:3] == (5, 3) and runs["judge"][1:3] == (5, 3)  # 20 steps
    for _cfg, examples in calls:
        assert len({m[0]["content"].split()[0] for m in examples}) == 1  # one role's examples per adapter
    ads = {r[0]: r[1:] for r in q("select role, id, decision, promoted from adapters where run_id = ?", [run_id])}
    assert set(ads) == {"solver", "critic", "judge"} and all(a[1] for a in ads.values())
    # every level from 1 to one above the round's (2), 6 dev tasks each (the share of 40 is 14, 13, 13)
    assert "judge balanced accuracy on dev-1, dev-2, dev-3 (18 tasks)" in ads["judge"][1]
    assert "right after revision" in ads["critic"][1] and "/18 in use" in ads["critic"][1]
    debates = q("select pool, eval_set, adapters, n from debate_evals where run_id = ? order by id", [run_id])
    # per level, with the adapters in use and with the new ones
    assert [d[:2] for d in debates] == [("dev", f"dev-{lvl}") for lvl in (1, 2, 3) for _ in range(2)]
    assert {d[3] for d in debates} == {6}
    solver = ads["solver"][0] if ads["solver"][2] else None  # gated first: the debate's first answers are its
    for before, after in zip(debates[::2], debates[1::2]):
        assert before[2] == (None if solver is None else json.dumps(
            {"critic": None, "judge": None, "reviser": None, "solver": solver}))
        assert json.loads(after[2]) == {"critic": ads["critic"][0], "judge": ads["judge"][0], "reviser": None,
                                        "solver": solver}
    from engine.phases.evaluate import debate_dev_sets
    rec = eng.run_info(run_id).recipe
    shares = {k: len(v) for k, v in debate_dev_sets(
        eng.store, run_id, rec.model_copy(update={"eval": rec.eval.model_copy(update={"debate_dev": 10})}), 2).items()}
    assert shares == {"dev-1": 4, "dev-2": 3, "dev-3": 3}  # 10 shared out, the lower levels take the remainder
    assert list(debate_dev_sets(eng.store, run_id, rec, 9)) == [f"dev-{lvl}" for lvl in range(1, 10)]  # the top

    for role in ("solver", "critic", "judge"):  # promote each by hand, whatever the gate said
        eng.use_adapter(ads[role][0])
    in_use = roles_in_use(eng.store, run_id)
    assert {r: a[0] for r, a in in_use.items()} == {
        "solver": ads["solver"][0], "critic": ads["critic"][0], "judge": ads["judge"][0], "reviser": None}
    eng.evaluate(run_id, levels=[1], sets=["test-1"], debate=True)  # swarm eval --debate: each role under its own
    assert json.loads(q("select adapters from debate_evals where run_id = ? and pool = 'test'", [run_id])[0][0]) == {
        r: a[0] for r, a in in_use.items()}
    served = _record_served(monkeypatch, eng, run_id, {a[2]: role for role, a in in_use.items() if a[0] is not None})
    assert eng.play(run_id, rounds=2) == "finished"
    revisions = q("select count(*) from attempts where run_id = ? and round = 1 and turn > 0", [run_id])[0][0]
    by_role: dict[tuple[str, str], int] = {}
    for key in served:
        by_role[key] = by_role.get(key, 0) + 1
    assert by_role.get(("critic", "critic")) and by_role.get(("judge", "judge")) and by_role.get(("proposer", "base"))
    assert by_role.get(("solver", "solver")) and by_role.get(("solver", "base")) == revisions > 0
    assert {r for r, a in served if a not in (r, "base")} == set()  # nobody ran under another role's adapter
    eng.close()


@pytest.mark.slow  # about 75 s each: torch, a dequantized checkpoint, training and the check
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_export_check_passes_for_each_architecture(tmp_path: Path, real_model: Path, arch: str) -> None:
    """A LoRA trained on a tiny GGUF of each architecture exports with that architecture's layout
    (llama: q/k permuted; qwen2: as they are) and llama.cpp's logits agree with PyTorch's (measured:
    qwen2 1.0000; exported with llama's permutation instead, 0.909, refused)."""
    from engine.train.runner import run_worker
    from tests.tiny_model import write_tiny_gguf

    model = write_tiny_gguf(tmp_path / f"tiny-{arch}.gguf", real_model, arch=arch)
    assert check_gguf(model).architecture == arch
    log = tmp_path / "worker.log"
    prep = run_worker("prepare", {"home": str(tmp_path), "gguf": str(model)}, log)
    data = tmp_path / "examples.jsonl"
    msgs = [[{"role": "user", "content": f"What is {i} + 2?"}, {"role": "assistant", "content": str(i + 2)}] for i in range(6)]
    data.write_text("".join(json.dumps(m) + "\n" for m in msgs))
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    cfg = {"base_dir": prep["base_dir"], "gguf": str(model), "examples": str(data), "rank": 4, "alpha": 8,
           "dropout": 0.0, "learning_rate": 0.1, "steps": 6, "batch_size": 2, "max_seq_len": 64,
           "targets": targets, "seed": 0, "backend": "peft", "out": str(tmp_path / "lora.npz")}
    run_worker("train", cfg, log)
    out = tmp_path / "adapter.gguf"
    res = run_worker("export", {"base_dir": prep["base_dir"], "gguf": str(model), "lora": cfg["out"], "out": str(out),
                                "rank": 4, "alpha": 8, "targets": targets, "threshold": 0.999,
                                "prompts": ["What is 12 + 30?", "hello there, how are you"]}, log)
    assert res["cosine"] >= 0.999, res
    assert check_gguf(out).architecture == arch
    with Runtime(model, n_ctx=256, n_parallel=1) as rt:  # the runtime takes it for this model
        rt.set_adapter(out).result(timeout=30)


def test_export_refuses_an_architecture_it_does_not_know() -> None:
    from engine.errors import TrainingError
    from engine.train.export import layout

    with pytest.raises(TrainingError, match="'gpt2'.*llama, mistral, qwen2, qwen3"):
        layout("gpt2")


def test_the_peft_copy_of_an_adapter_loads_in_peft_as_trained(tmp_path: Path) -> None:
    """write_peft (what vLLM endpoints load) gives PEFT's own adapter format: loaded onto the same
    base it reproduces the trained model's logits."""
    import numpy as np
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.train.export import write_peft

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2)
    base = LlamaForCausalLM(cfg)
    base.save_pretrained(tmp_path / "base")
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    trained = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0))
    with torch.no_grad():
        for name, p in trained.named_parameters():
            if "lora_" in name:
                p.normal_(0, 0.2)  # as if trained: B is no longer zero
    # what the training worker writes: the LoRA entries of the state dict, as numpy
    state = {k: v.detach().float().numpy() for k, v in trained.state_dict().items() if "lora_" in k}
    out = write_peft(tmp_path / "peft", state, 4, 8.0, targets)
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    loaded = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(tmp_path / "base"), str(out))
    with torch.no_grad():
        want = trained(ids).logits
        got = loaded(ids).logits
        plain = LlamaForCausalLM.from_pretrained(tmp_path / "base")(ids).logits
    assert not torch.allclose(want, plain, atol=1e-3)  # the adapter changes the answer...
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)  # ...and the PEFT copy the same way


def test_length_grouped_micro_batches_give_the_padded_batch_loss_and_gradient() -> None:
    """The training step cuts a batch into micro-batches of similar length (less padding to
    compute) and runs the output layer on the labelled positions only; the loss and every LoRA
    gradient equal one padded forward over the whole batch with logits everywhere."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from engine.train.worker import micro_batches, step_loss

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2)
    model = get_peft_model(LlamaForCausalLM(cfg), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                             lora_dropout=0.0))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    rng = torch.Generator().manual_seed(1)
    batch = []
    for n, prompt in ((6, 4), (30, 20), (7, 3), (29, 25), (8, 5)):  # short and long, labels after the prompt
        ids = torch.randint(3, 64, (n,), generator=rng).tolist()
        batch.append((ids, [-100] * prompt + ids[prompt:]))
    assert [len(g) for g in micro_batches(batch, 0.25)] == [3, 2]

    loss, n_tok = step_loss(model, batch, pad=0, device="cpu")
    grouped = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    width = max(len(x) for x, _ in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, (x, y) in enumerate(batch):
        ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    assert n_tok == sum(len(x) for x, _ in batch)
    assert abs(loss - out.loss.item()) < 1e-5
    for name, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(grouped[name], p.grad, atol=1e-5, rtol=1e-4)


def test_training_without_prompts_to_check_the_export_on_is_refused_before_it_trains(tmp_path: Path) -> None:
    from engine.errors import TrainingError
    from engine.train.runner import TrainConfig, train_lora

    spec = load_recipe("default")[0].train
    cfg = TrainConfig(home=tmp_path, gguf=tmp_path / "model.gguf", workdir=tmp_path / "w", spec=spec, seed=0)
    with pytest.raises(TrainingError, match="no prompts to check the exported adapter on"):
        train_lora(cfg, [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]])
    assert not (tmp_path / "w").exists()  # nothing started


def test_focus_steps_draws_a_rounds_steps_toward_the_kinds_of_step_its_answers_get_wrong(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train.focus_steps: the round trains on steps x batch_size examples drawn from the set, those
    that write the kinds of step the round's first answers get wrong (here a difference's
    borrowing columns; its sums are right) far more often than their share; without it, on all."""
    from engine.train import runner

    def drawn(focus: float) -> list[str]:
        recipe = small_recipe(tmp_path, tiny_model, **{
            "max_per_task = 2": f"max_per_task = 2\nmin_examples = 1\nfocus_steps = {focus}", "steps = 30": "steps = 3",
            "max_difficulty = 9": 'max_difficulty = 9\nanswer_format = "columns"',
            "max_tokens = 32": "max_tokens = 48", "max_tokens = 16": "max_tokens = 48"})
        eng = Engine.open(tmp_path / f"home-{focus}")
        run_id = eng.create_run(str(recipe), rounds=1, train=False)
        assert eng.play(run_id) == "finished"
        tid = _task(eng, run_id, 0, "What is 52 - 17?", reference="35", expression="52 - 17")
        for i in range(4):  # the round's answers: every borrowing column wrong, every sum right
            _attempt(eng, run_id, 0, tid, "52-17: 2-7=5, 5-1=4, so 45", False, sample=i)
            _attempt(eng, run_id, 0, tid, "19+72: 9+2=11, 1+7+1=9, so 91", False, agent="solver-b", sample=i)
        replies = [f"{a}-{b}: 1{a % 10}-{b % 10}={10 + a % 10 - b % 10}, so x" for a, b in zip(range(50, 90), range(19, 59))]
        replies += [f"{a}+{a}: {a % 10}+{a % 10}={2 * (a % 10)}, so x" for a in range(10, 50)]
        eng.store.insert("examples", [dict(id=i, run_id=run_id, round=0, task_id=None, attempt_id=None, source="verified",
                                           messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": r}])
                                      for i, r in zip(eng.store.allocate_ids("examples", len(replies)), replies)])
        calls: list[tuple[Any, list[Any]]] = []
        monkeypatch.setattr(runner, "train_lora", _fake_trainer(calls))
        eng.train_now(run_id)
        eng.close()
        (cfg, examples), = calls
        assert cfg.spec.steps == 3
        return [m[-1]["content"] for m in examples if m[-1]["content"].endswith("so x")]

    focused, whole = drawn(10.0), drawn(0.0)
    assert len(whole) == 80  # every example
    assert len(focused) <= 3 * 8 and sum("-" in r for r in focused) >= 0.75 * len(focused) > 12


def test_replay_facts_adds_the_fact_questions_to_the_replay_the_base_model_answers(tiny_recipe: Path) -> None:
    """train.replay_facts: round 0's replay holds the base model's answers to the short fact
    questions too (FACT_REPLAY) besides the general prompts; without it, the general prompts alone.
    The base model stands in as a runtime that answers each prompt by echoing it."""
    from types import SimpleNamespace

    from engine.train.dataset import collect_replay, replay_prompts
    from engine.train.replay import FACT_REPLAY, REPLAY_PROMPTS

    class Echo:
        def submit_many(self, requests: list[Any]) -> list[Any]:
            return [SimpleNamespace(result=lambda r=r: SimpleNamespace(text=f"said: {r.messages[-1]['content']}"))
                    for r in requests]

    base = load_recipe(str(tiny_recipe))[0]
    eng = Engine.open()
    for flag, want in [(False, REPLAY_PROMPTS), (True, [*REPLAY_PROMPTS, *(q for q, _a in FACT_REPLAY)])]:
        recipe = base.model_copy(update={"train": base.train.model_copy(update={"replay_facts": flag})})
        run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
        assert collect_replay(eng.store, Echo(), run_id, 0, replay_prompts(recipe)) == len(want)  # type: ignore[arg-type]
        asked = [json.loads(m)[0]["content"] for (m,) in eng.store.execute(
            "select messages from examples where run_id = ? and source = 'replay' order by id", [run_id])]
        assert asked == want
    eng.close()
