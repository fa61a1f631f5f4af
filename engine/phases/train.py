"""The train phase: one LoRA on every role's examples, or one per role (``train.adapters``),
trained, exported and checked in the training worker (this process never imports torch). With
``train.focus_steps`` each adapter trains on its steps x batch_size examples drawn toward the kinds
of step the round's first answers get wrong (``engine.train.dataset.focus_on_steps``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.agents import seed_for
from engine.errors import TrainingError
from engine.events import AdapterExported, AdapterPromoted, TrainingProgress
from engine.faults import checkpoint
from engine.roundbase import TASK_COLUMNS, PhaseRunner, Stopped, task_from_row


def _too_few(n: int, what: str, least: int) -> str | None:
    """Why a training run is skipped with ``n`` examples, or None when there are enough."""
    if n >= least:
        return None
    return f"{n} {what} example{'' if n == 1 else 's'} so far, train.min_examples is {least}"


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    """Train one adapter on every role's examples, or with per-role adapters one per role (the
    critic and the reviser one together with train.joint_critic_reviser: ``role_groups``), each on
    its own examples (``split_steps``); a role trained before a crash is not trained again."""
    if not ctx.train:
        ctx.mark(rnd, "train")
        return
    from engine.train.dataset import round_steps, solver_examples, split_steps, training_set

    q = ctx.store.execute
    # A training run left 'running' by a crash is over: say so, then train afresh.
    q("update training_runs set status = 'failed', error = 'interrupted' "
      "where run_id = ? and round = ? and status = 'running'", [ctx.run_id, rnd])
    spec = ctx.recipe.train
    n_verified = solver_examples(ctx.store, ctx.run_id)
    # the roles an adapter serves (None: every role), its examples, steps and why it is skipped
    jobs: list[tuple[tuple[str, ...] | None, list[Any], int, str | None]] = []
    if not ctx.per_role:
        examples = training_set(ctx.store, ctx.recipe, ctx.run_id, seed_for(ctx.seed, rnd, "train"))
        jobs.append((None, examples, round_steps(spec, len(examples)), _too_few(n_verified, "verified", spec.min_examples)))
    else:
        groups = role_groups(spec)
        sets = {g: training_set(ctx.store, ctx.recipe, ctx.run_id, seed_for(ctx.seed, rnd, "train", *g),
                                roles=list(g), replay=g == ("solver",)) for g in groups}
        skips = {g: _too_few(n_verified if g == ("solver",) else len(ex),
                             "verified solver" if g == ("solver",) else " and ".join(g), spec.min_examples)
                 for g, ex in sets.items()}
        sizes = {g: 0 if skips[g] else len(ex) for g, ex in sets.items()}
        if spec.role_steps is None:
            steps = split_steps(round_steps(spec, sum(sizes.values())), {"+".join(g): n for g, n in sizes.items()})
        else:  # the solver keeps the round's steps, each other adapter trains its own fixed number
            steps = {"+".join(g): (round_steps(spec, n) if g == ("solver",) else spec.role_steps) if n else 0
                     for g, n in sizes.items()}
        done = {r for (r,) in q("select role from adapters where run_id = ? and round = ? and decision is null",
                                [ctx.run_id, rnd])} if ctx.marking else set()
        # the solver first: with train.role_fallback = "solver" the other roles start from its new adapter
        jobs += sorted(((g, ex, steps["+".join(g)], skips[g]) for g, ex in sets.items() if not set(g) <= done),
                       key=lambda job: job[0] != ("solver",))
    if not jobs:
        with ctx.store.transaction():
            ctx.mark(rnd, "train")
    if spec.focus_steps and jobs:  # each adapter's steps drawn toward the kinds of step the round gets wrong
        from engine.train.dataset import focus_on_steps, step_error_rates

        rates = step_error_rates(ctx.store, ctx.domain, ctx.run_id, rnd)
        jobs = [(roles, focus_on_steps(examples, rates, ctx.domain, steps * spec.batch_size, spec.focus_steps,
                                       seed_for(ctx.seed, rnd, "focus", *(roles or ()))), steps, skip)
                for roles, examples, steps, skip in jobs]
    for i, (roles, examples, steps, skip) in enumerate(jobs):
        train_one(ctx, rnd, roles, examples, steps, skip, last=i == len(jobs) - 1)


def role_groups(spec: Any) -> list[tuple[str, ...]]:
    """The per-role adapters a round trains, each as the roles it serves, in train.roles' order:
    one per role, the critic and the reviser one together with train.joint_critic_reviser.

    >>> from engine.recipes import TrainSpec
    >>> role_groups(TrainSpec(adapters="per-role"))
    [('solver',), ('reviser',), ('critic',), ('judge',)]
    >>> role_groups(TrainSpec(adapters="per-role", joint_critic_reviser=True))
    [('solver',), ('critic', 'reviser'), ('judge',)]
    >>> role_groups(TrainSpec(adapters="per-role", joint_critic_reviser=True, roles=["solver", "critic"]))
    [('solver',), ('critic',)]
    """
    joint = spec.joint_critic_reviser and {"critic", "reviser"} <= set(spec.roles)
    out: list[tuple[str, ...]] = []
    for role in spec.roles:
        group = ("critic", "reviser") if joint and role in ("critic", "reviser") else (role,)
        if group not in out:
            out.append(group)
    return out


def start_from(ctx: PhaseRunner, rnd: int, role: str | None) -> tuple[int | None, str | None]:
    """The adapter a new ``role`` adapter continues from with train.warm_start: the one the role
    runs under now; with train.role_fallback = "solver", for the critic, reviser and judge, this
    round's new solver adapter when the solver trained one (gated or not), so that each round's
    role adapter is the solver's newest plus its own steps rather than lagging a round behind."""
    if role not in (None, "solver") and ctx.role_fallback:
        row = ctx.store.execute("select id, path from adapters where run_id = ? and round = ? and role = 'solver' "
                                "order by id desc limit 1", [ctx.run_id, rnd])
        if row:
            return int(row[0][0]), str(row[0][1])
    return ctx.current_adapter(role or "solver")


