"""The debate protocol's bookkeeping, with a scripted stand-in for the model (the real model
plays it in test_cli's eval test and in the improve benchmark)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.agents import JUDGE_PREFIX, fill
from engine.api import Engine
from engine.protocol import DebateScore, Trace, debate_score, record_debate, stored_debate
from engine.recipes import Recipe, load_recipe
from engine.roundbase import TaskRow
from engine.runtime import Request, Result
from engine.tasks import Task


class _Done:
    def __init__(self, text: str) -> None:
        self.text = text

    def result(self, timeout: float | None = None) -> Result:
        return Result(self.text, "stop", 1, 1, 0.0)


class Scripted:
    """Answers by role and task: solve / critique / revise / judge, read from the prompt."""

    def __init__(self, first: dict[str, str], revised: dict[str, str], judge: dict[str, bool],
                 results: dict[str, Any] | None = None) -> None:
        self.first, self.revised, self.judge, self.results = first, revised, judge, results or {}
        self.asked: list[Request] = []

    def submit_many(self, reqs: list[Request]) -> list[_Done]:
        self.asked += reqs
        out = []
        for r in reqs:
            user = r.messages[-1]["content"]
            q = next(k for k in self.first if k in user)
            if r.sampling.grammar and "Answer: " not in user:  # a computing judge: its result (or its votes' in turn)
                said = self.results[q]
                if isinstance(said, list):
                    said = said[sum(1 for a in self.asked[:len(self.asked) - len(reqs) + len(out)]
                                    if a.sampling.grammar and q in a.messages[-1]["content"])]
                out.append(_Done(said))
            elif r.sampling.grammar:
                answer = user.split("Answer: ")[1].split("\n")[0]
                out.append(_Done("true}" if self.judge[answer] else "false}"))
            elif "A reviewer said" in user:
                out.append(_Done(self.revised[q]))
            elif "Is the answer right?" in user:
                out.append(_Done("Check it."))
            else:
                out.append(_Done(self.first[q]))
        return out


def _tasks() -> list[TaskRow]:
    return [TaskRow(i, Task("arith", f"What is {e}?", str(eval(e)), 2, f"fp{i}", {"expression": e}))
            for i, e in enumerate(["10 + 10", "20 + 20", "30 + 30", "40 + 40"], 1)]


def _revision_stands(recipe):  # type: ignore[no-untyped-def]
    return recipe.model_copy(update={"round": recipe.round.model_copy(update={"debate_answer": "revision"})})


def test_debate_protocol_counts_flips_and_the_judges_balanced_accuracy() -> None:
    judged_answer = load_recipe("recipes/plain.toml")[0]
    assert judged_answer.round.debate_answer == "judged"
    recipe = _revision_stands(judged_answer)
    first = {"10 + 10": "20", "20 + 20": "40", "30 + 30": "61", "40 + 40": "81"}
    revised = {"10 + 10": "20", "20 + 20": "41", "30 + 30": "60", "40 + 40": "81"}  # keep, right->wrong, wrong->right, stay wrong
    judge = {"20": True, "40": True, "41": True, "61": False, "60": False, "81": True}
    rt = Scripted(first, revised, judge)
    sc = debate_score(rt, recipe, _tasks())  # type: ignore[arg-type]
    assert (sc.n, sc.first, sc.final, sc.right_to_wrong, sc.wrong_to_right) == (4, 2, 2, 1, 1)
    assert sc.gain == 0 and sc.right_to_wrong_rate == 0.5 and sc.wrong_to_right_rate == 0.5
    assert (sc.revised, sc.revised_right_to_wrong, sc.revised_wrong_to_right) == (2, 1, 1)
    assert [sc.traces[i][7] for i in (1, 2, 3, 4)] == ["revision"] * 4
    # verdicts on first answers (20 T, 40 T, 61 F, 81 T) and on changed finals (41 T, 60 F); unchanged finals reuse
    # the first verdict: right answers 20, 40, 20, 60 -> judged T, T, T, F; wrong 61, 81, 41, 81 -> F, T, T, T
    assert (sc.judge_tp, sc.judge_fn, sc.judge_tn, sc.judge_fp) == (3, 1, 1, 3)
    assert sc.judge_balanced_accuracy == (3 / 4 + 1 / 4) / 2
    judged = [r for r in rt.asked if r.sampling.grammar]
    assert len(judged) == 6 and all(r.assistant_prefix == JUDGE_PREFIX for r in judged)
    assert all(r.sampling.temperature == 0 for r in rt.asked)  # greedy: reproducible
    # no first answer right: flips of right answers are undefined, not zero
    none_right = debate_score(Scripted({k: "0" for k in first}, {k: "0" for k in first}, {"0": False}), recipe,
                              _tasks())  # type: ignore[arg-type]
    assert none_right.right_to_wrong_rate is None and none_right.judge_balanced_accuracy is None
    # The judge's pick (the default): the revision only where the judge calls the first answer
    # wrong and the revision right. 40 -> 41: the judge likes both, the first stands (no
    # right->wrong); 61 -> 60: it likes neither, the first stands (the fix is lost). The judge's
    # verdicts, and the revisions' own figures, are the same answers scored.
    picked = debate_score(Scripted(first, revised, judge), judged_answer, _tasks())  # type: ignore[arg-type]
    assert [picked.traces[i][7] for i in (1, 2, 3, 4)] == ["revision", "first", "first", "revision"]
    assert (picked.first, picked.final, picked.right_to_wrong, picked.wrong_to_right) == (2, 2, 0, 0)
    assert (picked.revised, picked.revised_right_to_wrong, picked.revised_wrong_to_right) == (2, 1, 1)
    assert (picked.judge_tp, picked.judge_fn, picked.judge_tn, picked.judge_fp) == (3, 1, 1, 3)
    assert picked.summary()["revised"] == {"final": 0.5, "gain": 0.0, "right_to_wrong": 0.5, "wrong_to_right": 0.5}
    flipped = {**judge, "61": False, "60": True}  # now it calls the fix right: the revision stands
    fixed = debate_score(Scripted(first, revised, flipped), judged_answer, _tasks())  # type: ignore[arg-type]
    assert (fixed.final, fixed.right_to_wrong, fixed.wrong_to_right) == (3, 0, 1) and fixed.gain == 0.25


def test_a_computing_judge_works_each_task_out_once_and_judges_both_answers_by_its_result() -> None:
    base = load_recipe("recipes/plain.toml")[0]
    recipe = base.model_copy(update={"round": base.round.model_copy(update={"judging": "compute"})})
    first = {"10 + 10": "20", "20 + 20": "40", "30 + 30": "61", "40 + 40": "81"}
    revised = {"10 + 10": "20", "20 + 20": "41", "30 + 30": "60", "40 + 40": "81"}
    results = {"10 + 10": "20", "20 + 20": "41", "30 + 30": "60", "40 + 40": "79"}  # right, wrong, right, wrong
    rt = Scripted(first, revised, {}, results)
    sc = debate_score(rt, recipe, _tasks())  # type: ignore[arg-type]
    judged = [r for r in rt.asked if r.sampling.grammar]
    assert len(judged) == 4 and all(r.assistant_prefix == "" for r in judged)  # one per task, however answers change
    assert all("Answer" not in r.messages[-1]["content"] for r in judged)  # it never sees an answer
    # an answer is judged right when it is the judge's result: first 20 T, 40 F, 61 F, 81 F; final 20 T, 41 T, 60 T, 81 F
    assert [sc.traces[i][5:7] for i in (1, 2, 3, 4)] == [(True, True), (False, True), (False, True), (False, False)]
    # right answers 20, 40, 20, 60 -> T, F, T, T; wrong 61, 81, 41, 81 -> F, F, T, F
    assert (sc.judge_tp, sc.judge_fn, sc.judge_tn, sc.judge_fp) == (3, 1, 3, 1)
    # the judge's pick: a wrong result (41) takes the revision where it matches: right->wrong;
    # a right one (60) takes the fix
    assert [sc.traces[i][7] for i in (1, 2, 3, 4)] == ["revision", "revision", "revision", "revision"]
    assert (sc.final, sc.right_to_wrong, sc.wrong_to_right) == (2, 1, 1)
    # its own results: 20 and 60 right; 79 disagrees with both answers (81, 81) and is wrong too
    assert (sc.judge_results, sc.three_way, sc.three_way_right_to_wrong, sc.three_way_wrong_to_right) == (2, 2, 1, 1)
    # a right result (80) that neither answer reached: the three-way pick takes it, the judged one cannot
    sc2 = debate_score(Scripted(first, revised, {}, {**results, "40 + 40": "80"}), recipe, _tasks())  # type: ignore[arg-type]
    assert (sc2.final, sc2.judge_results, sc2.three_way, sc2.three_way_wrong_to_right) == (2, 3, 3, 2)
    assert sc2.summary()["judge_result"] == 0.75 and sc2.summary()["three_way"]["gain"] == 0.25
    pooled = sc + sc2
    assert (pooled.judge_results, pooled.three_way, pooled.three_ways.final) == (5, 5, 5)  # type: ignore[union-attr]
    # a judge that reads answers has no results of its own: none of this is reported
    verdicts = debate_score(Scripted(first, revised, {"20": True, "40": True, "41": True, "61": False, "60": False,
                                                      "81": True}), base, _tasks())  # type: ignore[arg-type]
    assert verdicts.three_ways is None and "three_way" not in verdicts.summary()
    assert (verdicts + sc).judge_results is None


def test_a_debate_score_is_recorded_with_its_traces(tmp_path: Path) -> None:
    eng = Engine.open(tmp_path / "home")
    sc = DebateScore(3, 1, 3, 0, 2, 2, 1, 1, 0, {1: Trace("a", "c", "b", False, True, None, True, "revision"),
                                               2: Trace("x", None, "x", True, True, True, True, "revision"),
                                               3: Trace("y", "c", "z", False, False, False, False, "judge", "so 7", True)},
                     2, 0, 1)
    with eng.store.transaction():
        record_debate(eng.store, 1, 0, None, "test-2", "test", sc)
    stored = stored_debate(eng.store, 1, None, "test-2")
    assert stored == sc and stored is not None and stored.traces == sc.traces  # the judge's result kept too
    assert eng.store.execute("select count(*), count(*) filter (answer = 'revision') from debate_eval_answers")[0] == (3, 2)
    assert (sc + sc).n == 6 and (sc + sc).judge_balanced_accuracy == sc.judge_balanced_accuracy
    assert (sc + sc).revised == 4 and (sc + DebateScore(0, 0, 0, 0, 0)).revised == 2
    # a score recorded before the revisions were counted apart (NULL) pools to unknown
    old = DebateScore(1, 1, 1, 0, 0)
    assert (sc + old).revised is None and old.revised_right == 1 and sc.revised_right == 2
    eng.close()


def _judged(verdicts: list[bool | None], truths: list[bool]) -> DebateScore:
    """A debate in which nothing was revised and the judge said ``verdicts`` of answers whose
    truth is ``truths`` (counted twice, on the first answer and on the unchanged final one)."""
    traces = {i: Trace(str(i), None, str(i), ok, ok, v, v, "first") for i, (v, ok) in enumerate(zip(verdicts, truths))}
    pairs = list(zip(truths, verdicts))
    tp, fn = sum(2 for ok, v in pairs if ok and v is True), sum(2 for ok, v in pairs if ok and v is not True)
    tn, fp = sum(2 for ok, v in pairs if not ok and v is False), sum(2 for ok, v in pairs if not ok and v is not False)
    return DebateScore(len(pairs), sum(truths), sum(truths), 0, 0, tp, tn, fp, fn, traces)


def test_a_new_judge_is_kept_only_when_better_than_the_one_in_use_beyond_noise(tmp_path: Path) -> None:
    from engine.phases.evaluate import judge_decision
    from engine.protocol import verdict_outcomes

    truths = [i % 2 == 0 for i in range(12)]
    says_right = _judged([True] * 12, truths)  # a constant judge: 50% balanced
    perfect = _judged(truths, truths)
    keep, why, numbers = judge_decision(perfect, says_right, 0.05)
    assert keep and why.endswith("its verdicts right where the one in use was wrong 6, the reverse 0 (p=0.016): "
                                 "better beyond noise: kept") and why.startswith("100.0% vs 50.0% in use")
    assert numbers == {"n": 12, "better": 6, "worse": 0, "p_better": 1 / 64, "alpha": 0.05}
    # better by one verdict: a higher balanced accuracy, but not beyond noise (seen: such judges were worse on test)
    one_off = _judged([ok or i == 11 for i, ok in enumerate(truths)], truths)
    two_off = _judged([ok or i in (9, 11) for i, ok in enumerate(truths)], truths)
    assert one_off.judge_balanced_accuracy > two_off.judge_balanced_accuracy  # type: ignore[operator]
    keep, why, _ = judge_decision(one_off, two_off, 0.05)
    assert not keep and why.endswith("wrong 1, the reverse 0 (p=0.500): not better beyond noise: dropped")
    keep, why, _ = judge_decision(two_off, one_off, 0.05)
    assert not keep and why.endswith(": lower: dropped")
    # no answer of one kind: nothing to compare with (kept), or nothing to judge by (dropped)
    all_right = [True] * 12
    assert judge_decision(perfect, _judged([True] * 12, all_right), 0.05)[0]
    assert not judge_decision(_judged([True] * 12, all_right), perfect, 0.05)[0]
    # a debate read back from the store pairs verdict by verdict as the one played did
    eng = Engine.open(tmp_path / "home")
    with eng.store.transaction():
        record_debate(eng.store, 1, 0, None, "dev-2", "dev", one_off)
    stored = stored_debate(eng.store, 1, None, "dev-2")
    assert stored is not None and verdict_outcomes(stored) == verdict_outcomes(one_off)
    assert stored.traces == one_off.traces
    eng.close()


def test_a_computing_judge_with_votes_calls_an_answer_right_when_enough_of_its_results_reach_it() -> None:
    base = load_recipe("recipes/plain.toml")[0]
    recipe = base.model_copy(update={"round": base.round.model_copy(
        update={"judging": "compute", "judge_votes": 3, "judge_agree": 2})})
    first = {"10 + 10": "20", "20 + 20": "41", "30 + 30": "61", "40 + 40": "80"}
    revised = {"10 + 10": "21", "20 + 20": "40", "30 + 30": "62", "40 + 40": "81"}
    # votes: greedy first, then two sampled; an answer is right when 2 of them reach it
    results = {"10 + 10": ["21", "20", "20"], "20 + 20": ["41", "40", "40"], "30 + 30": ["59", "60", "60"],
               "40 + 40": ["x", "81", "81"]}
    rt = Scripted(first, revised, {}, results)
    sc = debate_score(rt, recipe, _tasks())  # type: ignore[arg-type]
    judged = [r for r in rt.asked if r.sampling.grammar]
    assert len(judged) == 12  # three per task
    temps = [r.sampling.temperature for r in judged]
    assert temps == [0.0, 0.7, 0.7] * 4 and len({r.sampling.seed for r in judged[:3]}) == 3
    # 20 has two votes (kept, though the greedy one said 21); 40 two (the revision taken); 61 and 62 none
    # (neither right: the first stays); 80 none, 81 two of the two usable (the wrong revision taken)
    assert [sc.traces[i][5:7] for i in (1, 2, 3, 4)] == [(True, False), (False, True), (False, False), (False, True)]
    assert [sc.traces[i][7] for i in (1, 2, 3, 4)] == ["first", "revision", "first", "revision"]
    # the judge's own result is its greedy vote's: none is right
    assert (sc.final, sc.right_to_wrong, sc.wrong_to_right, sc.judge_results) == (2, 1, 1, 0)
    # the three-way pick takes the judge's consensus where it calls both answers wrong: 60 (two votes) for
    # 61 and 62; where it has none, or it took an answer, the judged pick stands
    assert (sc.three_way, sc.three_way_right_to_wrong, sc.three_way_wrong_to_right) == (3, 1, 2)
    assert sc.traces[3].judge_answer == "60" and sc.traces[3].judge_answer_right and sc.traces[4].judge_answer == "81"
    # round.debate_answer = "three-way": that pick is the debate's answer
    three = recipe.model_copy(update={"round": recipe.round.model_copy(update={"debate_answer": "three-way"})})
    sc3 = debate_score(Scripted(first, revised, {}, results), three, _tasks())  # type: ignore[arg-type]
    assert [sc3.traces[i].answer for i in (1, 2, 3, 4)] == ["first", "revision", "judge", "revision"]
    assert (sc3.final, sc3.right_to_wrong, sc3.wrong_to_right) == (3, 1, 2) and sc3.gain == 0.25
    with pytest.raises(ValueError, match="round.debate_answer: 'three-way' needs round.judging = 'compute'"):
        Recipe.model_validate({**base.model_dump(), "round": {**base.round.model_dump(), "debate_answer": "three-way"}})
    # votes need a judge that computes, and no more agreeing votes than votes
    with pytest.raises(ValueError, match="round.judge_votes: 3 needs round.judging = 'compute'"):
        Recipe.model_validate({**base.model_dump(), "round": {**base.round.model_dump(), "judge_votes": 3}})
    with pytest.raises(ValueError, match="round.judge_agree: 4 is more than round.judge_votes"):
        Recipe.model_validate({**base.model_dump(), "round": {**base.round.model_dump(), "judging": "compute",
                                                               "judge_votes": 3, "judge_agree": 4}})


def test_a_computing_judge_can_be_asked_the_task_with_its_operands_swapped() -> None:
    """round.judge_view = "swapped": the judge works 26 * 48 where the solver worked 48 * 26, so a
    slip the solver made on one order is not the judge's on the other."""
    base = load_recipe("recipes/plain.toml")[0]
    asked = base.model_copy(update={"round": base.round.model_copy(update={"judging": "compute",
                                                                          "debate_answer": "three-way"})})
    swapped = asked.model_copy(update={"round": asked.round.model_copy(update={"judge_view": "swapped"})})
    tasks = [TaskRow(i, Task("arith", f"What is {e}?", str(eval(e)), 7, f"fp{i}", {"expression": e}))
             for i, e in enumerate(["48 * 26", "12 + 34"], 1)]
    first = {"48 * 26": "1238", "12 + 34": "46", "26 * 48": "-", "34 + 12": "-"}
    revised = {"48 * 26": "1238", "12 + 34": "46"}
    # worked as asked, the judge makes the solver's slip (1238); swapped, it does not
    results = {"48 * 26": "1238", "26 * 48": "1248", "12 + 34": "46", "34 + 12": "46"}
    rt = Scripted(first, revised, {}, results)
    same = debate_score(rt, asked, tasks)  # type: ignore[arg-type]
    assert [r.messages[-1]["content"] for r in rt.asked if r.sampling.grammar] == \
        [fill(asked.prompts.judge_compute, {"task": f"What is {e}?"}) for e in ("48 * 26", "12 + 34")]
    assert (same.judge_tp, same.judge_fp, same.final) == (2, 2, 1)  # the wrong product passes, and stays
    rt = Scripted(first, revised, {}, results)
    other = debate_score(rt, swapped, tasks)  # type: ignore[arg-type]
    assert [r.messages[-1]["content"] for r in rt.asked if r.sampling.grammar] == \
        [fill(asked.prompts.judge_compute, {"task": f"What is {e}?"}) for e in ("26 * 48", "34 + 12")]
    assert (other.judge_tp, other.judge_tn, other.judge_fp) == (2, 2, 0)  # caught, first and final
    assert other.traces[1].answer == "judge" and other.final == 2 and other.wrong_to_right == 1
    # a view the domain has not, or a judge that reads answers, is refused by name
    with pytest.raises(ValueError, match="round.judge_view: 'mirrored' is not a view of the arith domain"):
        Recipe.model_validate({**asked.model_dump(), "round": {**asked.round.model_dump(), "judge_view": "mirrored"}})
    with pytest.raises(ValueError, match="round.judge_view: 'swapped' needs round.judging = 'compute'"):
        Recipe.model_validate({**base.model_dump(), "round": {**base.round.model_dump(), "judge_view": "swapped"}})


