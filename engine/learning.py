"""The learning phases of a round: collect verified answers, train and export a LoRA adapter,
evaluate it on held-out sets and keep it only if it is not worse than the one in use.

Training runs in a worker process (``engine.train.runner``); this process never imports torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.agents import seed_for
from engine.errors import TrainingError
from engine.events import AdapterExported, AdapterPromoted, EvalScored, TrainingProgress
from engine.faults import checkpoint
from engine.roundbase import TASK_COLUMNS, PhaseRunner, Stopped, task_from_row


class LearningPhases(PhaseRunner):
    def _collect(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        """Verified answers join the training set; at round 0 the base model's replay answers too."""
        from engine.train.dataset import collect, collect_replay

        with self.store.transaction():
            if self.train and self.recipe.train.replay_fraction > 0:
                collect_replay(self.store, self.rt, self.run_id, rnd)
            collect(self.store, self.recipe, self.run_id, rnd)
            self._mark(rnd, "collect")

    def _train(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        if not self.train:
            self._mark(rnd, "train")
            return
        from engine.train.dataset import training_set
        from engine.train.runner import TrainConfig, train_lora

        q = self.store.execute
        # A training run left 'running' by a crash is over: say so, then train afresh.
        q("update training_runs set status = 'failed', error = 'interrupted' "
          "where run_id = ? and round = ? and status = 'running'", [self.run_id, rnd])
        spec = self.recipe.train
        examples = training_set(self.store, self.recipe, self.run_id, seed_for(self.seed, rnd, "train"))
        n_verified = int(q("select count(*) from examples where run_id = ? and source = 'verified'", [self.run_id])[0][0])
        skip = None
        if n_verified < spec.min_examples:
            skip = f"{n_verified} verified example{'' if n_verified == 1 else 's'} so far, train.min_examples is {spec.min_examples}"
        in_use_id, in_use = self.current_adapter()
        init = Path(in_use).with_name("lora.npz") if in_use and spec.warm_start else None
        init = init if init is not None and init.exists() else None
        tr_id = self.store.allocate_ids("training_runs", 1)[0]
        settings = {**spec.model_dump(), "continued_from_adapter": in_use_id if init else None}
        row = dict(id=tr_id, run_id=self.run_id, round=rnd, backend=spec.backend, backend_reason=None,
                   settings=settings, n_examples=len(examples), steps=spec.steps, loss_curve=None,
                   tokens_per_second=None, seconds=None, status="running", error=None)
        if skip is not None:
            with self.store.transaction():
                self.store.insert("training_runs", [{**row, "status": "skipped", "error": skip}])
                self._mark(rnd, "train")
            self.bus.emit(AdapterPromoted(self.run_id, rnd, None, False, f"training skipped: {skip}"))
            return
        self.store.insert("training_runs", [row])
        assert self.workdir is not None and self.home is not None
        held = q(f"select {TASK_COLUMNS} from tasks where run_id = ? and held_out order by id limit 3", [self.run_id])
        from engine.train.dataset import solve_messages

        check_prompts = [self.rt.chat.render(solve_messages(self.recipe, task_from_row(r).task.prompt)) for r in held]
        check_prompts.append(self.rt.chat.render([{"role": "user", "content": "Explain what a linked list is."}]))
        cfg = TrainConfig(home=self.home, gguf=self.rt.path, workdir=self.workdir / f"round-{rnd}",
                          spec=spec, seed=seed_for(self.seed, rnd, "lora"), check_prompts=check_prompts,
                          init_lora=init)

        def progress(step: int, steps: int, loss: float, tps: float) -> None:
            self.bus.emit(TrainingProgress(self.run_id, rnd, step, steps, loss, tps))
            checkpoint(f"train:{step}")

        try:
            out = train_lora(cfg, examples, cancel=self.stop, on_progress=progress)
        except TrainingError as e:
            q("update training_runs set status = ?, error = ? where id = ?",
              ["cancelled" if self.stop.is_set() else "failed", str(e), tr_id])
            if self.stop.is_set():
                raise Stopped("stopped") from e
            self.bus.emit(AdapterPromoted(self.run_id, rnd, None, False, f"training failed: {e}"))
            self._mark(rnd, "train")
            return
        checkpoint("export")  # the adapter file exists; the store does not know it yet
        parent, _ = self.current_adapter()
        ad_id = self.store.allocate_ids("adapters", 1)[0]
        with self.store.transaction():
            q("update training_runs set status = 'done', backend = ?, backend_reason = ?, loss_curve = ?, "
              "tokens_per_second = ?, seconds = ?, n_examples = ? where id = ?",
              [out.backend, out.backend_reason, json.dumps(out.loss_curve), out.tokens_per_second, out.seconds,
               out.n_examples, tr_id])
            self.store.insert("adapters", [dict(
                id=ad_id, run_id=self.run_id, round=rnd, training_run_id=tr_id, parent_id=parent,
                path=str(out.adapter_path), sha256=out.sha256, export_cosine=out.cosine, promoted=False, decision=None)])
            self._mark(rnd, "train")
        self.bus.emit(AdapterExported(self.run_id, rnd, ad_id, str(out.adapter_path), out.cosine))

    def _evaluate(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        """Score the new adapter and the one in use on the held-out sets; keep the better."""
        new = self.store.execute(
            "select id, path from adapters where run_id = ? and round = ? and decision is null order by id desc limit 1",
            [self.run_id, rnd])
        if not self.train or not new:
            self._mark(rnd, "evaluate")
            return
        from engine.evaluate import gate, score, stored_score
        from engine.heldout import eval_sets

        new_id, new_path = int(new[0][0]), str(new[0][1])
        cur_id, cur_path = self.current_adapter()
        sets = eval_sets(self.store, self.run_id, self.recipe, self.seed, difficulty)
        rows = []
        means = {}
        for adapter_id, path in ((cur_id, cur_path), (new_id, new_path)):
            accs = []
            for name, tasks in sets.items():
                cached = stored_score(self.store, self.run_id, adapter_id, name)
                if cached is not None:
                    accs.append(cached.accuracy)
                    continue
                if not self.rt.serves(path):
                    self.rt.set_adapter(path).result()
                sc, _ = score(self.rt, self.recipe, tasks, seed=self.seed)
                checkpoint("evaluate")
                accs.append(sc.accuracy)
                rows.append(dict(run_id=self.run_id, round=rnd, adapter_id=adapter_id, eval_set=name, n=sc.n,
                                 correct=sc.correct, accuracy=sc.accuracy, ci_low=sc.ci_low, ci_high=sc.ci_high))
                self.bus.emit(EvalScored(self.run_id, rnd, name, adapter_id, sc.accuracy, sc.ci_low, sc.ci_high))
            means[adapter_id] = sum(accs) / len(accs)
        promote, reason = gate(means[new_id], means[cur_id], self.recipe.eval.margin)
        keep = new_path if promote else cur_path
        if not self.rt.serves(keep):
            self.rt.set_adapter(keep).result()
        ids = self.store.allocate_ids("evals", len(rows))
        with self.store.transaction():
            self.store.insert("evals", [dict(id=i, **r) for i, r in zip(ids, rows)])
            self.store.execute("update adapters set promoted = ?, decision = ? where id = ?", [promote, reason, new_id])
            self._mark(rnd, "evaluate")
        self.bus.emit(AdapterPromoted(self.run_id, rnd, new_id if promote else cur_id, promote, reason))

