"""The debate measured as a protocol on fixed task sets: what the swarm's own machinery does to
answers when no verifier is there to help.

For every task: the first solver answers (greedy, the solve prompt: the same answer pass@1
scores), the first critic critiques it, the solver revises it with the critique (once per
recipe debate turn), and the judge gives a verdict on the first answer and on the revision (round.judging =
"compute": the judge's own result, worked out once per task, judges both). The debate's answer
is then the judge's pick (round.debate_answer = "judged"): the revision where the judge calls
the first answer wrong and the revision right, else the first answer; or the revision, whatever
the judge said ("revision"). Both are scored from the same generations, so every score also
says what the revision alone would have been worth (``revised``).
Only then does the verifier score the answers, so the figures say what the debate is worth
to a user who has no checker: accuracy before and after, right->wrong and wrong->right flips,
and the judge's balanced accuracy (the mean of its hit rates on right and on wrong answers,
its verdicts on first answers and on revisions; a judge that always says the same thing scores
50%). Greedy decoding makes the figures reproducible; the round's debate samples with each
agent's temperature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from engine.agents import (fill, join_votes, judge_consensus, judge_requests, judge_result, judge_task, judge_text,
                           judge_verdict, request, split_votes)
from engine.recipes import AgentSpec, Recipe
from engine.roundbase import TaskRow
from engine.runtime import Request, Runtime
from engine.stepcheck import Fault, critique_of, mend
from engine.store import Store
from engine.tasks import get_domain


class Trace(NamedTuple):
    """One task's debate: the answers, the verifier's marks, the judge's verdicts (None: unusable)
    and which answer the debate settled on (``answer``: first, revision or judge)."""

    first: str
    critique: str | None
    revision: str
    first_right: bool
    revision_right: bool
    judge_first: bool | None
    judge_revision: bool | None
    answer: str
    #: a computing judge's own result as it wrote it (with votes: a vote that reached the value
    #: enough of them reach), where it has one, and whether the verifier passes it
    judge_answer: str | None = None
    judge_answer_right: bool | None = None


@dataclass(frozen=True)
class DebateScore:
    n: int
    first: int  # right first answers
    final: int  # right answers after the debate (the debate's answer: round.debate_answer)
    right_to_wrong: int
    wrong_to_right: int
    judge_tp: int = 0  # judge: right, verifier: right (first answers and revisions together)
    judge_tn: int = 0
    judge_fp: int = 0
    judge_fn: int = 0  # an unusable verdict counts against the judge
    #: task id -> its Trace
    traces: dict[int, Trace] = field(default_factory=dict, compare=False)
    #: the revisions alone: right ones and their flips (None: not known, a score recorded before
    #: the debate's answer was the judge's pick, or a round's own debate)
    revised: int | None = None
    revised_right_to_wrong: int | None = None
    revised_wrong_to_right: int | None = None
    #: a computing judge's own results (round.judging = "compute"; None otherwise): right ones, and
    #: the answer a three-way pick would give (the judge's result where it disagrees with both the
    #: first answer and the revision, with votes the value enough of them reach where one does,
    #: else the judged pick) with its flips
    judge_results: int | None = None
    three_way: int | None = None
    three_way_right_to_wrong: int | None = None
    three_way_wrong_to_right: int | None = None

    @property
    def first_accuracy(self) -> float:
        return self.first / self.n if self.n else 0.0

    @property
    def final_accuracy(self) -> float:
        return self.final / self.n if self.n else 0.0

    @property
    def gain(self) -> float:
        """Accuracy after the debate minus before (fraction)."""
        return (self.final - self.first) / self.n if self.n else 0.0

    @property
    def revised_right(self) -> int:
        """Right revisions (the debate's answers where the revisions are not known apart)."""
        return self.final if self.revised is None else self.revised

    @property
    def revisions(self) -> DebateScore | None:
        """The revisions alone scored as a debate's answer (None where not known)."""
        if self.revised is None or self.revised_right_to_wrong is None or self.revised_wrong_to_right is None:
            return None
        return DebateScore(self.n, self.first, self.revised, self.revised_right_to_wrong, self.revised_wrong_to_right)

    @property
    def three_ways(self) -> DebateScore | None:
        """The three-way pick scored as a debate's answer (None without a computing judge)."""
        if self.three_way is None or self.three_way_right_to_wrong is None or self.three_way_wrong_to_right is None:
            return None
        return DebateScore(self.n, self.first, self.three_way, self.three_way_right_to_wrong,
                           self.three_way_wrong_to_right)

    @property
    def right_to_wrong_rate(self) -> float | None:
        """Share of right first answers the debate turned wrong."""
        return self.right_to_wrong / self.first if self.first else None

    @property
    def wrong_to_right_rate(self) -> float | None:
        wrong = self.n - self.first
        return self.wrong_to_right / wrong if wrong else None

    @property
    def judge_balanced_accuracy(self) -> float | None:
        """Mean of the judge's hit rates on right and on wrong answers; None without both kinds.

        >>> DebateScore(4, 2, 2, 0, 0, judge_tp=4, judge_tn=0, judge_fp=4, judge_fn=0).judge_balanced_accuracy
        0.5
        """
        pos, neg = self.judge_tp + self.judge_fn, self.judge_tn + self.judge_fp
        if not pos or not neg:
            return None
        return (self.judge_tp / pos + self.judge_tn / neg) / 2

    def summary(self) -> dict[str, Any]:
        out = {"n": self.n, "first": self.first_accuracy, "final": self.final_accuracy, "gain": self.gain,
               "right_to_wrong": self.right_to_wrong_rate, "wrong_to_right": self.wrong_to_right_rate,
               "judge_balanced_accuracy": self.judge_balanced_accuracy,
               "judge": {"tp": self.judge_tp, "tn": self.judge_tn, "fp": self.judge_fp, "fn": self.judge_fn}}
        rev = self.revisions
        if rev is not None and self.n:
            out["revised"] = {"final": rev.final_accuracy, "gain": rev.gain, "right_to_wrong": rev.right_to_wrong_rate,
                              "wrong_to_right": rev.wrong_to_right_rate}
        three = self.three_ways
        if three is not None and self.judge_results is not None and self.n:
            out["judge_result"] = self.judge_results / self.n
            out["three_way"] = {"final": three.final_accuracy, "gain": three.gain,
                                "right_to_wrong": three.right_to_wrong_rate, "wrong_to_right": three.wrong_to_right_rate}
        return out

    def __add__(self, other: DebateScore) -> DebateScore:
        """Pool two scores (over disjoint task sets); the revisions' counts only where both know them.
        An empty score adds nothing (it starts a sum)."""
        if not self.n or not other.n:
            return other if not self.n else self

        def both(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else a + b

        return DebateScore(self.n + other.n, self.first + other.first, self.final + other.final,
                           self.right_to_wrong + other.right_to_wrong, self.wrong_to_right + other.wrong_to_right,
                           self.judge_tp + other.judge_tp, self.judge_tn + other.judge_tn,
                           self.judge_fp + other.judge_fp, self.judge_fn + other.judge_fn,
                           {**self.traces, **other.traces}, both(self.revised, other.revised),
                           both(self.revised_right_to_wrong, other.revised_right_to_wrong),
                           both(self.revised_wrong_to_right, other.revised_wrong_to_right),
                           both(self.judge_results, other.judge_results), both(self.three_way, other.three_way),
                           both(self.three_way_right_to_wrong, other.three_way_right_to_wrong),
                           both(self.three_way_wrong_to_right, other.three_way_wrong_to_right))


def _greedy(agent: AgentSpec) -> AgentSpec:
    return agent.model_copy(update={"temperature": 0.0})


def debate_score(runtime: Runtime, recipe: Recipe, tasks: Sequence[TaskRow],
                 first_texts: Sequence[str] | None = None,
                 serve: Callable[[str], None] | None = None) -> DebateScore:
    """Play the debate protocol on ``tasks`` with whatever adapter the runtime serves now, or,
    with ``serve`` (``engine.roles.server``), each role's requests under that role's adapter:
    ``serve(role)`` runs before the solver's, critic's, reviser's and judge's requests.
    ``first_texts``: the greedy first answers if already generated (pass@1 scoring made them)."""
    use = serve or (lambda role: None)
    domain = get_domain(recipe.task.domain)
    solver = _greedy(recipe.agents_with("solver")[0])
    critics, judges = recipe.agents_with("critic"), recipe.agents_with("judge")
    p = recipe.prompts
    if first_texts is None:
        use("solver")
        comps = runtime.submit_many([request(solver, fill(p.solve, {"task": tr.task.prompt}), 0, greedy=True)
                                     for tr in tasks])
        first_texts = [c.result().text for c in comps]
    texts = list(first_texts)
    critiques: list[str | None] = [None] * len(tasks)
    known: dict[str, str | None] = {}  # computations the step checks have asked: none is asked again
    if critics and recipe.round.critique == "steps":  # engine.stepcheck: the slip located, the answer continued from it
        def note(found_in: list[int], slips: list[Fault | None]) -> None:  # a later turn checks only continued answers
            for i, s in zip(found_in, slips):
                critiques[i] = critique_of(s)

        texts = [t for t, _n in mend(
            runtime, recipe, domain, solver, texts,
            lambda i, pre: request(solver, fill(p.solve, {"task": tasks[i].task.prompt}), 0, greedy=True, prefix=pre),
            turns=recipe.round.debate_turns, before_check=lambda: use("solver"), before_go_on=lambda: use("reviser"),
            known=known, on_slips=note, tasks=[tr.task for tr in tasks])]
    elif critics:
        critic = _greedy(critics[0])
        for _turn in range(recipe.round.debate_turns):
            use("critic")
            crits = [c.result().text for c in runtime.submit_many([
                request(critic, fill(p.critique, {"task": tr.task.prompt, "answer": t}), 0, greedy=True)
                for tr, t in zip(tasks, texts)])]
            use("reviser")
            texts = [c.result().text for c in runtime.submit_many([
                request(solver, fill(p.revise, {"task": tr.task.prompt, "answer": t, "critique": k}), 0, greedy=True)
                for tr, t, k in zip(tasks, texts, crits)])]
            critiques = list(crits)
    first_v = [domain.verify(tr.task, t) for tr, t in zip(tasks, first_texts)]
    final_v = [domain.verify(tr.task, t) for tr, t in zip(tasks, texts)]
    first_ok, final_ok = [v.correct for v in first_v], [v.correct for v in final_v]
    judged_first: list[bool | None] = [None] * len(tasks)
    judged_final: list[bool | None] = [None] * len(tasks)
    judge_ok: list[bool] = [False] * len(tasks)  # a computing judge's own result is right
    agreed: list[str | None] = [None] * len(tasks)  # its result as written (with votes: their consensus's)
    agreed_ok: list[bool | None] = [None] * len(tasks)  # and whether it is right (None: it has none)
    compute = recipe.round.judging == "compute"
    if judges:
        judge = _greedy(judges[0])
        # One request per distinct reply: the first answer, the final one where it changed (a
        # computing judge's request names no answer: one per task).
        asked = [(i, which, t) for i, (a, b) in enumerate(zip(first_texts, texts))
                 for which, t in (("first", a), ("final", b)) if which == "first" or (b != a and not compute)]
        views = [judge_task(recipe, domain, tasks[i].task) for i, _w, _t in asked]  # each task as put to the judge
        use("judge")
        reqs = [judge_requests(recipe, judge, v.prompt, t, 0, greedy=True) for v, (_i, _w, t) in zip(views, asked)]
        comps = iter(runtime.submit_many([r for rs in reqs for r in rs]))
        saids = [join_votes([judge_text(recipe, next(comps).result().text) for _ in rs]) for rs in reqs]
        if compute and recipe.round.judge_check == "steps":  # the judge's own work checked and mended first
            def go_on(k: int, pre: str) -> Request:
                return request(judge, fill(p.judge_compute, {"task": views[k].prompt}), 0, greedy=True, prefix=pre)
            saids = [t for t, _n in mend(runtime, recipe, domain, solver, saids, go_on,
                                         turns=max(1, recipe.round.debate_turns), before_check=lambda: use("solver"),
                                         before_go_on=lambda: use("judge"), known=known, tasks=views)]
        for (i, which, t), said in zip(asked, saids):
            if which == "first":
                judged_first[i] = judge_verdict(recipe, domain, tasks[i].task, t, said)
                if compute:  # the same result judges the final answer
                    judged_final[i] = judge_verdict(recipe, domain, tasks[i].task, texts[i], said)
                    judge_ok[i] = (judged_first[i] is not None  # its own result: the first (greedy) vote's
                                   and domain.verify(tasks[i].task, split_votes(said)[0]).correct)
                    value = judge_consensus(recipe, domain, tasks[i].task, said)
                    if value is not None:
                        agreed[i] = next(v for v in split_votes(said)
                                         if judge_result(recipe, domain, tasks[i].task, v) == value)
                        agreed_ok[i] = domain.verify(tasks[i].task, value).correct
            else:
                judged_final[i] = judge_verdict(recipe, domain, tasks[i].task, t, said)
        for i, (a, b) in enumerate(zip(first_texts, texts)):
            if b == a:
                judged_final[i] = judged_first[i]
    tp = tn = fp = fn = 0
    if judges:
        for truth, said in [*zip(first_ok, judged_first), *zip(final_ok, judged_final)]:
            if truth:
                tp, fn = (tp + 1, fn) if said is True else (tp, fn + 1)
            else:
                tn, fp = (tn + 1, fp) if said is False else (tn, fp + 1)
    same = [same_value(a, b, x.answer, y.answer) for a, b, x, y in zip(first_texts, texts, first_v, final_v)]
    picks = [pick(recipe, bool(judges), a, b, jf, jl, j is not None, s)
             for a, b, jf, jl, j, s in zip(first_texts, texts, judged_first, judged_final, agreed, same)]
    rows = [Trace(*t) for t in zip(first_texts, critiques, texts, first_ok, final_ok, judged_first, judged_final,
                                   picks, agreed, agreed_ok)]
    answer_ok = [answer_right(t) for t in rows]
    traces = {tr.id: t for tr, t in zip(tasks, rows)}

    def flips(after: list[bool]) -> tuple[int, int]:
        return (sum(1 for a, b in zip(first_ok, after) if a and not b),
                sum(1 for a, b in zip(first_ok, after) if b and not a))

    (r2w, w2r), (rev_r2w, rev_w2r) = flips(answer_ok), flips(final_ok)
    if not (judges and compute):
        return DebateScore(len(tasks), sum(first_ok), sum(answer_ok), r2w, w2r, tp, tn, fp, fn, traces,
                           sum(final_ok), rev_r2w, rev_w2r)
    # The judge's own result stands where it disagrees with both answers (its verdicts on both are
    # "wrong") and it has one (with votes: the value enough of them reach, ``judge_consensus``;
    # without: its result): a diagnostic of whether the judge's results are worth more than the solver's.
    three_ok = [bool(t.judge_answer_right) if t.judge_answer is not None and _both_wrong(t.judge_first, t.judge_revision,
                                                                                   t.first == t.revision) else ok
                for t, ok in zip(rows, answer_ok)]
    t_r2w, t_w2r = flips(three_ok)
    return DebateScore(len(tasks), sum(first_ok), sum(answer_ok), r2w, w2r, tp, tn, fp, fn, traces,
                       sum(final_ok), rev_r2w, rev_w2r, sum(judge_ok), sum(three_ok), t_r2w, t_w2r)


def answer_words(answer: str) -> str:
    """How a trace's ``answer`` reads: the first answer, the revision, the judge's result.

    >>> answer_words("first"), answer_words("judge")
    ('the first answer', "the judge's result")
    """
    return {"first": "the first answer", "revision": "the revision", "judge": "the judge's result"}.get(answer, answer)


def trace_lines(trace: Trace, mark: Callable[[bool], str]) -> list[str]:
    """A trace as lines to read (``swarm replay --show``, the inspector's replay); ``mark`` writes
    the verifier's mark.

    >>> t = Trace("81", "check the tens", "80", True, False, True, False, "first", "81", True)
    >>> for line in trace_lines(t, lambda ok: "right" if ok else "wrong"): print(line)
    first answer right (judge: True): 81
    critique: check the tens
    revision wrong (judge: False): 80
    the debate's answer: the first answer
    >>> trace_lines(t._replace(critique=None, answer="judge"), str)[1:]
    ["the judge's result True: 81", "the debate's answer: the judge's result"]
    """
    out = [f"first answer {mark(trace.first_right)} (judge: {trace.judge_first}): {trace.first.strip()}"]
    if trace.critique is not None:
        out += [f"critique: {trace.critique.strip()}",
                f"revision {mark(trace.revision_right)} (judge: {trace.judge_revision}): {trace.revision.strip()}"]
    if trace.answer == "judge" and trace.judge_answer is not None:
        out.append(f"the judge's result {mark(bool(trace.judge_answer_right))}: {trace.judge_answer.strip()}")
    if trace.critique is not None or trace.answer == "judge":
        out.append(f"the debate's answer: {answer_words(trace.answer)}")
    return out


def _both_wrong(judge_first: bool | None, judge_revision: bool | None, same: bool) -> bool:
    """The judge called the first answer wrong, and the revision too (or it is the same answer)."""
    return judge_first is False and (judge_revision is False or same)


def answer_right(trace: Trace) -> bool:
    """Whether the debate's answer in a trace (``DebateScore.traces``) is right."""
    if trace.answer == "judge":
        return bool(trace.judge_answer_right)
    return bool(trace.revision_right if trace.answer == "revision" else trace.first_right)


def same_value(first: str, revision: str, first_answer: str | None, revision_answer: str | None) -> bool:
    """Whether a first answer and its revision say the same: the same text, or the same answer
    read from each (``Verdict.answer``; None, no answer, is never the same as another).

    >>> same_value("so 81", "81", "81", "81"), same_value("?", "!", None, None), same_value("x", "x", None, None)
    (True, False, True)
    """
    return first == revision or (first_answer is not None and first_answer == revision_answer)


def pick(recipe: Recipe, judged: bool, first: str, revision: str, judge_first: bool | None,
         judge_revision: bool | None, judge_has_result: bool = False, same_value: bool = False) -> str:
    """The debate's answer: ``"revision"``, ``"first"`` or ``"judge"``. With round.debate_answer =
    "judged" and a judge, the revision only where the judge called the first answer wrong and the
    revision right (an unusable verdict changes nothing); with "three-way" the same, except that where
    it called both wrong and has a result of its own, its result; with "majority" (a computing
    judge) the answer two of the three reach: the one the judge's result equals, the first where
    it and the revision have the same value (``same_value``), else the revision; else the revision.

    >>> from engine.recipes import load_recipe
    >>> r = load_recipe("default")[0]
    >>> pick(r, True, "5", "6", False, True), pick(r, True, "5", "6", True, True), pick(r, True, "5", "6", False, None)
    ('revision', 'first', 'first')
    >>> pick(r, False, "5", "6", None, None)
    'revision'
    >>> t = r.model_copy(update={"round": r.round.model_copy(update={"judging": "compute", "debate_answer": "three-way"})})
    >>> pick(t, True, "5", "6", False, False, True), pick(t, True, "5", "5", False, False, True), pick(t, True, "5", "6", False, False)
    ('judge', 'judge', 'first')
    >>> m = r.model_copy(update={"round": r.round.model_copy(update={"judging": "compute", "debate_answer": "majority"})})
    >>> pick(m, True, "5", "6", True, False, True), pick(m, True, "5", "6", False, True, True)
    ('first', 'revision')
    >>> pick(m, True, "so 5", "5", False, False, True, same_value=True), pick(m, True, "5", "6", False, False, True)
    ('first', 'revision')
    """
    if recipe.round.debate_answer == "majority" and judged:
        if judge_first is True or (same_value and first != revision):
            return "first"
        return "revision"
    if (recipe.round.debate_answer == "three-way" and judged and judge_has_result
            and _both_wrong(judge_first, judge_revision, first == revision)):
        return "judge"
    if recipe.round.debate_answer == "revision" or not judged or first == revision:
        return "revision"
    return "revision" if judge_first is False and judge_revision is True else "first"


def verdict_outcomes(sc: DebateScore) -> dict[tuple[int, str, str], bool]:
    """Whether each verdict the judge gave in a scored debate (with its traces) was right, keyed by
    task, answer and the answer's text: two debates played from the same first answers pair verdict
    by verdict on every first answer and on each revision both wrote alike. An unusable verdict
    counts as wrong (as in the judge's balanced accuracy).

    >>> sc = DebateScore(2, 1, 1, 0, 0, traces={1: Trace("5", "c", "6", False, True, False, True, "revision"),
    ...                                         2: Trace("7", "c", "7", True, True, None, None, "revision")})
    >>> verdict_outcomes(sc)
    {(1, 'first', '5'): True, (1, 'revision', '6'): True, (2, 'first', '7'): False}
    """
    out: dict[tuple[int, str, str], bool] = {}
    for tid, (first, _crit, revision, first_ok, revision_ok, judge_first, judge_revision, *_) in sc.traces.items():
        out[tid, "first", first] = judge_first is not None and judge_first == first_ok
        if revision != first:
            out[tid, "revision", revision] = judge_revision is not None and judge_revision == revision_ok
    return out


def record_debate(store: Store, run_id: int, rnd: int, adapter_id: int | None, eval_set: str, pool: str,
                  sc: DebateScore, adapters: str | None = None) -> int:
    """Write a debate score and each task's trace (inside the caller's transaction); returns its id.
    ``adapters``: which adapter each role ran under (``engine.roles.adapters_key``), when not all
    ran under ``adapter_id``."""
    did = store.allocate_ids("debate_evals", 1)[0]
    store.insert("debate_evals", [dict(
        id=did, run_id=run_id, round=rnd, adapter_id=adapter_id, eval_set=eval_set, pool=pool, n=sc.n,
        first_correct=sc.first, final_correct=sc.final, right_to_wrong=sc.right_to_wrong,
        wrong_to_right=sc.wrong_to_right, judge_tp=sc.judge_tp, judge_tn=sc.judge_tn, judge_fp=sc.judge_fp,
        judge_fn=sc.judge_fn, adapters=adapters, revised_correct=sc.revised,
        revised_right_to_wrong=sc.revised_right_to_wrong, revised_wrong_to_right=sc.revised_wrong_to_right)])
    store.insert("debate_eval_answers", [
        dict(debate_eval_id=did, task_id=tid, first_text=t.first, critique=t.critique, final_text=t.revision,
             first_correct=t.first_right, final_correct=t.revision_right, judge_first=t.judge_first,
             judge_final=t.judge_revision, answer=t.answer, judge_answer=t.judge_answer,
             judge_answer_correct=t.judge_answer_right)
        for tid, t in sc.traces.items()])
    return did


def stored_debate(store: Store, run_id: int, adapter_id: int | None, eval_set: str,
                  adapters: str | None = None) -> DebateScore | None:
    """The debate score already recorded for this adapter (and per role, ``adapters``) on
    ``eval_set``, with each task's trace (a computing judge's own results are not recorded, so a
    stored score has no ``judge_results`` or three-way figures)."""
    row = store.execute(
        "select n, first_correct, final_correct, right_to_wrong, wrong_to_right, judge_tp, judge_tn, judge_fp, judge_fn, "
        "revised_correct, revised_right_to_wrong, revised_wrong_to_right, id "
        "from debate_evals where run_id = ? and adapter_id is not distinct from ? and eval_set = ? "
        "and adapters::varchar is not distinct from ? order by id desc limit 1",
        [run_id, adapter_id, eval_set, adapters])
    if not row:
        return None
    counts, revised, did = row[0][:9], row[0][9:12], row[0][12]
    traces = {int(r[0]): Trace(*r[1:8], r[8] or "revision", r[9], r[10]) for r in store.execute(
        "select task_id, first_text, critique, final_text, first_correct, final_correct, judge_first, judge_final, "
        "answer, judge_answer, judge_answer_correct from debate_eval_answers where debate_eval_id = ? order by task_id",
        [did])}
    return DebateScore(*(int(v) for v in counts), traces, *(None if v is None else int(v) for v in revised))