def test_the_majority_answer_is_the_value_two_of_first_revision_and_judge_reach_else_the_revision() -> None:
    base = load_recipe("recipes/plain.toml")[0]
    recipe = base.model_copy(update={"round": base.round.model_copy(update={"judging": "compute",
                                                                           "debate_answer": "majority"})})
    tasks = [TaskRow(i, Task("arith", f"What is {e}?", str(eval(e)), 2, f"fp{i}", {"expression": e}))
             for i, e in enumerate(["10 + 10", "20 + 20", "30 + 30", "40 + 40", "50 + 50"], 1)]
    first = {"10 + 10": "20", "20 + 20": "41", "30 + 30": "61", "40 + 40": "so 81", "50 + 50": "101"}
    revised = {"10 + 10": "21", "20 + 20": "40", "30 + 30": "60", "40 + 40": "81", "50 + 50": "102"}
    # the judge sides with the first answer; with the revision; with neither (the revision stands);
    # with neither where first and revision agree in value (the first stands); with neither of three
    results = {"10 + 10": "20", "20 + 20": "40", "30 + 30": "59", "40 + 40": "80", "50 + 50": "100"}
    sc = debate_score(Scripted(first, revised, {}, results), recipe, tasks)  # type: ignore[arg-type]
    assert [sc.traces[i].answer for i in range(1, 6)] == ["first", "revision", "revision", "first", "revision"]
    assert (sc.first, sc.final, sc.right_to_wrong, sc.wrong_to_right) == (1, 3, 0, 2)
    assert sc.three_way == 4  # three-way takes the judge's 59, 80 and 100 where it disagrees with both
    bad = base.model_copy(update={"round": base.round.model_copy(update={"debate_answer": "majority"})})
    with pytest.raises(ValueError, match=r"round.debate_answer: 'majority' needs round.judging = 'compute'"):
        Recipe.model_validate(bad.model_dump())


