"""The propose phase: the round's tasks, generated from the plan's mix of levels (leaning toward
weak skills) and written by the proposers, each checked for duplicates and kept or rejected with
why.
"""

from __future__ import annotations

import random

from engine.agents import fill, request, seed_for
from engine.curriculum import OVERDRAW, pick_weak, skill_rates, weak_skills
from engine.events import TaskProposed
from engine.pools import duplicate_reason, known_keys, pool_of
from engine.roundbase import PhaseRunner
from engine.tasks import Task, task_skills


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    spec = ctx.recipe.task
    known = known_keys(ctx.store, ctx.run_id, ctx.domain.name)
    rates = skill_rates(ctx.store, ctx.run_id, rnd) if spec.focus_weak else {}
    candidates: list[tuple[str, Task | str, str]] = []
    # Generated tasks: the plan's mix of levels, drawn from the train pool's share of all tasks,
    # new to the run, leaning toward weak skills (engine.curriculum).
    for level, n in sorted((ctx.mix or {difficulty: spec.generated}).items()):
        rng = random.Random(seed_for(ctx.seed, rnd, "generate", level))
        draw = n * OVERDRAW if rates else n
        drawn = ctx.domain.generate(rng, level, draw,
                                     accept=lambda k: pool_of(k, ctx.seed) == "train" and k not in known,
                                     **({"shorter": spec.shorter} if spec.shorter else {}))
        picked = pick_weak(random.Random(seed_for(ctx.seed, rnd, "pick", level)), drawn, n, rates) if rates else drawn
        candidates += [("generated", t, "") for t in picked]
    proposers = ctx.agents("proposer")
    if proposers and spec.proposed:
        examples_pool = ctx.domain.generate(random.Random(seed_for(ctx.seed, rnd, "examples")), difficulty,
                                             3 * OVERDRAW if rates else 3)
        if rates:
            examples_pool = pick_weak(random.Random(seed_for(ctx.seed, rnd, "examples-pick")), examples_pool, 3, rates)
        examples = "\n".join(t.payload.get("expression", t.payload.get("spec", t.prompt)) for t in examples_pool)
        weak = weak_skills(rates, ctx.domain)
        failed = [r[0] for r in ctx.store.execute(
            "select t.prompt from tasks t join attempts a on a.task_id = t.id where t.run_id = ? and t.round = ? "
            "and a.turn = 0 group by t.id, t.prompt having not bool_or(a.correct) order by t.id limit 3",
            [ctx.run_id, rnd - 1])]
        values = {"examples": examples, "difficulty": difficulty,
                  "weak_skills": ", ".join(f"{w} ({r:.0%} right)" for w, r in weak) or "none known yet",
                  "failed": "\n".join(failed) or "none"}
        reqs = [
            request(proposers[i % len(proposers)], fill(ctx.recipe.prompts.propose, values),
                    seed_for(ctx.seed, rnd, "propose", i))
            for i in range(spec.proposed)
        ]
        ctx.serve("proposer")
        for res in ctx.generate(reqs):
            candidates.append(("proposed", ctx.domain.parse_proposal(res.text, difficulty), res.text))
    ids = ctx.store.allocate_ids("tasks", len(candidates))
    rows = []
    for tid, (source, cand, text) in zip(ids, candidates):
        if isinstance(cand, str):
            task = None
            reason: str | None = cand
            prompt, fp = text.strip()[:2000] or "(empty proposal)", f"rejected:{tid}"
        else:
            task, prompt, fp = cand, cand.prompt, cand.fingerprint
            reason = duplicate_reason(cand, known)
            if reason is None:
                known.update((k, "train") for k in cand.keys)
        payload = dict(task.payload) if task else {}
        if source == "proposed":
            payload["proposal_text"] = text
        rows.append(dict(
            id=tid, run_id=ctx.run_id, round=rnd, source=source, task_set=None, domain=ctx.domain.name,
            difficulty=task.difficulty if task else difficulty, prompt=prompt,
            reference=task.reference if task else None, payload=payload, fingerprint=fp,
            held_out=False, rejected_reason=reason, pool="train", behaviour=task.behaviour if task else None,
            skills=task_skills(task) if task else None,
        ))
    with ctx.store.transaction():
        ctx.store.insert("tasks", rows)
        ctx.mark(rnd, "propose")
    for r in rows:
        ctx.bus.emit(TaskProposed(ctx.run_id, rnd, r["id"], r["source"], r["prompt"], r["rejected_reason"]))
