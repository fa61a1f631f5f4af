"""The judge phase: the judge gives a verdict on each final answer, recorded beside the verifier's
with their agreement (round.judging: it reads the answer and says, or it computes the result and
an answer is right when it matches).
"""

from __future__ import annotations

from engine.agents import join_votes, judge_requests, judge_task, judge_text, judge_verdict, seed_for
from engine.events import VerdictReached
from engine.roundbase import PhaseRunner
from engine.runtime import Request


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
    asked = []
    for i, (_aid, tid, text, _c, _s, agent, sample) in enumerate(finals):
        judge = judge_of[i]
        asked_as = judge_task(ctx.recipe, ctx.domain, tasks[tid].task).prompt
        reqs = judge_requests(ctx.recipe, judge, asked_as, text or "",
                              seed_for(ctx.seed, rnd, tasks[tid].task.fingerprint, agent, sample, "judge"),
                              greedy=judge.temperature == 0, task=tid)
        key: object = (judge.name, tid, reqs[0].messages[-1]["content"]) if judge.temperature == 0 else i
        if key not in slot:
            slot[key] = len(asks)
            asks.append(reqs)
        asked.append(slot[key])
    ctx.serve("judge")
    flat = iter(ctx.generate([r for reqs in asks for r in reqs]))
    replies = [[next(flat) for _ in reqs] for reqs in asks]
    ids = ctx.store.allocate_ids("verdicts", len(finals))
    rows = []
    first_use: set[int] = set()
    for vid, judge, (aid, tid, text, correct, status, _agent, _sample), k in zip(ids, judge_of, finals, asked):
        votes = replies[k]
        fresh = k not in first_use  # a repeated reply cost nothing: its row says 0 tokens, 0 s
        first_use.add(k)
        verdict_text = join_votes([judge_text(ctx.recipe, r.text) for r in votes])
        judged = judge_verdict(ctx.recipe, ctx.domain, tasks[tid].task, text or "", verdict_text)
        rows.append(dict(
            id=vid, run_id=ctx.run_id, round=rnd, task_id=tid, attempt_id=aid, judge=judge.name,
            judge_correct=judged, judge_text=verdict_text, verifier_correct=bool(correct), verifier_status=status or "",
            agreement=None if judged is None else judged == bool(correct),
            tokens=sum(r.completion_tokens for r in votes) if fresh else 0,
            seconds=sum(r.seconds for r in votes) if fresh else 0.0, endpoint=votes[0].endpoint,
        ))
        ctx.bus.emit(VerdictReached(ctx.run_id, rnd, tid, judged, bool(correct), judge.name))
    with ctx.store.transaction():
        ctx.store.insert("verdicts", rows)
        ctx.mark(rnd, "judge")
