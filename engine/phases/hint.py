"""The hint phase (``round.hints``): work on what the round got wrong with the verified result in
view.
"""

from __future__ import annotations

from engine.agents import fill, request, seed_for
from engine.events import CritiqueMade
from engine.roundbase import PhaseRunner, TaskRow


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    """Work on what the round got wrong, with the verified result in view (CTRL, STaR): a critic
    critiques each wrong final answer knowing the result and the answer's solver revises with
    that critique; a solver writes a rationale for each task no answer got right. The verifier
    scores both; ``collect`` trains on those that pass, without the hint."""
    critics, solvers = ctx.agents("critic"), {a.name: a for a in ctx.agents("solver")}
    if not ctx.recipe.round.hints or not solvers:
        ctx.mark(rnd, "hint")
        return
    from engine.train.dataset import _norm

    tasks = {tr.id: tr for tr in ctx.debate_tasks(rnd)}
    rows = ctx.store.execute(
        "select id, task_id, agent, sample, text, correct from attempts a where run_id = ? and round = ? and turn = "
        "(select max(turn) from attempts b where b.run_id = a.run_id and b.round = a.round) order by id",
        [ctx.run_id, rnd])
    solved = {int(t) for (t,) in ctx.store.execute(
        "select distinct task_id from attempts where run_id = ? and round = ? and correct", [ctx.run_id, rnd])}
    cap, p = ctx.recipe.train.max_per_task, ctx.recipe.prompts
    wrong: list[tuple[int, TaskRow, str, int, str]] = []
    seen: dict[int, set[str]] = {}
    for aid, tid, agent, sample, text, correct in rows:
        kept = seen.setdefault(tid, set())
        if correct or tid not in tasks or agent not in solvers or not text.strip() or _norm(text) in kept \
                or len(kept) >= cap:
            continue
        kept.add(_norm(text))
        wrong.append((aid, tasks[tid], agent, sample, text))
    if not critics:
        wrong = []
    crit_reqs = [
        request(critics[i % len(critics)], fill(p.hint, {"task": tr.task.prompt, "answer": text,
                                                         "reference": tr.task.reference}),
                seed_for(ctx.seed, rnd, tr.task.fingerprint, agent, sample, "hint"), task=tr.id)
        for i, (_aid, tr, agent, sample, text) in enumerate(wrong)]
    unsolved = [tr for tid, tr in tasks.items() if tid not in solved]
    first = next(iter(solvers.values()))
    why_reqs = [request(first, fill(p.rationale, {"task": tr.task.prompt, "reference": tr.task.reference}),
                        seed_for(ctx.seed, rnd, tr.task.fingerprint, "rationale"), task=tr.id) for tr in unsolved]
    if ctx.per_role:  # the critics' and the solver's requests under their own adapters
        ctx.serve("critic")
        crits = ctx.generate(crit_reqs)
        ctx.serve("solver")
        whys = ctx.generate(why_reqs)
    else:
        results = ctx.generate(crit_reqs + why_reqs)
        crits, whys = results[:len(crit_reqs)], results[len(crit_reqs):]
    rev_reqs = [
        request(solvers[agent], fill(p.revise, {"task": tr.task.prompt, "answer": text, "critique": c.text}),
                seed_for(ctx.seed, rnd, tr.task.fingerprint, agent, sample, "hint revision"), task=tr.id)
        for (_aid, tr, agent, sample, text), c in zip(wrong, crits)]
    ctx.serve("reviser")
    revs = ctx.generate(rev_reqs)
    ids = ctx.store.allocate_ids("hints", len(wrong) + len(unsolved))
    out = []
    for hid, (aid, tr, agent, _s, _t), c, r, req in zip(ids, wrong, crits, revs, crit_reqs):
        out.append(dict(id=hid, run_id=ctx.run_id, round=rnd, task_id=tr.id, attempt_id=aid, kind="critique",
                        agent=req.tag, text=c.text, reviser=agent, revision=r.text,
                        correct=ctx.domain.verify(tr.task, r.text).correct,
                        tokens=c.completion_tokens + r.completion_tokens, seconds=c.seconds + r.seconds,
                        endpoint=c.endpoint))
        ctx.bus.emit(CritiqueMade(ctx.run_id, rnd, tr.id, str(req.tag), c.text))
    for hid, tr, w in zip(ids[len(wrong):], unsolved, whys):
        out.append(dict(id=hid, run_id=ctx.run_id, round=rnd, task_id=tr.id, attempt_id=None, kind="rationale",
                        agent=first.name, text=w.text, reviser=None, revision=None,
                        correct=ctx.domain.verify(tr.task, w.text).correct, tokens=w.completion_tokens,
                        seconds=w.seconds, endpoint=w.endpoint))
    with ctx.store.transaction():
        ctx.store.insert("hints", out)
        ctx.mark(rnd, "hint")