class StepScripted:
    """round.critique = "steps": first answers, the step checks (each "What is a + b?" answered by
    its value, or as ``checks`` says), continuations (a request with an assistant prefix) and the
    computing judge's results, all read from the request."""

    def __init__(self, first: dict[str, str], cont: dict[str, str], results: dict[str, str],
                 checks: dict[str, str], spaced: dict[str, str] | None = None) -> None:
        self.first, self.cont, self.results, self.checks = first, cont, results, checks
        self.spaced = spaced  # an inline check written spaced ("4 + 5 = "): answered from here, else as checks
        self.asked: list[Request] = []

    def submit_many(self, reqs: list[Request]) -> list[_Done]:
        self.asked += reqs
        out = []
        for r in reqs:
            user = r.messages[-1]["content"]
            if r.tag == "judge":  # its result, or a continuation of it from a slip (round.judge_check)
                out.append(_Done(self.cont[r.assistant_prefix] if r.assistant_prefix else
                                 next(v for k, v in self.results.items() if f"What is {k}?" in user)))
                continue
            expr = user.removeprefix("What is ").removesuffix("?")
            if r.assistant_prefix and r.assistant_prefix.endswith(" = ") and self.spaced is not None:
                out.append(_Done(self.spaced.get(expr, str(eval(expr)))))
            elif r.assistant_prefix and r.assistant_prefix.rstrip().endswith("="):  # an inline check (round.step_check)
                out.append(_Done(self.checks.get(expr, str(eval(expr)))))
            elif r.assistant_prefix:  # a continuation: by its prefix where ``cont`` names it, else by its task
                out.append(_Done(self.cont[r.assistant_prefix] if r.assistant_prefix in self.cont else self.cont[expr]))
            elif expr in self.first:
                out.append(_Done(self.first[expr]))
            else:
                out.append(_Done(self.checks.get(expr, str(eval(expr)))))
        return out


