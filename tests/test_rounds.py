"""A whole round on the tiny model: every step recorded, stop and resume lose nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine import events as ev
from engine.api import Engine
from engine.errors import RecipeError
from engine.recipes import load_recipe
from tests.conftest import small_recipe


def counts(eng: Engine, run_id: int) -> dict[str, int]:
    out = {}
    for table in ("tasks", "attempts", "critiques", "verdicts"):
        out[table] = eng.store.execute(f"select count(*) from {table} where run_id = ? and round is not null", [run_id])[0][0]
    return out


def test_round_records_every_step(tmp_path: Path, tiny_model: Path) -> None:
    tiny_recipe = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": "debate_turns = 1\nhints = true"})
    eng = Engine.open()
    seen: list[ev.Event] = []
    eng.subscribe(seen.append)
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    q = eng.store.execute

    tasks = q("select source, rejected_reason is null, held_out from tasks where run_id = ? and round = 0", [run_id])
    assert sum(1 for s, ok, _ in tasks if s == "generated") == 4
    assert sum(1 for s, _, _ in tasks if s == "proposed") == 2
    accepted = sum(1 for _, ok, _ in tasks if ok)
    # 2 solvers x 2 samples x accepted tasks, for turn 0 and the one debate turn
    assert q("select turn, count(*) from attempts where run_id = ? group by turn order by turn", [run_id]) == [
        (0, accepted * 4), (1, accepted * 4)]
    assert q("select count(*) from critiques where run_id = ?", [run_id])[0][0] == accepted * 4
    verdicts = q("select judge_correct, verifier_correct, agreement, judge_text from verdicts where run_id = ?", [run_id])
    assert len(verdicts) == accepted * 4
    for judged, truth, agree, text in verdicts:
        assert text in ('{"correct": true}', '{"correct": false}')  # grammar-constrained
        assert agree == (judged == truth)
    # the greedy judge is asked once per distinct answer text of a task; repeats carry its verdict at no cost
    judged_texts = q("select v.task_id, a.text, v.judge_correct, v.tokens from verdicts v join attempts a on a.id = v.attempt_id "
                     "where v.run_id = ? order by v.id", [run_id])
    assert sum(1 for *_, n in judged_texts if n > 0) == len({(t, x) for t, x, _, _ in judged_texts})
    assert all(len({j for t2, x2, j, _ in judged_texts if (t2, x2) == (t, x)}) == 1 for t, x, _, _ in judged_texts)
    # the hint phase: wrong final answers (distinct, at most max_per_task = 2 per task) get a critique written with
    # the result in view and a revision; tasks nobody solved get a rationale
    finals = q("select task_id, text, correct from attempts where run_id = ? and turn = 1", [run_id])
    wrong: dict[int, set[str]] = {}
    for t, text, ok in finals:
        if not ok and text.strip():
            wrong.setdefault(t, set()).add(" ".join(text.strip().lower().split()))
    hints = q("select kind, task_id, attempt_id is not null, revision is not null, tokens > 0 from hints where run_id = ?",
              [run_id])
    assert sorted(t for k, t, *_ in hints if k == "critique") == sorted(t for t, v in wrong.items() for _ in range(min(2, len(v))))
    solved = {t for t, _, ok in q("select task_id, text, correct from attempts where run_id = ?", [run_id]) if ok}
    assert sorted(t for k, t, *_ in hints if k == "rationale") == sorted({t for t, _, _ in finals} - solved)
    assert all(has_attempt == has_revision == (k == "critique") for k, _, has_attempt, has_revision, _ in hints)
    st = json.loads(q("select stats from rounds where run_id = ?", [run_id])[0][0])
    assert st["hint_critiques"] + st["rationales"] == len(hints)
    status, phase, stats = q("select status, phase, stats from rounds where run_id = ? and round = 0", [run_id])[0]
    assert (status, phase) == ("complete", "evaluate")
    assert '"solve_rate_first"' in stats and '"judge_agreement"' in stats
    # the round's debate, recounted from its rows: flips between each answer's turns, the judge per class
    st = json.loads(stats)
    turns = {(t, a, s, turn): ok for t, a, s, turn, ok in q(
        "select task_id, agent, sample, turn, correct from attempts where run_id = ?", [run_id])}
    pairs = [(ok, turns[(t, a, s, 1)]) for (t, a, s, turn), ok in turns.items() if turn == 0]
    right = sum(1 for f, _ in pairs if f)
    assert st["first_n"] == len(pairs)
    assert st["debate_gain"] == pytest.approx((sum(l for _, l in pairs) - right) / len(pairs))
    wrong_right = sum(1 for f, l in pairs if l and not f)
    assert st["wrong_to_right"] == pytest.approx(wrong_right / (len(pairs) - right)) if right < len(pairs) else True
    pos = [j for j, truth, _, _ in verdicts if truth]
    neg = [j for j, truth, _, _ in verdicts if not truth]
    if pos and neg:
        assert st["judge_balanced_accuracy"] == pytest.approx((pos.count(True) / len(pos) + neg.count(False) / len(neg)) / 2)
    else:
        assert math.isnan(st["judge_balanced_accuracy"])
    # the curriculum's plan: 3 of the 4 generated tasks from level 2, one from level 3, and why
    mix, why = q("select mix, curriculum from rounds where run_id = ? and round = 0", [run_id])[0]
    assert json.loads(mix) == {"2": 3, "3": 1} and "round 0" in why and "from level 3" in why
    assert sorted(q("select difficulty, count(*) from tasks where run_id = ? and round = 0 and source = 'generated' "
                    "group by 1", [run_id])) == [(2, 3), (3, 1)]
    # every accepted task carries its skills; the round's first answers are counted per skill
    skills = dict(q("select id, skills from tasks where run_id = ? and round = 0 and rejected_reason is null", [run_id]))
    assert all(json.loads(v) for v in skills.values())
    expect: dict[str, list[int]] = {}
    for tid, ok in q("select task_id, correct from attempts where run_id = ? and turn = 0", [run_id]):
        for sk in json.loads(skills[tid]):
            expect.setdefault(sk, [0, 0])
            expect[sk][0] += 1
            expect[sk][1] += int(ok)
    got = {sk: [n, p] for sk, n, p in q("select skill, n, passed from skill_scores where run_id = ? and round = 0 "
                                          "and source = 'round'", [run_id])}
    assert got == expect and {"op:+", "digits:2", "terms:2"} <= set(got)
    assert q("select status from runs where id = ?", [run_id])[0][0] == "finished"
    # no attempt is recorded twice
    assert q("select count(*) from (select task_id, agent, sample, turn, count(*) c from attempts "
             "group by all having c > 1)")[0][0] == 0
    kinds = {type(e) for e in seen}
    assert {ev.RunStarted, ev.RoundStarted, ev.PhaseStarted, ev.TokenStreamed, ev.TaskProposed, ev.AnswerGiven,
            ev.CritiqueMade, ev.VerdictReached, ev.RoundFinished, ev.RunFinished} <= kinds
    eng.close()


def test_dev_and_test_tasks_never_in_a_round(tiny_recipe: Path) -> None:
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1, train=False)
    held = dict(eng.store.execute("select fingerprint, pool from tasks where run_id = ? and held_out", [run_id]))
    assert set(held.values()) == {"dev", "test"} and len(held) >= 10
    eng.play(run_id)
    rows = eng.store.execute(
        "select fingerprint, rejected_reason, pool from tasks where run_id = ? and round = 0", [run_id])
    assert {r[2] for r in rows} == {"train"}
    for fp, reason, _ in rows:
        if fp in held:
            assert reason == f"duplicates a {held[fp]} task"
    solved = eng.store.execute(
        "select count(*) from attempts a join tasks t on t.id = a.task_id where t.held_out and a.run_id = ?", [run_id])
    assert solved[0][0] == 0
    eng.close()


def test_stop_mid_round_then_resume_loses_and_repeats_nothing(tiny_recipe: Path) -> None:
    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=2, train=False)

    def stop_in_debate(e: ev.Event) -> None:
        if isinstance(e, ev.PhaseStarted) and e.phase == "debate" and e.round == 1:
            eng.stop()

    unsub = eng.subscribe(stop_in_debate)
    assert eng.play(run_id) == "stopped"
    unsub()  # type: ignore[operator]
    q = eng.store.execute
    assert q("select status from runs where id = ?", [run_id])[0][0] == "stopped"
    assert q("select round, status, phase from rounds where run_id = ? order by round", [run_id]) == [
        (0, "complete", "evaluate"), (1, "running", "solve")]
    assert q("select count(*) from attempts where run_id = ? and round = 1 and turn = 1", [run_id])[0][0] == 0
    before = counts(eng, run_id)
    eng.close()

    eng = Engine.open()  # a new process would do the same
    assert eng.latest_unfinished() == run_id
    assert eng.play(run_id) == "finished"
    after = counts(eng, run_id)
    assert after["tasks"] == before["tasks"]  # round 1's tasks were not proposed again
    assert after["attempts"] > before["attempts"]
    assert q is not None
    q = eng.store.execute
    assert q("select count(*) from (select task_id, agent, sample, turn, count(*) c from attempts "
             "where run_id = ? group by all having c > 1)", [run_id])[0][0] == 0
    assert q("select count(*) from rounds where run_id = ? and status = 'complete'", [run_id])[0][0] == 2
    eng.close()


def test_a_recipe_can_leave_the_debate_and_the_judge_out(tmp_path: Path, tiny_model: Path) -> None:
    from tests.conftest import small_recipe

    recipe = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": "debate_turns = 1\nskip = [\"debate\", \"judge\"]"})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    phases: list[str] = []
    eng.subscribe(lambda e: phases.append(e.phase) if isinstance(e, ev.PhaseStarted) else None)
    assert eng.play(run_id) == "finished"
    assert "debate" not in phases and "judge" not in phases and phases[:2] == ["propose", "solve"]
    q = eng.store.execute
    assert q("select max(turn), count(*) > 0 from attempts where run_id = ?", [run_id]) == [(0, True)]
    assert q("select count(*) from critiques where run_id = ?", [run_id]) == [(0,)]
    assert q("select count(*) from verdicts where run_id = ?", [run_id]) == [(0,)]
    stats = json.loads(q("select stats from rounds where run_id = ?", [run_id])[0][0])
    assert stats["judge_agreement"] != stats["judge_agreement"]  # NaN: not measured
    assert stats["solve_rate_final"] == stats["solve_rate_first"]
    eng.close()
    bad = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": "debate_turns = 1\nskip = [\"solve\"]"})
    with pytest.raises(RecipeError, match="round.skip"):
        load_recipe(str(bad))


def test_a_round_can_debate_a_seeded_subset_of_its_tasks_and_train_on_all(tmp_path: Path, tiny_model: Path) -> None:
    from engine.agents import seed_for
    from engine.train.dataset import collect

    recipe = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": "debate_turns = 1\ndebate_tasks = 2\nhints = true"})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    q = eng.store.execute
    played = [t for (t,) in q("select id from tasks where run_id = ? and round = 0 and rejected_reason is null "
                              "and not held_out order by id", [run_id])]
    assert len(played) > 2
    assert q("select count(distinct task_id) from attempts where run_id = ? and turn = 0", [run_id]) == [(len(played),)]
    debated = {t for (t,) in q("select distinct task_id from attempts where run_id = ? and turn = 1", [run_id])}
    assert len(debated) == 2
    assert {t for (t,) in q("select distinct task_id from critiques where run_id = ?", [run_id])} == debated
    assert {t for (t,) in q("select distinct task_id from verdicts where run_id = ?", [run_id])} == debated
    assert {t for (t,) in q("select distinct task_id from hints where run_id = ?", [run_id])} <= debated
    # the draw: by the run's seed, the round and each task's fingerprint, so a resumed round draws the same
    seed = q("select seed from runs where id = ?", [run_id])[0][0]
    fps = dict(q("select id, fingerprint from tasks where run_id = ?", [run_id]))
    assert debated == set(sorted(played, key=lambda t: (seed_for(seed, 0, fps[t], "debate"), t))[:2])
    # the stats: the first answers of every task, each answer's last turn, the debate over the debated ones
    st = json.loads(q("select stats from rounds where run_id = ?", [run_id])[0][0])
    first = q("select avg(correct::int), count(*) from attempts where run_id = ? and turn = 0", [run_id])[0]
    assert st["solve_rate_first"] == pytest.approx(first[0])
    assert st["first_n"] == 2 * 4  # 2 tasks x 2 solvers x 2 samples
    last = {(t, a, s): ok for t, a, s, ok in q("select task_id, agent, sample, correct from attempts where run_id = ? "
                                               "order by turn", [run_id])}
    assert st["solve_rate_final"] == pytest.approx(sum(last.values()) / len(last))
    pairs = q("select f.correct, l.correct from attempts f join attempts l on l.task_id = f.task_id and l.agent = f.agent "
              "and l.sample = f.sample and l.turn = 1 where f.run_id = ? and f.turn = 0", [run_id])
    assert st["debate_gain"] == pytest.approx((sum(b for _, b in pairs) - sum(a for a, _ in pairs)) / len(pairs))
    # an undebated task's verified first answer trains the solver like any other: one made right here
    # (the tiny model rarely is) joins the set when the round's answers are collected again
    undebated = next(t for t in played if t not in debated)
    aid = q("select min(id) from attempts where run_id = ? and task_id = ?", [run_id, undebated])[0][0]
    q("update attempts set correct = true, text = '42' where id = ?", [aid])
    collect(eng.store, load_recipe(str(recipe))[0], run_id, 0)
    assert q("select count(*) from examples where run_id = ? and task_id = ? and role = 'solver' and source = 'first'",
             [run_id, undebated]) == [(1,)]
    eng.close()
    bad = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": "debate_turns = 1\ndebate_tasks = 0"})
    with pytest.raises(RecipeError, match="round.debate_tasks"):
        load_recipe(str(bad))


@pytest.mark.parametrize(("votes", "view"), [(1, "asked"), (3, "swapped")])
def test_a_computing_judge_asks_once_per_task_and_judges_every_answer_by_its_result(
        tmp_path: Path, tiny_model: Path, votes: int, view: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.phases.judge
    from engine.agents import VOTE_SEPARATOR
    from engine.tasks.arith import extract_answer, swapped

    agree = min(votes, 2)
    recipe = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": 'debate_turns = 1\njudging = "compute"\n'
                                                   f'judge_votes = {votes}\njudge_agree = {agree}\njudge_view = "{view}"'})
    put: list[str] = []
    real = engine.phases.judge.judge_requests
    monkeypatch.setattr(engine.phases.judge, "judge_requests", lambda r, j, prompt, *a, **k: (
        put.append(prompt), real(r, j, prompt, *a, **k))[1])
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    # the judge is put each task as round.judge_view says (swapped: b + a for a + b)
    asked = {f"What is {e}?" for (e,) in eng.store.execute(
        "select payload->>'expression' from tasks where run_id = ? and round = 0", [run_id])}
    want = asked if view == "asked" else {f"What is {swapped(p[8:-1])}?" for p in asked}
    assert put and set(put) <= want and (view == "asked" or set(put) - asked)
    rows = eng.store.execute(
        "select v.task_id, v.judge_text, v.judge_correct, v.agreement, v.verifier_correct, v.tokens, a.text "
        "from verdicts v join attempts a on a.id = v.attempt_id where v.run_id = ? order by v.id", [run_id])
    assert rows
    # one request per task (and per vote): its result (digits only, the grammar) judges every final answer of the
    # task; the verdict that asked counts its votes' tokens
    assert sum(1 for r in rows if r[5] > 0) == len({r[0] for r in rows})
    assert all(r[5] >= votes for r in rows if r[5] > 0)
    for tid, said, judged, agreement, truth, _n, text in rows:
        assert len({r[1] for r in rows if r[0] == tid}) == 1
        results = [int(r) for r in said.split(VOTE_SEPARATOR) if r.lstrip("-").isdigit()]
        assert len(said.split(VOTE_SEPARATOR)) == votes and (results or judged is None)
        if judged is not None:  # right when enough of its results are the answer's
            reach = sum(extract_answer(text) == str(r) for r in results)
            assert judged == (reach >= min(agree, len(results))) and agreement == (judged == truth)
    eng.close()


def test_round_token_budget_caps_generation(tmp_path: Path, tiny_model: Path) -> None:
    from tests.conftest import small_recipe

    recipe = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": "debate_turns = 1\nmax_tokens_per_round = 300"})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    eng.play(run_id)
    q = eng.store.execute
    total = q("select (select sum(tokens) from attempts) + (select sum(tokens) from critiques) + "
              "(select sum(tokens) from verdicts)")[0][0]
    assert total <= 300
    assert '"budget_capped": 1.0' in q("select stats from rounds where run_id = ?", [run_id])[0][0]
    eng.close()


def test_token_budget_is_a_hard_cap(tiny_recipe: Path) -> None:
    """What is left is shared out; requests whose share is zero are not sent at all."""
    import threading

    from engine.events import EventBus
    from engine.recipes import load_recipe
    from engine.roundbase import PhaseRunner
    from engine.runtime import Request, Sampling

    recipe = load_recipe(str(tiny_recipe))[0]
    runner = PhaseRunner(None, None, recipe, 1, 7, EventBus(), threading.Event())  # type: ignore[arg-type]
    reqs = [Request(prompt="x", sampling=Sampling(max_tokens=32)) for _ in range(5)]
    runner.round_tokens = recipe.round.max_tokens_per_round - 3
    allowed = runner._within_budget(reqs)
    assert allowed == [True, True, True, False, False] and runner.budget_capped
    assert sum(r.sampling.max_tokens for r, ok in zip(reqs, allowed) if ok) == 3
    runner.round_tokens = recipe.round.max_tokens_per_round + 10  # already over: nothing is sent
    assert runner._within_budget([Request(prompt="x")]) == [False]


def _play_scripted_slips(recipe: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[list[str]], Engine, int]:
    """One round of ``recipe`` with the step critic's checks scripted (every other answer a turn
    checks slips at its middle): the answers each turn checked, the engine and the run."""
    import engine.phases.debate
    from engine.stepcheck import Slip

    checked: list[list[str]] = []

    def slips(rt, recipe, domain, solver, answers, seed=0, before=None, known=None, tasks=None):  # type: ignore[no-untyped-def]
        checked.append(list(answers))
        return [Slip(len(a) // 2, "1+1", "3", "2") if i % 2 == 0 else None for i, a in enumerate(answers)]

    monkeypatch.setattr(engine.phases.debate, "find_slips", slips)
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    return checked, eng, run_id


def test_a_step_critic_round_continues_slipped_answers_and_keeps_the_others(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """round.critique = "steps" in a round: every debated answer gets a critique row; an answer
    with a slip is continued by its solver from the slip (the revision starts with the answer up to
    it and the checked value), one without is its own revision. The slips are scripted here (the
    tiny model writes no computations); the checks themselves are tested in test_protocol."""
    from engine.stepcheck import NO_SLIP

    recipe = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": 'debate_turns = 1\ncritique = "steps"'})
    checked, eng, run_id = _play_scripted_slips(recipe, monkeypatch)
    q = eng.store.execute
    firsts = q("select id, text from attempts where run_id = ? and turn = 0 order by id", [run_id])
    assert checked and sorted(checked[0]) == sorted(t for _i, t in firsts)
    rows = q("select a.text, c.text, r.text from attempts a join critiques c on c.attempt_id = a.id "
             "join attempts r on r.task_id = a.task_id and r.agent = a.agent and r.sample = a.sample and r.turn = 1 "
             "where a.run_id = ? and a.turn = 0 order by a.id", [run_id])
    assert len(rows) == len(firsts)
    for i, (first, critique, revision) in enumerate(rows):  # in the order they were checked
        assert first == checked[0][i]
        if i % 2 == 0:
            assert critique == "1+1=3 is wrong: 1+1 is 2." and revision.startswith(first[:len(first) // 2] + "2")
        else:
            assert critique == NO_SLIP and revision == first
    eng.close()


def test_a_second_step_turn_in_a_round_checks_only_the_answers_the_first_continued(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """round.debate_turns = 2 with the step critic: the second turn checks the continued answers
    alone; the ones the first turn kept stand again, each turn writing every answer's row."""
    recipe = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": 'debate_turns = 2\ncritique = "steps"'})
    checked, eng, run_id = _play_scripted_slips(recipe, monkeypatch)
    q = eng.store.execute
    turns = {t: [x for (x,) in q("select text from attempts where run_id = ? and turn = ? order by id", [run_id, t])]
             for t in (0, 1, 2)}
    assert len(checked) == 2 and len(turns[2]) == len(turns[1]) == len(turns[0])
    continued = [b for a, b in zip(turns[0], turns[1]) if a != b]
    assert continued and sorted(checked[1]) == sorted(continued)
    assert q("select count(*) from critiques where run_id = ? and turn = 2", [run_id])[0][0] == len(turns[0])
    eng.close()


