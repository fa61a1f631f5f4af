"""The judge phase: the judge gives a verdict on each final answer, recorded beside the verifier's
with their agreement (round.judging: it reads the answer and says, or it computes the result and
an answer is right when it matches; with round.judge_check = "steps" its work is checked step by
step and mended first, engine.stepcheck.mend).
"""

from __future__ import annotations

from engine.agents import fill, join_votes, judge_requests, judge_task, judge_text, judge_verdict, request, seed_for
from engine.events import VerdictReached
from engine.recipes import AgentSpec
from engine.roundbase import PhaseRunner
from engine.runtime import Request
from engine.stepcheck import mend
from engine.tasks.common import Task


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    judges = ctx.agents("judge")
    if not judges:
        ctx.mark(rnd, "judge")
        return
    tasks = {tr.id: tr for tr in ctx.debate_tasks(rnd)}
    finals = ctx.store.execute(
        "select id, task_id, text, correct, status, agent, sample from attempts a where run_id = ? and round = ? and turn = "
        "(select max(turn) from attempts b where b.run_id = a.run_id and b.round = a.round and b.task_id = a.task_id "
        "and b.agent = a.agent and b.sample = a.sample) order by id", [ctx.run_id, rnd])
    finals = [f for f in finals if f[1] in tasks]
    # A greedy judge's request has one reply: each distinct one is asked once, however many answers
    # share it (trained solvers often agree on a text; a computing judge asks once per task).
    # (With round.judge_votes, each of those is the judge's votes, recorded as one: join_votes.)
    judge_of = [judges[i % len(judges)] for i in range(len(finals))]
    slot: dict[object, int] = {}
    asks: list[list[Request]] = []
    whose: list[tuple[AgentSpec, int, Task]] = []  # each ask's judge, task and the task as put to the judge
    asked = []
    for i, (_aid, tid, text, _c, _s, agent, sample) in enumerate(finals):
        judge = judge_of[i]
        asked_as = judge_task(ctx.recipe, ctx.domain, tasks[tid].task)
        reqs = judge_requests(ctx.recipe, judge, asked_as.prompt, text or "",
                              seed_for(ctx.seed, rnd, tasks[tid].task.fingerprint, agent, sample, "judge"),
                              greedy=judge.temperature == 0, task=tid)
        key: object = (judge.name, tid, reqs[0].messages[-1]["content"]) if judge.temperature == 0 else i
        if key not in slot:
            slot[key] = len(asks)
            asks.append(reqs)
            whose.append((judge, tid, asked_as))
        asked.append(slot[key])
    ctx.serve("judge")
    flat = iter(ctx.generate([r for reqs in asks for r in reqs]))
    replies = [[next(flat) for _ in reqs] for reqs in asks]
    texts = [[judge_text(ctx.recipe, r.text) for r in rs] for rs in replies]
    extra = [0] * len(asks)  # tokens the mending cost
    if ctx.recipe.round.judging == "compute" and ctx.recipe.round.judge_check == "steps":
        def go_on(k: int, pre: str) -> Request:  # the judge goes on with its own work from its slip
            judge, tid, asked_as = whose[k]
            return request(judge, fill(ctx.recipe.prompts.judge_compute, {"task": asked_as.prompt}),
                           seed_for(ctx.seed, rnd, tasks[tid].task.fingerprint, "judge-mend"),
                           greedy=judge.temperature == 0, task=tid, prefix=pre)
        mended = mend(ctx.rt, ctx.recipe, ctx.domain, ctx.agents("solver")[0], [t[0] for t in texts], go_on,
                      turns=max(1, ctx.recipe.round.debate_turns), seed=seed_for(ctx.seed, rnd, "judge-steps"),
                      before_check=lambda: ctx.serve("solver"), before_go_on=lambda: ctx.serve("judge"),
                      tasks=[asked_as for _j, _t, asked_as in whose])
        for k, (text, tokens) in enumerate(mended):
            texts[k][0], extra[k] = text, tokens
    ids = ctx.store.allocate_ids("verdicts", len(finals))
    rows = []
    first_use: set[int] = set()
    for vid, judge, (aid, tid, text, correct, status, _agent, _sample), k in zip(ids, judge_of, finals, asked):
        votes = replies[k]
        fresh = k not in first_use  # a repeated reply cost nothing: its row says 0 tokens, 0 s
        first_use.add(k)
        verdict_text = join_votes(texts[k])
        judged = judge_verdict(ctx.recipe, ctx.domain, tasks[tid].task, text or "", verdict_text)
        rows.append(dict(
            id=vid, run_id=ctx.run_id, round=rnd, task_id=tid, attempt_id=aid, judge=judge.name,
            judge_correct=judged, judge_text=verdict_text, verifier_correct=bool(correct), verifier_status=status or "",
            agreement=None if judged is None else judged == bool(correct),
            tokens=sum(r.completion_tokens for r in votes) + extra[k] if fresh else 0,
            seconds=sum(r.seconds for r in votes) if fresh else 0.0, endpoint=votes[0].endpoint,
        ))
        ctx.bus.emit(VerdictReached(ctx.run_id, rnd, tid, judged, bool(correct), judge.name))
    with ctx.store.transaction():
        ctx.store.insert("verdicts", rows)
        ctx.mark(rnd, "judge")