def test_a_step_critic_names_the_first_slip_and_the_reviser_goes_on_from_it() -> None:
    """Each computation an answer writes out is asked alone, one operation at a time and a sum in
    both orders; the first whose checked value differs is the slip, and the answer is continued
    from it with the checked value. Where the two orders disagree the step is not checked."""
    base = load_recipe("recipes/plain.toml")[0]
    recipe = base.model_copy(update={"round": base.round.model_copy(update={"judging": "compute", "critique": "steps"})})
    tasks = [TaskRow(i, Task("arith", f"What is {e}?", str(eval(e)), 2, f"fp{i}", {"expression": e}))
             for i, e in enumerate(["19 + 72", "24 + 98", "13 + 25", "30 + 30"], 1)]
    first = {"19 + 72": "19+72: 9+2=11, 1+7+1=8, so 81",  # wrong: 1+7+1 is 9
             "24 + 98": "24+98: 4+8=12, 2+9+1=12, so 122",  # right, but its checks will say 4+8 is 13
             "13 + 25": "13+25: 3+5=8, 1+2=3, so 38",  # right; 3+5 and 5+3 disagree: unchecked
             "30 + 30": "60"}  # right, nothing written out to check
    checks = {"4 + 8": "13", "8 + 4": "13", "3 + 5": "9"}
    cont = {"19 + 72": ", so 91", "24 + 98": ", 2+9+1=13, so 133"}
    results = {"19 + 72": "91", "24 + 98": "122", "13 + 25": "38", "30 + 30": "60"}
    rt = StepScripted(first, cont, results, checks)
    sc = debate_score(rt, recipe, tasks)  # type: ignore[arg-type]
    assert [sc.traces[i].critique for i in (1, 2, 3, 4)] == [
        "1+7+1=8 is wrong: 1+7+1 is 9.", "4+8=12 is wrong: 4+8 is 13.", "Every step checks out.", "Every step checks out."]
    assert [sc.traces[i].revision for i in (1, 2, 3, 4)] == [
        "19+72: 9+2=11, 1+7+1=9, so 91", "24+98: 4+8=13, 2+9+1=13, so 133", first["13 + 25"], "60"]
    prefixed = [r.assistant_prefix for r in rt.asked if r.assistant_prefix]
    assert prefixed == ["19+72: 9+2=11, 1+7+1=9", "24+98: 4+8=13"]
    # the checks: single operations, left to right (1 + 7, then 8 + 1), a sum in both orders
    asked = {r.messages[-1]["content"] for r in rt.asked if r.tag != "judge" and not r.assistant_prefix} - {
        f"What is {e}?" for e in first}
    assert {"What is 1 + 7?", "What is 7 + 1?", "What is 8 + 1?", "What is 1 + 8?", "What is 2 + 9?"} <= asked
    assert "What is 1 + 7 + 1?" not in asked and all(r.sampling.temperature == 0 for r in rt.asked)
    # the judge's pick: the fix stands (the judge reaches 91), the false alarm does not (it reaches 122)
    assert (sc.first, sc.final, sc.right_to_wrong, sc.wrong_to_right) == (3, 4, 0, 1)
    assert (sc.revised, sc.revised_right_to_wrong, sc.revised_wrong_to_right) == (3, 1, 1)
    # a domain whose answers write out no computations has no step critic
    with pytest.raises(ValueError, match="round.critique: 'steps' needs a domain whose answers write out"):
        Recipe.model_validate({**load_recipe("python")[0].model_dump(), "round": {
            **load_recipe("python")[0].round.model_dump(), "critique": "steps"}})