def train_one(ctx: PhaseRunner, rnd: int, roles: tuple[str, ...] | None, examples: list[Any], steps: int,
              skip: str | None, last: bool) -> None:
    """Train, export and record one adapter for ``roles`` (None: shared by every role; several:
    one adapter recorded for each); the last one of the phase writes the phase marker with its rows."""
    from engine.train.runner import TrainConfig, train_lora

    q = ctx.store.execute
    spec = ctx.recipe.train.model_copy(update={"steps": steps})
    mark = (lambda: ctx.mark(rnd, "train")) if last else (lambda: None)
    role = roles[0] if roles else None
    who = f"{' and '.join(roles)} adapter: " if roles else ""
    in_use_id, in_use = start_from(ctx, rnd, role)
    init = Path(in_use).with_name("lora.npz") if in_use and spec.warm_start else None
    init = init if init is not None and init.exists() else None
    tr_id = ctx.store.allocate_ids("training_runs", 1)[0]
    named = "+".join(roles) if roles else None
    settings = {**spec.model_dump(), "continued_from_adapter": in_use_id if init else None, "role": named}
    row = dict(id=tr_id, run_id=ctx.run_id, round=rnd, backend=spec.backend, backend_reason=None,
               settings=settings, n_examples=len(examples), steps=steps, loss_curve=None,
               tokens_per_second=None, seconds=None, status="running", error=None, role=named)
    if skip is not None:
        with ctx.store.transaction():
            ctx.store.insert("training_runs", [{**row, "status": "skipped", "error": skip}])
            mark()
        ctx.bus.emit(AdapterPromoted(ctx.run_id, rnd, None, False, f"{who}training skipped: {skip}"))
        return
    ctx.store.insert("training_runs", [row])
    assert ctx.workdir is not None and ctx.home is not None
    held = q(f"select {TASK_COLUMNS} from tasks where run_id = ? and pool = 'dev' order by id limit 3", [ctx.run_id])
    from engine.train.dataset import solve_messages

    check_prompts = [ctx.rt.chat.render(solve_messages(ctx.recipe, task_from_row(r).task.prompt)) for r in held]
    check_prompts.append(ctx.rt.chat.render([{"role": "user", "content": "Explain what a linked list is."}]))
    # One directory per training run: an adapter file is never overwritten, so "train now"
    # twice in a round gives two adapters, each scored on its own.
    cfg = TrainConfig(home=ctx.home, gguf=ctx.rt.path, workdir=ctx.workdir / f"round-{rnd}" / f"train-{tr_id}",
                      spec=spec, seed=seed_for(ctx.seed, rnd, "lora", *(roles or ())),
                      check_prompts=check_prompts, init_lora=init)

    def progress(step: int, steps: int, loss: float, tps: float) -> None:
        ctx.bus.emit(TrainingProgress(ctx.run_id, rnd, step, steps, loss, tps))
        checkpoint(f"train:{step}")

    try:
        out = train_lora(cfg, examples, cancel=ctx.stop, on_progress=progress, trainer=ctx.trainer)
    except TrainingError as e:
        q("update training_runs set status = ?, error = ? where id = ?",
          ["cancelled" if ctx.stop.is_set() else "failed", str(e), tr_id])
        if ctx.stop.is_set():
            raise Stopped("stopped") from e
        ctx.bus.emit(AdapterPromoted(ctx.run_id, rnd, None, False, f"{who}training failed: {e}"))
        with ctx.store.transaction():
            mark()
        return
    checkpoint("export")  # the adapter file exists; the store does not know it yet
    ids = ctx.store.allocate_ids("adapters", len(roles or (None,)))
    with ctx.store.transaction():
        q("update training_runs set status = 'done', backend = ?, backend_reason = ?, loss_curve = ?, "
          "tokens_per_second = ?, seconds = ?, n_examples = ? where id = ?",
          [out.backend, out.backend_reason, json.dumps(out.loss_curve), out.tokens_per_second, out.seconds,
           out.n_examples, tr_id])
        ctx.store.insert("adapters", [dict(
            id=ad_id, run_id=ctx.run_id, round=rnd, training_run_id=tr_id, parent_id=in_use_id,
            path=str(out.adapter_path), sha256=out.sha256, export_cosine=out.cosine, promoted=False, decision=None,
            role=r) for ad_id, r in zip(ids, roles or (None,))])
        mark()
    for ad_id in ids:
        ctx.bus.emit(AdapterExported(ctx.run_id, rnd, ad_id, str(out.adapter_path), out.cosine))