def _debated_with(tmp_path: Path, tiny_model: Path, setting: str) -> tuple[Engine, list[tuple[str, str, str, int]]]:
    """One round, untrained, with the step critic and ``setting`` under [round]: the engine and, in
    the order the critic checked them, each first answer with its critique, its turn-1 revision and
    the revision's tokens."""
    recipe = small_recipe(tmp_path, tiny_model, **{"debate_turns = 1": f'debate_turns = 1\ncritique = "steps"\n{setting}'})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    rows = eng.store.execute(
        "select a.text, c.text, r.text, r.tokens from attempts a join critiques c on c.attempt_id = a.id "
        "join attempts r on r.task_id = a.task_id and r.agent = a.agent and r.sample = a.sample and r.turn = 1 "
        "where a.run_id = ? and a.turn = 0 order by c.id", [run_id])
    return eng, rows


def test_a_plan_check_in_a_round_continues_an_answer_that_stops_short_until_it_is_done(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """round.step_plan in a round: an answer the critic finds stopping short is continued with the
    operation due in place, and, while the continued answer still stops short, continued again
    (engine.stepcheck.finish) within the same turn, each continuation's tokens counted. The critic's
    findings and the plan are scripted here (the tiny model writes no computations); the reading of
    the plan is tested in test_protocol and arith's doctests."""
    import engine.phases.debate
    from engine.stepcheck import NO_SLIP, Gap
    from engine.tasks.arith import Arith

    def slips(rt, recipe, domain, solver, answers, seed=0, before=None, known=None, tasks=None):  # type: ignore[no-untyped-def]
        assert tasks is not None and len(tasks) == len(answers)
        return [Gap(len(a), "1+1", True) if i % 2 == 0 else None for i, a in enumerate(answers)]

    monkeypatch.setattr(engine.phases.debate, "find_slips", slips)
    monkeypatch.setattr(Arith, "next_step", lambda self, task, text: None if "; 2+2" in text else (len(text), "2+2", True))
    eng, rows = _debated_with(tmp_path, tiny_model, "step_plan = true")
    assert rows and any(c != NO_SLIP for _f, c, _r, _n in rows)
    for first, critique, revision, tokens in rows:
        if critique == NO_SLIP:
            assert revision == first
        else:
            assert critique == "The answer stops too soon: 1+1 is still to do."
            assert revision.startswith(first.rstrip() + "; 1+1") and "; 2+2" in revision[len(first.rstrip()) + 5:]
            assert tokens > 0
    eng.close()


def test_a_column_check_in_a_round_continues_an_answer_from_its_misstep(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """round.step_columns in a round: the step critic's own search (engine.stepcheck.find_slips,
    not scripted) takes the domain's column reading as the fault where it finds one, its critique
    recorded, and the solver goes on from it with what is due in place. The reading is scripted here
    (the tiny model writes no columns); the reading itself is tested in arith's doctests and
    test_protocol."""
    from engine.stepcheck import NO_SLIP
    from engine.tasks.arith import Arith

    def fault(self, text):  # type: ignore[no-untyped-def]
        return None if len(text) % 2 else (len(text) // 2, "[due]", "The column there is [due].")

    monkeypatch.setattr(Arith, "column_fault", fault)
    eng, rows = _debated_with(tmp_path, tiny_model, "step_columns = true")
    assert rows and {c for _f, c, _r, _n in rows} <= {NO_SLIP, "The column there is [due]."}
    assert any(c != NO_SLIP for _f, c, _r, _n in rows)
    for first, critique, revision, _tokens in rows:
        if len(first) % 2:
            assert critique == NO_SLIP and revision == first
        else:
            assert critique != NO_SLIP and revision.startswith(first[:len(first) // 2] + "[due]")
    eng.close()


def test_a_judge_that_checks_its_steps_judges_with_its_mended_work(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """round.judge_check = "steps" in a round: the judge's results go to engine.stepcheck.mend (the
    solver checks, the judge goes on), and each verdict is given and recorded with the mended result,
    its tokens counting the continuations. The mending is scripted here (the tiny model writes no
    computations); the checks themselves are tested in test_protocol."""
    import engine.phases.judge

    recipe = small_recipe(tmp_path, tiny_model, **{
        "debate_turns = 1": 'debate_turns = 1\njudging = "compute"\njudge_check = "steps"',
        "max_difficulty = 9": 'max_difficulty = 9\nanswer_format = "columns"',
        "max_tokens = 32": "max_tokens = 48", "max_tokens = 16": "max_tokens = 48"})
    seen: list[list[str]] = []

    def mend(rt, recipe, domain, checker, texts, go_on, **kw):  # type: ignore[no-untyped-def]
        seen.append(list(texts))
        assert checker.role == "solver" and go_on(0, "1+1=2").assistant_prefix == "1+1=2"
        return [(t + " so 7", 5) for t in texts]

    monkeypatch.setattr(engine.phases.judge, "mend", mend)
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    rows = eng.store.execute("select judge_text, tokens from verdicts where run_id = ?", [run_id])
    assert len(seen) == 1 and rows and all(t.endswith(" so 7") for t, _n in rows)
    assert {t for t, _n in rows} == {t + " so 7" for t in seen[0]}
    assert all(n >= 5 for _t, n in rows if n > 0)
    eng.close()


def test_a_round_draws_shorter_numbers_into_its_generated_tasks_only(tiny_recipe: Path) -> None:
    """task.shorter: the propose phase asks the generator for that share of numbers drawn shorter
    (36 + 4), tagged ``unequal``; the run's dev and test sets, written before, keep one width."""
    import threading

    from engine.events import EventBus
    from engine.phases import propose
    from engine.roundbase import PhaseRunner

    eng = Engine.open()
    run_id = eng.create_run(str(tiny_recipe), rounds=1)
    base = load_recipe(str(tiny_recipe))[0]
    for share, low, high in ((0.0, 0, 0), (0.5, 12, 28)):
        recipe = base.model_copy(update={"task": base.task.model_copy(update={"proposed": 0, "shorter": share})})
        runner = PhaseRunner(eng.store, None, recipe, run_id, 7, EventBus(), threading.Event())  # type: ignore[arg-type]
        runner.mix = {2: 40}
        rnd = 10 + int(share * 10)  # a round of its own per share
        propose.run(runner, rnd, 2, {})
        rows = eng.store.execute("select skills, pool from tasks where run_id = ? and round = ? and source = 'generated'",
                                 [run_id, rnd])
        assert len(rows) == 40 and {pool for _, pool in rows} == {"train"}
        assert low <= sum("unequal" in skills for skills, _ in rows) <= high, share
    held = eng.store.execute("select skills from tasks where run_id = ? and pool in ('dev', 'test') and difficulty between 1 and 8",
                             [run_id])
    assert held and not any("unequal" in skills for (skills,) in held)
    eng.close()


def test_a_level_no_first_answer_solved_the_round_before_takes_fewer_samples(tmp_path: Path, tiny_model: Path) -> None:
    """round.unsolved_samples: in round 1 each solver answers a task once at the levels of which round 0
    had no right first answer, round.samples times at the others and at levels round 0 did not play."""
    from engine.phases.solve import unsolved_levels

    recipe = small_recipe(tmp_path, tiny_model, **{"generated = 24": "generated = 8\nahead_share = 0.5",
                                                     "samples = 2": "samples = 2\nunsolved_samples = 1"})
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    assert eng.play(run_id) == "finished"
    q = eng.store.execute
    per_task = q("select t.difficulty, count(*) from attempts a join tasks t on t.id = a.task_id where a.run_id = ? "
                 "and a.round = 0 and a.turn = 0 group by t.id, t.difficulty", [run_id])
    assert {n for _, n in per_task} == {4}  # round 0: 2 solvers x 2 samples everywhere
    played = {d for d, _ in per_task}
    assert len(played) >= 2
    # the verifier's outcomes as a script: one right first answer at the lowest level, none at the others
    q("update attempts set correct = false where run_id = ? and round = 0", [run_id])
    solved = min(played)
    q("update attempts set correct = true where id = (select min(a.id) from attempts a join tasks t on t.id = a.task_id "
      "where a.run_id = ? and a.round = 0 and a.turn = 0 and t.difficulty = ?)", [run_id, solved])
    assert eng.play(run_id, rounds=2) == "finished"
    runner = type("Ctx", (), {"store": eng.store, "run_id": run_id})()
    assert unsolved_levels(runner, 1) == played - {solved} and unsolved_levels(runner, 0) == set()  # type: ignore[arg-type]
    per_task = q("select t.difficulty, count(*) from attempts a join tasks t on t.id = a.task_id where a.run_id = ? "
                 "and a.round = 1 and a.turn = 0 group by t.id, t.difficulty", [run_id])
    assert per_task and {(d, n) for d, n in per_task} == {(d, 2 if d in played - {solved} else 4) for d, _ in per_task}
    assert any(n == 2 for _, n in per_task)
    eng.close()
    for bad in ("0", "65"):
        with pytest.raises(RecipeError, match="round.unsolved_samples"):
            load_recipe(str(small_recipe(tmp_path, tiny_model, **{"samples = 2": f"samples = 2\nunsolved_samples = {bad}"})))