def test_a_second_step_turn_checks_only_the_continued_answers_and_fixes_their_next_slip() -> None:
    """With ``round.debate_turns = 2`` the continuation is checked again: a second slip written after
    the first fix is named and the answer continued from it; answers the first turn left as they were
    are not asked again, nor any computation checked before."""
    base = load_recipe("recipes/plain.toml")[0]
    recipe = base.model_copy(update={"round": base.round.model_copy(update={
        "judging": "compute", "critique": "steps", "debate_turns": 2})})
    tasks = [TaskRow(i, Task("arith", f"What is {e}?", str(eval(e)), 3, f"fp{i}", {"expression": e}))
             for i, e in enumerate(["398 + 958", "13 + 25"], 1)]
    first = {"398 + 958": "398+958: 8+8=16, 9+5+1=14, 3+9+1=12, so 1246",  # two slips
             "13 + 25": "13+25: 3+5=8, 1+2=3, so 38"}
    cont = {"398+958: 8+8=16, 9+5+1=15": ", 3+9+1=12, so 1256",  # the first fix, the second slip kept
            "398+958: 8+8=16, 9+5+1=15, 3+9+1=13": ", so 1356"}
    rt = StepScripted(first, cont, {"398 + 958": "1356", "13 + 25": "38"}, {})
    sc = debate_score(rt, recipe, tasks)  # type: ignore[arg-type]
    assert sc.traces[1].revision == "398+958: 8+8=16, 9+5+1=15, 3+9+1=13, so 1356"
    assert sc.traces[1].critique == "3+9+1=12 is wrong: 3+9+1 is 13."  # the last turn's
    assert sc.traces[2].revision == first["13 + 25"] and sc.traces[2].critique == "Every step checks out."
    assert [r.assistant_prefix for r in rt.asked if r.assistant_prefix] == list(cont)
    asked = [r.messages[-1]["content"] for r in rt.asked if r.tag != "judge" and not r.assistant_prefix]
    # each computation is asked once: 3+9+1, written in the first answer too, is known by the second turn
    assert asked.count("What is 3 + 5?") == 1 and asked.count("What is 3 + 9?") == 1
    assert (sc.first, sc.final, sc.wrong_to_right) == (1, 2, 1)


