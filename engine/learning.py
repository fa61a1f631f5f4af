"""The learning phases of a round: collect verified answers, train and export a LoRA adapter,
score it on the run's dev sets and keep it only if a paired test does not find it worse than
the best adapter kept so far or the base model. Test sets are never read here.

Training runs in a worker process (``engine.train.runner``); this process never imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.agents import seed_for
from engine.errors import TrainingError
from engine.evaluate import Score, gate, record_score, score, stored_score
from engine.events import AdapterExported, AdapterPromoted, EvalScored, TrainingProgress
from engine.faults import checkpoint
from engine.curriculum import dev_skill_counts, write_skill_scores
from engine.pools import dev_sets, fact_set, set_name
from engine.tasks.facts import SET_NAMES as FACT_SETS
from engine.roundbase import TASK_COLUMNS, PhaseRunner, Stopped, task_from_row


def _too_few(n: int, what: str, least: int) -> str | None:
    """Why a training run is skipped with ``n`` examples, or None when there are enough."""
    if n >= least:
        return None
    return f"{n} {what} example{'' if n == 1 else 's'} so far, train.min_examples is {least}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


#: A score measured during the evaluate phase: (adapter id or None, dev set name, score, answers).
Pending = tuple[int | None, str, Score, list[str]]


class LearningPhases(PhaseRunner):
    def _collect(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        """Verified answers join the training set; at round 0 the base model's replay answers too."""
        from engine.train.dataset import collect, collect_replay

        with self.store.transaction():
            if self.train and self.recipe.train.replay_fraction > 0:
                collect_replay(self.store, self.rt, self.run_id, rnd)
            collect(self.store, self.recipe, self.run_id, rnd, seed=self.seed)
            self._mark(rnd, "collect")

    def _train(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        """Train one adapter on every role's examples, or with per-role adapters one per role, each
        on its own examples (``split_steps``); a role trained before a crash is not trained again."""
        if not self.train:
            self._mark(rnd, "train")
            return
        from engine.train.dataset import solver_examples, split_steps, training_set

        q = self.store.execute
        # A training run left 'running' by a crash is over: say so, then train afresh.
        q("update training_runs set status = 'failed', error = 'interrupted' "
          "where run_id = ? and round = ? and status = 'running'", [self.run_id, rnd])
        spec = self.recipe.train
        n_verified = solver_examples(self.store, self.run_id)
        jobs: list[tuple[str | None, list[Any], int, str | None]] = []  # role, examples, steps, why skipped
        if not self.per_role:
            examples = training_set(self.store, self.recipe, self.run_id, seed_for(self.seed, rnd, "train"))
            jobs.append((None, examples, spec.steps, _too_few(n_verified, "verified", spec.min_examples)))
        else:
            sets = {role: training_set(self.store, self.recipe, self.run_id, seed_for(self.seed, rnd, "train", role),
                                       roles=[role], replay=role == "solver") for role in spec.roles}
            skips = {role: _too_few(n_verified if role == "solver" else len(ex),
                                    "verified solver" if role == "solver" else role, spec.min_examples)
                     for role, ex in sets.items()}
            steps = split_steps(spec.steps, {role: 0 if skips[role] else len(ex) for role, ex in sets.items()})
            done = {r for (r,) in q("select role from adapters where run_id = ? and round = ? and decision is null",
                                    [self.run_id, rnd])} if self.marking else set()
            jobs += [(role, ex, steps[role], skips[role]) for role, ex in sets.items() if role not in done]
        if not jobs:
            with self.store.transaction():
                self._mark(rnd, "train")
        for i, (role, examples, steps, skip) in enumerate(jobs):
            self._train_one(rnd, role, examples, steps, skip, last=i == len(jobs) - 1)

    def _train_one(self, rnd: int, role: str | None, examples: list[Any], steps: int, skip: str | None,
                   last: bool) -> None:
        """Train, export and record one adapter (``role`` None: shared by every role); the last one
        of the phase writes the phase marker with its rows."""
        from engine.train.runner import TrainConfig, train_lora

        q = self.store.execute
        spec = self.recipe.train.model_copy(update={"steps": steps})
        mark = (lambda: self._mark(rnd, "train")) if last else (lambda: None)
        who = f"{role} adapter: " if role else ""
        in_use_id, in_use = self.current_adapter(role or "solver")
        init = Path(in_use).with_name("lora.npz") if in_use and spec.warm_start else None
        init = init if init is not None and init.exists() else None
        tr_id = self.store.allocate_ids("training_runs", 1)[0]
        settings = {**spec.model_dump(), "continued_from_adapter": in_use_id if init else None, "role": role}
        row = dict(id=tr_id, run_id=self.run_id, round=rnd, backend=spec.backend, backend_reason=None,
                   settings=settings, n_examples=len(examples), steps=steps, loss_curve=None,
                   tokens_per_second=None, seconds=None, status="running", error=None, role=role)
        if skip is not None:
            with self.store.transaction():
                self.store.insert("training_runs", [{**row, "status": "skipped", "error": skip}])
                mark()
            self.bus.emit(AdapterPromoted(self.run_id, rnd, None, False, f"{who}training skipped: {skip}"))
            return
        self.store.insert("training_runs", [row])
        assert self.workdir is not None and self.home is not None
        held = q(f"select {TASK_COLUMNS} from tasks where run_id = ? and pool = 'dev' order by id limit 3", [self.run_id])
        from engine.train.dataset import solve_messages

        check_prompts = [self.rt.chat.render(solve_messages(self.recipe, task_from_row(r).task.prompt)) for r in held]
        check_prompts.append(self.rt.chat.render([{"role": "user", "content": "Explain what a linked list is."}]))
        # One directory per training run: an adapter file is never overwritten, so "train now"
        # twice in a round gives two adapters, each scored on its own.
        cfg = TrainConfig(home=self.home, gguf=self.rt.path, workdir=self.workdir / f"round-{rnd}" / f"train-{tr_id}",
                          spec=spec, seed=seed_for(self.seed, rnd, "lora", *([role] if role else [])),
                          check_prompts=check_prompts, init_lora=init)

        def progress(step: int, steps: int, loss: float, tps: float) -> None:
            self.bus.emit(TrainingProgress(self.run_id, rnd, step, steps, loss, tps))
            checkpoint(f"train:{step}")

        try:
            out = train_lora(cfg, examples, cancel=self.stop, on_progress=progress, trainer=self.trainer)
        except TrainingError as e:
            q("update training_runs set status = ?, error = ? where id = ?",
              ["cancelled" if self.stop.is_set() else "failed", str(e), tr_id])
            if self.stop.is_set():
                raise Stopped("stopped") from e
            self.bus.emit(AdapterPromoted(self.run_id, rnd, None, False, f"{who}training failed: {e}"))
            with self.store.transaction():
                mark()
            return
        checkpoint("export")  # the adapter file exists; the store does not know it yet
        ad_id = self.store.allocate_ids("adapters", 1)[0]
        with self.store.transaction():
            q("update training_runs set status = 'done', backend = ?, backend_reason = ?, loss_curve = ?, "
              "tokens_per_second = ?, seconds = ?, n_examples = ? where id = ?",
              [out.backend, out.backend_reason, json.dumps(out.loss_curve), out.tokens_per_second, out.seconds,
               out.n_examples, tr_id])
            self.store.insert("adapters", [dict(
                id=ad_id, run_id=self.run_id, round=rnd, training_run_id=tr_id, parent_id=in_use_id,
                path=str(out.adapter_path), sha256=out.sha256, export_cosine=out.cosine, promoted=False, decision=None,
                role=role)])
            mark()
        self.bus.emit(AdapterExported(self.run_id, rnd, ad_id, str(out.adapter_path), out.cosine))

    def _evaluate(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        """Gate the round's new adapters: a shared or solver adapter on pass@1 over the dev sets
        and the facts (``_gate_solver``); per-role critic, reviser and judge adapters on the debate
        protocol over the level's dev set (``_gate_debate``)."""
        new = self.store.execute(
            "select id, path, sha256, role from adapters where run_id = ? and round = ? and decision is null "
            "order by id desc", [self.run_id, rnd]) if self.train else []
        solver = next((r for r in new if r[3] in (None, "solver")), None)
        others: dict[str, Any] = {}
        for r in new:
            if r[3] in ("critic", "reviser", "judge"):
                others.setdefault(str(r[3]), r)
        if solver is None and not others:
            with self.store.transaction():
                self._mark(rnd, "evaluate")
            return
        if solver is not None:
            self._gate_solver(rnd, difficulty, solver, last=not others)
        if others:
            self._gate_debate(rnd, difficulty, others)

    def _gate_solver(self, rnd: int, difficulty: int, new: Any, last: bool) -> None:
        """Score the new adapter on the dev sets and gate it against the best kept so far and the
        base model, task by task; put whichever is kept in use."""
        new_id, new_path, new_sha = int(new[0]), str(new[1]), str(new[2])
        cur_id, cur_path = self.current_adapter()
        sets = dev_sets(self.store, self.run_id, self.recipe, difficulty)
        pending: list[Pending] = []  # scores measured now, written together with the decision

        # The general facts' dev half: what the base model answers right must survive training.
        facts = {FACT_SETS["dev"]: fact_set(self.store, self.run_id, "dev")}
        facts = {k: v for k, v in facts.items() if v}  # runs from before the facts existed have none

        def outcomes(adapter_id: int | None, path: str | None, sha: str | None = None,
                     which: dict[str, Any] | None = None) -> dict[int, bool]:
            out: dict[int, bool] = {}
            for name, tasks in (sets if which is None else which).items():
                sc = self._dev_score(adapter_id, name, pending)
                if sc is None:
                    if not self.rt.serves(path):
                        self.rt.set_adapter(path, sha256=sha).result()
                    sc, texts = score(self.rt, self.recipe, tasks, self.seed)
                    checkpoint("evaluate")
                    pending.append((adapter_id, name, sc, texts))
                    self.bus.emit(EvalScored(self.run_id, rnd, name, adapter_id, sc.accuracy, sc.ci_low, sc.ci_high))
                out.update(sc.outcomes)
            return out

        new_out, new_facts = outcomes(new_id, new_path, new_sha), outcomes(new_id, new_path, new_sha, facts)
        refs: dict[str, dict[int, bool]] = {"base": outcomes(None, None)}
        base_facts = outcomes(None, None, None, facts)
        best_id, best_out = self._best_kept(sets, pending)
        if cur_id is not None:
            cur_out = outcomes(cur_id, cur_path)
            if best_id is None or sum(cur_out.values()) >= sum(best_out.values()):
                best_id, best_out = cur_id, cur_out
        if best_id is not None:
            refs[f"best kept #{best_id}"] = best_out
        keep, reason, numbers = gate(new_out, refs, self.recipe.eval.alpha,
                                     (base_facts, new_facts, self.recipe.eval.facts_lost_max) if facts else None)
        numbers["sets"] = list(sets) + list(facts)
        keep_path = new_path if keep else cur_path
        if not self.rt.serves(keep_path):
            self.rt.set_adapter(keep_path).result()
        # What the curriculum reads next: the adapter in use, per skill and at the round's level.
        in_use, in_use_out = (new_id, new_out) if keep else (cur_id, cur_out if cur_id is not None else refs["base"])
        level_ids = [tr.id for tr in sets.get(set_name("dev", min(difficulty, self.recipe.task.max_difficulty)), [])]
        dev_score = sum(in_use_out.get(i, False) for i in level_ids) / len(level_ids) if level_ids else None
        with self.store.transaction():
            for adapter_id, name, sc, texts in pending:
                record_score(self.store, self.run_id, rnd, adapter_id, name, "dev", sc, texts)
            write_skill_scores(self.store, self.run_id, rnd, "dev", in_use, dev_skill_counts(self.store, in_use_out))
            self.store.execute("update rounds set dev_score = ? where run_id = ? and round = ?",
                               [dev_score, self.run_id, rnd])
            self.store.execute("update adapters set promoted = ?, decision = ?, gate = ? where id = ?",
                               [keep, reason, json.dumps(numbers), new_id])
            if last:
                self._mark(rnd, "evaluate")
        self.bus.emit(AdapterPromoted(self.run_id, rnd, new_id if keep else cur_id, keep,
                                      f"solver adapter: {reason}" if new[3] else reason))

    def _gate_debate(self, rnd: int, difficulty: int, new: dict[str, Any]) -> None:
        """Per-role adapters: play the debate protocol on the first ``eval.debate_dev`` tasks of the
        level's dev set twice from the same first answers (the solver in use): once with every role's
        adapter in use, once with this round's new critic, reviser and judge adapters in their
        place. The judge's is kept when its balanced accuracy against the verifier is not lower; the
        critic's and reviser's (together: the debate is their joint work) when at least as many
        answers are right after revision. Both debates are recorded (pool 'dev')."""
        from engine.protocol import debate_score, record_debate, stored_debate
        from engine.roles import adapters_key, roles_in_use, server

        name = set_name("dev", min(difficulty, self.recipe.task.max_difficulty))
        tasks = dev_sets(self.store, self.run_id, self.recipe, difficulty).get(name, [])[:self.recipe.eval.debate_dev]
        ref = roles_in_use(self.store, self.run_id)
        cand = {**ref, **{role: (int(r[0]), str(r[1]), str(r[2])) for role, r in new.items()}}
        solver_id = ref["solver"][0]
        decided: list[tuple[int, str, bool, str, dict[str, Any]]] = []  # id, role, keep, reason, numbers
        writes: list[tuple[str | None, Any]] = []
        if not tasks:
            for role, r in new.items():
                decided.append((int(r[0]), role, False, f"no dev tasks at {name} to debate on: dropped", {"kept": False}))
        else:
            server(self.rt, ref)("solver")
            _sc, firsts = score(self.rt, self.recipe, tasks, self.seed)
            checkpoint("evaluate")
            ref_key, cand_key = adapters_key(ref), adapters_key(cand)
            before = stored_debate(self.store, self.run_id, solver_id, name, ref_key)
            if before is None:
                before = debate_score(self.rt, self.recipe, tasks, firsts, serve=server(self.rt, ref))
                writes.append((ref_key, before))
            after = debate_score(self.rt, self.recipe, tasks, firsts, serve=server(self.rt, cand))
            writes.append((cand_key, after))
            checkpoint("evaluate")
            numbers = {"set": name, "n": len(tasks), "in_use": before.summary(), "candidate": after.summary()}
            if "judge" in new:
                a, b = after.judge_balanced_accuracy, before.judge_balanced_accuracy
                keep = a is not None and (b is None or a >= b)
                reason = (f"judge balanced accuracy on {name} ({len(tasks)} tasks) {_pct(a)} vs {_pct(b)} in use: "
                          + ("not lower: kept" if keep else "lower: dropped"))
                decided.append((int(new["judge"][0]), "judge", keep, reason, {**numbers, "kept": keep}))
            pair = [role for role in ("critic", "reviser") if role in new]
            if pair:
                keep = after.final >= before.final
                reason = (f"debate on {name} with the new {' and '.join(pair)}: {after.final}/{len(tasks)} right after "
                          f"revision vs {before.final}/{len(tasks)} in use (first answers {after.first}/{len(tasks)}): "
                          + ("not fewer: kept" if keep else "fewer: dropped"))
                for role in pair:
                    decided.append((int(new[role][0]), role, keep, reason, {**numbers, "kept": keep}))
        with self.store.transaction():
            for key, sc in writes:
                record_debate(self.store, self.run_id, rnd, solver_id, name, "dev", sc, key)
            for aid, _role, keep, reason, numbers in decided:
                self.store.execute("update adapters set promoted = ?, decision = ?, gate = ? where id = ?",
                                   [keep, reason, json.dumps(numbers), aid])
            self._mark(rnd, "evaluate")
        for aid, role, keep, reason, _n in decided:
            self.bus.emit(AdapterPromoted(self.run_id, rnd, aid if keep else ref[role][0], keep, f"{role} adapter: {reason}"))

    def _dev_score(self, adapter_id: int | None, name: str, pending: list[Pending]) -> Score | None:
        """A score of this adapter on this dev set measured in this phase or recorded earlier."""
        for aid, n, sc, _ in pending:
            if aid == adapter_id and n == name:
                return sc
        sc = stored_score(self.store, self.run_id, adapter_id, name)
        return sc if sc is not None and sc.outcomes else None

    def _best_kept(self, sets: dict[str, Any], pending: list[Pending]) -> tuple[int | None, dict[int, bool]]:
        """Among adapters the gate kept earlier, the one with the most right answers on these dev
        sets; only those already scored on all of them are candidates (no extra scoring)."""
        kept = [int(r[0]) for r in self.store.execute(
            "select id from adapters where run_id = ? and (promoted or coalesce((gate->>'kept')::boolean, false)) "
            "and decision is not null and coalesce(role, 'solver') = 'solver' order by id", [self.run_id])]
        best: tuple[int | None, dict[int, bool]] = (None, {})
        for aid in kept:
            out: dict[int, bool] = {}
            for name in sets:
                sc = self._dev_score(aid, name, pending)
                if sc is None:
                    break
                out.update(sc.outcomes)
            else:
                if best[0] is None or sum(out.values()) > sum(best[1].values()):
                    best = (aid, out)
        return best
