"""The judge phase: the judge gives a verdict on each final answer, recorded beside the verifier's
with their agreement.
"""

from __future__ import annotations

from engine.agents import JUDGE_GRAMMAR, JUDGE_PREFIX, fill, parse_judgement, request, seed_for
from engine.events import VerdictReached
from engine.roundbase import PhaseRunner


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    judges = ctx.agents("judge")
    if not judges:
        ctx.mark(rnd, "judge")
        return
    tasks = {tr.id: tr for tr in ctx.round_tasks(rnd)}
    finals = ctx.store.execute(
        "select id, task_id, text, correct, status, agent, sample from attempts a where run_id = ? and round = ? and turn = "
        "(select max(turn) from attempts b where b.run_id = a.run_id and b.round = a.round and b.task_id = a.task_id "
        "and b.agent = a.agent and b.sample = a.sample) order by id", [ctx.run_id, rnd])
    finals = [f for f in finals if f[1] in tasks]
    reqs = [
        request(judges[i % len(judges)], fill(ctx.recipe.prompts.judge, {"task": tasks[tid].task.prompt, "answer": text}),
                seed_for(ctx.seed, rnd, tasks[tid].task.fingerprint, agent, sample, "judge"), grammar=JUDGE_GRAMMAR,
                prefix=JUDGE_PREFIX, greedy=judges[i % len(judges)].temperature == 0, task=tid)
        for i, (_aid, tid, text, _c, _s, agent, sample) in enumerate(finals)
    ]
    ctx.serve("judge")
    results = ctx.generate(reqs)
    ids = ctx.store.allocate_ids("verdicts", len(finals))
    rows = []
    for i, (vid, (aid, tid, _text, correct, status, _agent, _sample), res) in enumerate(zip(ids, finals, results)):
        verdict_text = JUDGE_PREFIX + res.text
        judged = parse_judgement(verdict_text)
        rows.append(dict(
            id=vid, run_id=ctx.run_id, round=rnd, task_id=tid, attempt_id=aid, judge=judges[i % len(judges)].name,
            judge_correct=judged, judge_text=verdict_text, verifier_correct=bool(correct), verifier_status=status or "",
            agreement=None if judged is None else judged == bool(correct), tokens=res.completion_tokens, seconds=res.seconds,
            endpoint=res.endpoint,
        ))
        ctx.bus.emit(VerdictReached(ctx.run_id, rnd, tid, judged, bool(correct), judges[i % len(judges)].name))
    with ctx.store.transaction():
        ctx.store.insert("verdicts", rows)
        ctx.mark(rnd, "judge")