def test_the_step_critic_reads_numbers_with_leading_zeros_as_integers() -> None:
    """A step written with a leading zero ("07+5=12") is asked as "7 + 5", and a check answered
    "01" is the value 1: no crash (Python reads 07 as no number) and no false slip."""
    base = load_recipe("recipes/plain.toml")[0]
    recipe = base.model_copy(update={"round": base.round.model_copy(update={"judging": "compute", "critique": "steps"})})
    tasks = [TaskRow(1, Task("arith", "What is 17 + 5?", "22", 2, "fp1", {"expression": "17 + 5"}))]
    first = {"17 + 5": "17+5: 07+5=12, 1+0+1=02, so 22"}
    rt = StepScripted(first, {}, {"17 + 5": "22"}, {"1 + 0": "01"})
    sc = debate_score(rt, recipe, tasks)  # type: ignore[arg-type]
    asked = {r.messages[-1]["content"] for r in rt.asked if r.tag != "judge"}
    assert {"What is 7 + 5?", "What is 1 + 0?", "What is 1 + 1?"} <= asked and not any("07" in a for a in asked)
    assert sc.traces[1].critique == "Every step checks out." and sc.traces[1].revision == first["17 + 5"]



def test_a_judge_that_checks_its_own_steps_mends_its_result_before_it_judges() -> None:
    """round.judge_check = "steps": the computing judge's worked result is checked as the step critic
    checks an answer, continued from its slip, and the mended result is the one it judges with: a
    right first answer is no longer called wrong, and a right revision is no longer refused."""
    base = load_recipe("recipes/plain.toml")[0]
    rnd = base.round.model_copy(update={"judging": "compute", "critique": "steps"})
    recipe = base.model_copy(update={"round": rnd, "task": base.task.model_copy(update={"answer_format": "columns"})})
    checking = recipe.model_copy(update={"round": rnd.model_copy(update={"judge_check": "steps"})})
    tasks = [TaskRow(i, Task("arith", f"What is {e}?", str(eval(e)), 2, f"fp{i}", {"expression": e}))
             for i, e in enumerate(["19 + 72", "28 + 63"], 1)]
    first = {"19 + 72": "19+72: 9+2=11, 1+7+1=9, so 91",  # right
             "28 + 63": "28+63: 8+3=11, 2+6+1=8, so 81"}  # wrong: 2+6+1 is 9
    results = {"19 + 72": "19+72: 9+2=11, 1+7+1=8, so 81",  # the judge slips on both, where the answers do
               "28 + 63": "28+63: 8+3=11, 2+6+1=8, so 81"}
    cont = {"28+63: 8+3=11, 2+6+1=9": ", so 91", "19+72: 9+2=11, 1+7+1=9": ", so 91"}
    plain = debate_score(StepScripted(first, cont, results, {}), recipe, tasks)  # type: ignore[arg-type]
    rt = StepScripted(first, cont, results, {})
    checked = debate_score(rt, checking, tasks)  # type: ignore[arg-type]
    assert [plain.traces[i].judge_first for i in (1, 2)] == [False, True]  # its slips: the right one refused
    assert [checked.traces[i].judge_first for i in (1, 2)] == [True, False]
    assert [checked.traces[i].judge_answer for i in (1, 2)] == ["19+72: 9+2=11, 1+7+1=9, so 91", "28+63: 8+3=11, 2+6+1=9, so 91"]
    assert (plain.first, plain.final, checked.final) == (1, 1, 2)  # the fix stands only with the judge mended
    assert sum(1 for r in rt.asked if r.tag == "judge" and r.assistant_prefix) == 2



def test_an_inline_check_reads_the_value_the_step_is_written_with_not_a_worked_reply() -> None:
    """round.step_check = "inline": each operation is asked with the reply started as a worked answer
    writes it ("7+9="), and the checked value is the number the reply goes on with. An adapter that
    works "7 + 9" as a task into a wrong second column ("16, 7+0+1=8, so 86") still writes the step's
    value first: the task form calls the right answer wrong, the inline form does not."""
    base = load_recipe("recipes/plain.toml")[0]
    rnd = base.round.model_copy(update={"judging": "compute", "critique": "steps"})
    as_task = base.model_copy(update={"round": rnd})
    inline = base.model_copy(update={"round": rnd.model_copy(update={"step_check": "inline"})})
    tasks = [TaskRow(1, Task("arith", "What is 27 + 19?", "46", 2, "fp1", {"expression": "27 + 19"}))]
    first = {"27 + 19": "27+19: 7+9=16, 2+1+1=4, so 46"}
    checks = {"7 + 9": "16, 7+0+1=8, so 86", "9 + 7": "16, 7+0+1=8, so 86"}
    told = debate_score(StepScripted(first, {"27 + 19": ", so 116"}, {"27 + 19": "46"}, checks), as_task, tasks)  # type: ignore[arg-type]
    assert told.traces[1].critique == "7+9=16 is wrong: 7+9 is 86."  # the task form's false alarm
    rt = StepScripted(first, {}, {"27 + 19": "46"}, checks)
    sc = debate_score(rt, inline, tasks)  # type: ignore[arg-type]
    assert sc.traces[1].critique == "Every step checks out." and sc.traces[1].revision == first["27 + 19"]
    prefixes = {r.assistant_prefix for r in rt.asked if r.assistant_prefix}
    assert {"7+9=", "9+7=", "2+1=", "1+2=", "3+1=", "1+3="} <= prefixes


def test_a_digits_step_critic_checks_one_digit_operations_a_carry_sum_smallest_first() -> None:
    """round.step_operands = "digits": a column's sum with its carry (5+6+1) is checked as 1+5, then
    6+6, never as 11+1, which an adapter writing columns answers with a column's digit ("2"); an
    operation with a longer number (40+4 in 8*5+4) is left unchecked. With "any" both raise false
    alarms; with "digits" both answers stand (the second is wrong, but no check found it)."""
    base = load_recipe("recipes/plain.toml")[0]
    rnd = base.round.model_copy(update={"judging": "compute", "critique": "steps", "step_check": "inline"})
    anyops = base.model_copy(update={"round": rnd})
    digits = base.model_copy(update={"round": rnd.model_copy(update={"step_operands": "digits"})})
    tasks = [TaskRow(1, Task("arith", "What is 56 + 67?", "123", 2, "fp1", {"expression": "56 + 67"})),
             TaskRow(2, Task("arith", "What is 8 * 5 + 4?", "44", 9, "fp2", {"expression": "8 * 5 + 4"}))]
    first = {"56 + 67": "56+67: 6+7=13, 5+6+1=12, so 123", "8 * 5 + 4": "8*5+4=42, so 42"}
    checks = {"11 + 1": "2", "1 + 11": "2", "40 + 4": "6", "4 + 40": "6"}
    results = {"56 + 67": "123", "8 * 5 + 4": "44"}
    told = debate_score(StepScripted(first, {"56 + 67": ", so 23", "8 * 5 + 4": ", so 6"}, results, checks),
                        anyops, tasks)  # type: ignore[arg-type]
    assert told.traces[1].critique == "5+6+1=12 is wrong: 5+6+1 is 2."
    assert told.traces[2].critique == "8*5+4=42 is wrong: 8*5+4 is 6."
    rt = StepScripted(first, {}, results, checks)
    sc = debate_score(rt, digits, tasks)  # type: ignore[arg-type]
    assert [sc.traces[i].critique for i in (1, 2)] == ["Every step checks out."] * 2
    assert [sc.traces[i].revision for i in (1, 2)] == [first["56 + 67"], first["8 * 5 + 4"]]
    prefixes = {r.assistant_prefix for r in rt.asked if r.assistant_prefix}
    assert {"6+7=", "7+6=", "1+5=", "5+1=", "6+6=", "8*5=", "5*8="} == prefixes


def test_a_spaced_check_must_reach_the_same_value_before_a_step_is_a_slip() -> None:
    """round.step_spaced: each inline check is asked written spaced too ("4 + 5 = "), and a value
    stands only where both forms reach it. An adapter that believes 4+5 is 10 in the compact form,
    both orders, turns a right answer wrong without it; with it, the step is left unchecked and the
    answer stands, while a real slip, which both forms see, is still mended."""
    base = load_recipe("recipes/plain.toml")[0]
    rnd = base.round.model_copy(update={"judging": "compute", "critique": "steps", "step_check": "inline",
                                        "step_operands": "digits"})
    compact = base.model_copy(update={"round": rnd})
    spaced = base.model_copy(update={"round": rnd.model_copy(update={"step_spaced": True})})
    tasks = [TaskRow(1, Task("arith", "What is 45 + 54?", "99", 2, "fp1", {"expression": "45 + 54"})),
             TaskRow(2, Task("arith", "What is 28 + 63?", "91", 2, "fp2", {"expression": "28 + 63"}))]
    first = {"45 + 54": "45+54: 5+4=9, 4+5=9, so 99",  # right
             "28 + 63": "28+63: 8+3=11, 2+6+1=8, so 81"}  # wrong: 2+6+1 is 9
    cont = {"45+54: 5+4=10": ", 4+5+1=10, so 1009", "28+63: 8+3=11, 2+6+1=9": ", so 91"}
    beliefs = {"4 + 5": "10", "5 + 4": "10"}  # compact, both orders; the spaced form answers 9
    results = {"45 + 54": "99", "28 + 63": "91"}
    told = debate_score(StepScripted(first, cont, results, beliefs), compact, tasks)  # type: ignore[arg-type]
    assert told.traces[1].critique == "5+4=9 is wrong: 5+4 is 10." and not told.traces[1].revision_right
    rt = StepScripted(first, cont, results, beliefs, spaced={})
    sc = debate_score(rt, spaced, tasks)  # type: ignore[arg-type]
    assert sc.traces[1].critique == "Every step checks out." and sc.traces[1].revision == first["45 + 54"]
    assert sc.traces[2].critique == "2+6+1=8 is wrong: 2+6+1 is 9." and sc.traces[2].revision_right
    prefixes = {r.assistant_prefix for r in rt.asked if r.assistant_prefix and r.assistant_prefix.endswith("=")}
    spaced_asked = {r.assistant_prefix for r in rt.asked if r.assistant_prefix and r.assistant_prefix.endswith(" = ")}
    assert {"4+5=", "5+4=", "1+2=", "2+1="} <= prefixes and {"4 + 5 = ", "1 + 2 = ", "3 + 6 = "} <= spaced_asked
    assert "5 + 4 = " not in spaced_asked  # the spaced form in the order checked only
    assert (sc.first, sc.final, sc.right_to_wrong) == (1, 2, 0)


def _step_critic_recipes(setting: str) -> tuple[Recipe, Recipe]:
    """plain.toml answering in columns, with the step critic and the computing judge that checks its
    own steps: as it is, and with the round's ``setting`` (a check of the step critic's) on."""
    base = load_recipe("recipes/plain.toml")[0]
    rnd = base.round.model_copy(update={"judging": "compute", "critique": "steps", "judge_check": "steps"})
    recipe = base.model_copy(update={"round": rnd, "task": base.task.model_copy(update={"answer_format": "columns"})})
    return recipe, recipe.model_copy(update={"round": rnd.model_copy(update={setting: True})})


def test_a_plan_check_continues_an_answer_that_stops_short_or_takes_the_wrong_operation() -> None:
    """round.step_plan: an answer that stops before the task's last operation ("so 86" for 69 + 43 * 2)
    or takes another than the one due ("74*74" for 2 + 4 * 74) is continued with the operation due in
    place, written with the answer's own values, and again while it stops short; the computing judge's own work is read the same way
    (round.judge_check = "steps"). A right answer, one that adds a sum's numbers the other way round
    included, stands. Without it both wrong answers stand, and the judge, stopping short too, passes one."""
    recipe, planned = _step_critic_recipes("step_plan")
    exprs = ["69 + 43 * 2", "2 + 4 * 74", "45 + 12 * 3", "5 + 36"]
    tasks = [TaskRow(i, Task("arith", f"What is {e}?", str(eval(e)), 9, f"fp{i}", {"expression": e}))
             for i, e in enumerate(exprs, 1)]
    first = {"69 + 43 * 2": "43*2: 3*2=6, 4*2=8, so 86",  # stops short: 69+86 is still to do
             "2 + 4 * 74": "74*74: 4*7=28, 7*7+2=51, so 518",  # the wrong operation first
             "45 + 12 * 3": "12*3: 2*3=6, 1*3=3, so 36; 45+36: 5+6=11, 4+3+1=8, so 81",  # right, in order
             "5 + 36": "36+5: 6+5=11, 3+0+1=4, so 41"}  # right, its numbers the other way round
    cont = {"43*2: 3*2=6, 4*2=8, so 86; 69+86": ": 9+6=15, 6+8+1=15, so 155",
            "4*74": " = 74*4: 4*4=16, 7*4+1=29, so 296",  # stops short again: continued again (stepcheck.finish)
            "4*74 = 74*4: 4*4=16, 7*4+1=29, so 296; 2+296": ": 2+6=8, 0+9=9, 0+2=2, so 298"}
    results = {e: first[e] for e in exprs}  # the judge works each out as the solver did
    plain = debate_score(StepScripted(first, cont, results, {}), recipe, tasks)  # type: ignore[arg-type]
    assert [plain.traces[i].revision for i in (1, 2)] == [first["69 + 43 * 2"], first["2 + 4 * 74"]]
    assert plain.traces[1].judge_first is True  # its own result stopped short too: the wrong answer passes
    rt = StepScripted(first, cont, results, {})
    sc = debate_score(rt, planned, tasks)  # type: ignore[arg-type]
    assert sc.traces[1].critique == "The answer stops too soon: 69+86 is still to do."
    assert sc.traces[2].critique == "The step to take there is 4*74."
    assert [sc.traces[i].revision for i in (1, 2)] == [
        "43*2: 3*2=6, 4*2=8, so 86; 69+86: 9+6=15, 6+8+1=15, so 155",
        "4*74 = 74*4: 4*4=16, 7*4+1=29, so 296; 2+296: 2+6=8, 0+9=9, 0+2=2, so 298"]
    assert [sc.traces[i].critique for i in (3, 4)] == ["Every step checks out."] * 2
    assert [sc.traces[i].revision for i in (3, 4)] == [first["45 + 12 * 3"], first["5 + 36"]]
    assert [sc.traces[i].judge_first for i in (1, 2, 3, 4)] == [False, False, True, True]  # the judge mended too
    assert (plain.final, sc.first, sc.final, sc.right_to_wrong) == (2, 2, 4, 0)
    judge_prefixes = [r.assistant_prefix for r in rt.asked if r.tag == "judge" and r.assistant_prefix]
    assert sorted(judge_prefixes) == sorted(cont)


def test_a_column_check_mends_a_dropped_carry_a_left_out_column_and_a_misread_result() -> None:
    """round.step_columns: columns whose every sum is right can still be laid out wrong: a carry
    left out ("9+9=18" after "2+8=10"), a column left out, a result read wrong off right columns.
    The critic reads each against the head's digits and the totals written before it, and the answer
    goes on with what is due in place; the computing judge's own work is read the same way. A right
    answer stands; without the setting the three wrong ones stand and the judge passes them."""
    recipe, laid = _step_critic_recipes("step_columns")
    exprs = ["922 + 987", "777 + 179", "893 + 765", "19 + 72"]
    tasks = [TaskRow(i, Task("arith", f"What is {e}?", str(eval(e)), 3, f"fp{i}", {"expression": e}))
             for i, e in enumerate(exprs, 1)]
    first = {"922 + 987": "922+987: 2+7=9, 2+8=10, 9+9=18, so 1809",  # the carry left out
             "777 + 179": "777+179: 7+9=16, 7+7+1=15, so 156",  # the hundreds left out
             "893 + 765": "893+765: 3+5=8, 9+6=15, 8+7+1=16, so 158",  # the result misread
             "19 + 72": "19+72: 9+2=11, 1+7+1=9, so 91"}  # right
    cont = {"922+987: 2+7=9, 2+8=10, 9+9+1": "=19, so 1909",
            "777+179: 7+9=16, 7+7+1=15, 7+1+1": "=9, so 956",
            "893+765: 3+5=8, 9+6=15, 8+7+1=16, so 1658": ""}
    results = {e: first[e] for e in exprs}  # the judge works each out as the solver did
    plain = debate_score(StepScripted(first, cont, results, {}), recipe, tasks)  # type: ignore[arg-type]
    assert [plain.traces[i].revision for i in (1, 2, 3)] == [first[e] for e in exprs[:3]]
    assert [plain.traces[i].judge_first for i in (1, 2, 3)] == [True] * 3  # its own columns alike: passed
    rt = StepScripted(first, cont, results, {})
    sc = debate_score(rt, laid, tasks)  # type: ignore[arg-type]
    assert [sc.traces[i].critique for i in (1, 2, 3, 4)] == [
        "The column there is 9+9+1, not 9+9.", "A column is left out: 7+1+1.",
        "The columns give 1658, not 158.", "Every step checks out."]
    assert [sc.traces[i].revision for i in (1, 2, 3, 4)] == [
        "922+987: 2+7=9, 2+8=10, 9+9+1=19, so 1909", "777+179: 7+9=16, 7+7+1=15, 7+1+1=9, so 956",
        "893+765: 3+5=8, 9+6=15, 8+7+1=16, so 1658", first["19 + 72"]]
    assert [sc.traces[i].judge_first for i in (1, 2, 3, 4)] == [False, False, False, True]  # the judge mended too
    assert (plain.final, sc.first, sc.final, sc.right_to_wrong) == (1, 1, 4, 0)
    judge_prefixes = [r.assistant_prefix for r in rt.asked if r.tag == "judge" and r.assistant_prefix]
    assert sorted(judge_prefixes) == sorted(cont)
