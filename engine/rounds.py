"""One round of the swarm: propose, solve, debate (critique + revise), judge, hint, verify.

Each phase reads what it needs from the store, runs its agents concurrently through the
batched runtime, and writes all of its rows together with the round's phase marker in one
transaction. A crash or a stop mid-phase therefore loses only that phase's unsaved work, and
resuming redoes exactly that phase: nothing is repeated or lost. The verifier's verdict is
computed as each answer is written and is the only ground truth; the judge's verdict is
recorded beside it with their agreement.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from engine.agents import JUDGE_GRAMMAR, JUDGE_PREFIX, fill, parse_judgement, request, seed_for
from engine.events import (
    AnswerGiven,
    CritiqueMade,
    PhaseFinished,
    PhaseStarted,
    RoundFinished,
    RoundStarted,
    TaskProposed,
    VerdictReached,
)
from engine.curriculum import (
    OVERDRAW, Plan, pick_weak, round_skill_counts, skill_rates, weak_skills, write_skill_scores,
)
from engine.faults import checkpoint
from engine.recipes import AgentSpec
from engine.runtime import Result
from engine.tasks import Task, task_skills
from engine.learning import LearningPhases
from engine.pools import duplicate_reason, known_keys, pool_of
from engine.protocol import DebateScore
from engine.roundbase import TASK_COLUMNS, PhaseRunner, Stopped, TaskRow, task_from_row, tokens_used

__all__ = ["PHASES", "TASK_COLUMNS", "PhaseRunner", "RoundRunner", "Stopped", "TaskRow", "task_from_row"]

PHASES = ("propose", "solve", "debate", "judge", "hint", "verify", "collect", "train", "evaluate")


class RoundRunner(LearningPhases):
    """Plays rounds of one run: the debate phases here, the learning phases in ``LearningPhases``."""


    # -- the round ---------------------------------------------------------------------------------

    def play(self, rnd: int, plan: Plan) -> dict[str, float]:
        """Play round ``rnd`` from its first unwritten phase; a new round is written with ``plan``."""
        row = self.store.execute("select phase, difficulty from rounds where run_id = ? and round = ?", [self.run_id, rnd])
        if not row:
            self.store.insert("rounds", [dict(run_id=self.run_id, round=rnd, status="running", phase=None,
                                              difficulty=plan.level, adapter_id=self.current_adapter()[0],
                                              mix={str(k): v for k, v in plan.mix.items()}, curriculum=plan.reason)])
            done = None
        else:
            done = row[0][0]
        difficulty, self.mix = plan.level, plan.mix
        self.round_tokens = tokens_used(self.store, self.run_id, rnd)
        self.budget_capped = False
        self.bus.emit(RoundStarted(self.run_id, rnd, difficulty))
        start = PHASES.index(done) + 1 if done in PHASES else 0
        timings: dict[str, float] = {}
        for phase in PHASES[start:]:
            if self.stop.is_set():
                raise Stopped("stopped")
            if phase in self.recipe.round.skip:  # left out by the recipe: recorded as passed, nothing run
                with self.store.transaction():
                    self._mark(rnd, phase)
                continue
            self.bus.emit(PhaseStarted(self.run_id, rnd, phase))
            self.phase, self.round, self.progress = phase, rnd, (phase, 0, 0, 0)
            t0 = time.perf_counter()
            getattr(self, f"_{phase}")(rnd, difficulty, timings)
            timings[phase] = time.perf_counter() - t0
            self.bus.emit(PhaseFinished(self.run_id, rnd, phase, timings[phase]))
            if self.single_phase and phase != PHASES[-1]:
                raise Stopped("paused after one phase")
        checkpoint("complete")
        self.store.execute("update rounds set status = 'complete', finished_at = coalesce(finished_at, current_timestamp) "
                           "where run_id = ? and round = ?", [self.run_id, rnd])
        stats = self.stats(rnd)
        self.bus.emit(RoundFinished(self.run_id, rnd, stats))
        return stats

    def _propose(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        spec = self.recipe.task
        known = known_keys(self.store, self.run_id, self.domain.name)
        rates = skill_rates(self.store, self.run_id, rnd) if spec.focus_weak else {}
        candidates: list[tuple[str, Task | str, str]] = []
        # Generated tasks: the plan's mix of levels, drawn from the train pool's share of all tasks,
        # new to the run, leaning toward weak skills (engine.curriculum).
        for level, n in sorted((self.mix or {difficulty: spec.generated}).items()):
            rng = random.Random(seed_for(self.seed, rnd, "generate", level))
            draw = n * OVERDRAW if rates else n
            drawn = self.domain.generate(rng, level, draw,
                                         accept=lambda k: pool_of(k, self.seed) == "train" and k not in known)
            picked = pick_weak(random.Random(seed_for(self.seed, rnd, "pick", level)), drawn, n, rates) if rates else drawn
            candidates += [("generated", t, "") for t in picked]
        proposers = self._agents("proposer")
        if proposers and spec.proposed:
            examples_pool = self.domain.generate(random.Random(seed_for(self.seed, rnd, "examples")), difficulty,
                                                 3 * OVERDRAW if rates else 3)
            if rates:
                examples_pool = pick_weak(random.Random(seed_for(self.seed, rnd, "examples-pick")), examples_pool, 3, rates)
            examples = "\n".join(t.payload.get("expression", t.payload.get("spec", t.prompt)) for t in examples_pool)
            weak = weak_skills(rates, self.domain)
            failed = [r[0] for r in self.store.execute(
                "select t.prompt from tasks t join attempts a on a.task_id = t.id where t.run_id = ? and t.round = ? "
                "and a.turn = 0 group by t.id, t.prompt having not bool_or(a.correct) order by t.id limit 3",
                [self.run_id, rnd - 1])]
            values = {"examples": examples, "difficulty": difficulty,
                      "weak_skills": ", ".join(f"{w} ({r:.0%} right)" for w, r in weak) or "none known yet",
                      "failed": "\n".join(failed) or "none"}
            reqs = [
                request(proposers[i % len(proposers)], fill(self.recipe.prompts.propose, values),
                        seed_for(self.seed, rnd, "propose", i))
                for i in range(spec.proposed)
            ]
            self._serve("proposer")
            for res in self._generate(reqs):
                candidates.append(("proposed", self.domain.parse_proposal(res.text, difficulty), res.text))
        ids = self.store.allocate_ids("tasks", len(candidates))
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
                id=tid, run_id=self.run_id, round=rnd, source=source, task_set=None, domain=self.domain.name,
                difficulty=task.difficulty if task else difficulty, prompt=prompt,
                reference=task.reference if task else None, payload=payload, fingerprint=fp,
                held_out=False, rejected_reason=reason, pool="train", behaviour=task.behaviour if task else None,
                skills=task_skills(task) if task else None,
            ))
        with self.store.transaction():
            self.store.insert("tasks", rows)
            self._mark(rnd, "propose")
        for r in rows:
            self.bus.emit(TaskProposed(self.run_id, rnd, r["id"], r["source"], r["prompt"], r["rejected_reason"]))

    def _attempt_rows(self, rnd: int, items: list[tuple[TaskRow, AgentSpec, int]], results: list[Result], turn: int) -> list[dict[str, Any]]:
        ids = self.store.allocate_ids("attempts", len(items))
        rows = []
        for aid, (tr, agent, sample), res in zip(ids, items, results):
            verdict = self.domain.verify(tr.task, res.text)
            rows.append(dict(
                id=aid, run_id=self.run_id, round=rnd, task_id=tr.id, agent=agent.name, sample=sample, turn=turn,
                text=res.text, answer=verdict.answer, correct=verdict.correct, status=verdict.status,
                tokens=res.completion_tokens, seconds=res.seconds, truncated=res.truncated_prompt,
                endpoint=res.endpoint,
            ))
            self.bus.emit(AnswerGiven(self.run_id, rnd, tr.id, agent.name, turn, res.text, verdict.correct))
        return rows

    def _solve(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        items = [(tr, solver, s) for tr in self._tasks(rnd) for solver in self._agents("solver")
                 for s in range(self.recipe.round.samples)]
        reqs = [request(a, fill(self.recipe.prompts.solve, {"task": tr.task.prompt}),
                        seed_for(self.seed, rnd, tr.task.fingerprint, a.name, s, 0), task=tr.id) for tr, a, s in items]
        self._serve("solver")
        results = self._generate(reqs)
        rows = self._attempt_rows(rnd, items, results, 0)
        with self.store.transaction():
            self.store.insert("attempts", rows)
            self._mark(rnd, "solve")

    def _debate(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        critics = self._agents("critic")
        turns = self.recipe.round.debate_turns if critics else 0
        done_turns = self.store.execute(
            "select coalesce(max(turn), 0) from attempts where run_id = ? and round = ?", [self.run_id, rnd])[0][0]
        tasks = {tr.id: tr for tr in self._tasks(rnd)}
        solvers = {a.name: a for a in self._agents("solver")}
        p = self.recipe.prompts
        for turn in range(int(done_turns) + 1, turns + 1):
            prev = self.store.execute(
                "select id, task_id, agent, sample, text from attempts where run_id = ? and round = ? and turn = ? order by id",
                [self.run_id, rnd, turn - 1])
            prev = [r for r in prev if r[1] in tasks and r[2] in solvers]
            crit_reqs = [
                request(critics[i % len(critics)], fill(p.critique, {"task": tasks[tid].task.prompt, "answer": text}),
                        seed_for(self.seed, rnd, tasks[tid].task.fingerprint, agent, s, "critique", turn), task=tid)
                for i, (_aid, tid, agent, s, text) in enumerate(prev)
            ]
            self._serve("critic")
            crits = self._generate(crit_reqs)
            items = [(tasks[tid], solvers[agent], s) for _aid, tid, agent, s, _t in prev]
            rev_reqs = [
                request(solvers[agent], fill(p.revise, {"task": tasks[tid].task.prompt, "answer": text, "critique": c.text}),
                        seed_for(self.seed, rnd, tasks[tid].task.fingerprint, agent, s, turn), task=tid)
                for (_aid, tid, agent, s, text), c in zip(prev, crits)
            ]
            self._serve("reviser")
            revs = self._generate(rev_reqs)
            crit_ids = self.store.allocate_ids("critiques", len(prev))
            crit_rows = [
                dict(id=cid, run_id=self.run_id, round=rnd, task_id=tid, attempt_id=aid,
                     agent=critics[i % len(critics)].name, turn=turn, text=c.text,
                     tokens=c.completion_tokens, seconds=c.seconds, endpoint=c.endpoint)
                for i, (cid, (aid, tid, _a, _s, _t), c) in enumerate(zip(crit_ids, prev, crits))
            ]
            for r in crit_rows:
                self.bus.emit(CritiqueMade(self.run_id, rnd, r["task_id"], r["agent"], r["text"]))
            att_rows = self._attempt_rows(rnd, items, revs, turn)
            with self.store.transaction():
                self.store.insert("critiques", crit_rows)
                self.store.insert("attempts", att_rows)
                if turn == turns:
                    self._mark(rnd, "debate")
        if int(done_turns) >= turns:
            self._mark(rnd, "debate")

    def _judge(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        judges = self._agents("judge")
        if not judges:
            self._mark(rnd, "judge")
            return
        tasks = {tr.id: tr for tr in self._tasks(rnd)}
        finals = self.store.execute(
            "select id, task_id, text, correct, status, agent, sample from attempts a where run_id = ? and round = ? and turn = "
            "(select max(turn) from attempts b where b.run_id = a.run_id and b.round = a.round and b.task_id = a.task_id "
            "and b.agent = a.agent and b.sample = a.sample) order by id", [self.run_id, rnd])
        finals = [f for f in finals if f[1] in tasks]
        reqs = [
            request(judges[i % len(judges)], fill(self.recipe.prompts.judge, {"task": tasks[tid].task.prompt, "answer": text}),
                    seed_for(self.seed, rnd, tasks[tid].task.fingerprint, agent, sample, "judge"), grammar=JUDGE_GRAMMAR,
                    prefix=JUDGE_PREFIX, greedy=judges[i % len(judges)].temperature == 0, task=tid)
            for i, (_aid, tid, text, _c, _s, agent, sample) in enumerate(finals)
        ]
        self._serve("judge")
        results = self._generate(reqs)
        ids = self.store.allocate_ids("verdicts", len(finals))
        rows = []
        for i, (vid, (aid, tid, _text, correct, status, _agent, _sample), res) in enumerate(zip(ids, finals, results)):
            verdict_text = JUDGE_PREFIX + res.text
            judged = parse_judgement(verdict_text)
            rows.append(dict(
                id=vid, run_id=self.run_id, round=rnd, task_id=tid, attempt_id=aid, judge=judges[i % len(judges)].name,
                judge_correct=judged, judge_text=verdict_text, verifier_correct=bool(correct), verifier_status=status or "",
                agreement=None if judged is None else judged == bool(correct), tokens=res.completion_tokens, seconds=res.seconds,
                endpoint=res.endpoint,
            ))
            self.bus.emit(VerdictReached(self.run_id, rnd, tid, judged, bool(correct), judges[i % len(judges)].name))
        with self.store.transaction():
            self.store.insert("verdicts", rows)
            self._mark(rnd, "judge")

    def _hint(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        """Work on what the round got wrong, with the verified result in view (CTRL, STaR): a critic
        critiques each wrong final answer knowing the result and the answer's solver revises with
        that critique; a solver writes a rationale for each task no answer got right. The verifier
        scores both; ``collect`` trains on those that pass, without the hint."""
        critics, solvers = self._agents("critic"), {a.name: a for a in self._agents("solver")}
        if not self.recipe.round.hints or not solvers:
            self._mark(rnd, "hint")
            return
        from engine.train.dataset import _norm

        tasks = {tr.id: tr for tr in self._tasks(rnd)}
        rows = self.store.execute(
            "select id, task_id, agent, sample, text, correct from attempts a where run_id = ? and round = ? and turn = "
            "(select max(turn) from attempts b where b.run_id = a.run_id and b.round = a.round) order by id",
            [self.run_id, rnd])
        solved = {int(t) for (t,) in self.store.execute(
            "select distinct task_id from attempts where run_id = ? and round = ? and correct", [self.run_id, rnd])}
        cap, p = self.recipe.train.max_per_task, self.recipe.prompts
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
                    seed_for(self.seed, rnd, tr.task.fingerprint, agent, sample, "hint"), task=tr.id)
            for i, (_aid, tr, agent, sample, text) in enumerate(wrong)]
        unsolved = [tr for tid, tr in tasks.items() if tid not in solved]
        first = next(iter(solvers.values()))
        why_reqs = [request(first, fill(p.rationale, {"task": tr.task.prompt, "reference": tr.task.reference}),
                            seed_for(self.seed, rnd, tr.task.fingerprint, "rationale"), task=tr.id) for tr in unsolved]
        if self.per_role:  # the critics' and the solver's requests under their own adapters
            self._serve("critic")
            crits = self._generate(crit_reqs)
            self._serve("solver")
            whys = self._generate(why_reqs)
        else:
            results = self._generate(crit_reqs + why_reqs)
            crits, whys = results[:len(crit_reqs)], results[len(crit_reqs):]
        rev_reqs = [
            request(solvers[agent], fill(p.revise, {"task": tr.task.prompt, "answer": text, "critique": c.text}),
                    seed_for(self.seed, rnd, tr.task.fingerprint, agent, sample, "hint revision"), task=tr.id)
            for (_aid, tr, agent, sample, text), c in zip(wrong, crits)]
        self._serve("reviser")
        revs = self._generate(rev_reqs)
        ids = self.store.allocate_ids("hints", len(wrong) + len(unsolved))
        out = []
        for hid, (aid, tr, agent, _s, _t), c, r, req in zip(ids, wrong, crits, revs, crit_reqs):
            out.append(dict(id=hid, run_id=self.run_id, round=rnd, task_id=tr.id, attempt_id=aid, kind="critique",
                            agent=req.tag, text=c.text, reviser=agent, revision=r.text,
                            correct=self.domain.verify(tr.task, r.text).correct,
                            tokens=c.completion_tokens + r.completion_tokens, seconds=c.seconds + r.seconds,
                            endpoint=c.endpoint))
            self.bus.emit(CritiqueMade(self.run_id, rnd, tr.id, str(req.tag), c.text))
        for hid, tr, w in zip(ids[len(wrong):], unsolved, whys):
            out.append(dict(id=hid, run_id=self.run_id, round=rnd, task_id=tr.id, attempt_id=None, kind="rationale",
                            agent=first.name, text=w.text, reviser=None, revision=None,
                            correct=self.domain.verify(tr.task, w.text).correct, tokens=w.completion_tokens,
                            seconds=w.seconds, endpoint=w.endpoint))
        with self.store.transaction():
            self.store.insert("hints", out)
            self._mark(rnd, "hint")

    def _verify(self, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
        """Ground truth was computed as answers were written; close the round with its stats."""
        stats = self.stats(rnd)
        stats.update({f"seconds_{k}": round(v, 3) for k, v in timings.items()})
        stats["budget_capped"] = float(self.budget_capped)
        with self.store.transaction():
            write_skill_scores(self.store, self.run_id, rnd, "round", self.current_adapter()[0],
                               round_skill_counts(self.store, self.run_id, rnd))
            self.store.execute(
                "update rounds set phase = 'verify', stats = ?, finished_at = current_timestamp "
                "where run_id = ? and round = ?", [json.dumps(stats), self.run_id, rnd])

    def stats(self, rnd: int) -> dict[str, float]:
        q = self.store.execute
        r, rid = rnd, self.run_id
        proposed, accepted, rejected = q(
            "select count(*), count(*) filter (rejected_reason is null), count(*) filter (rejected_reason is not null) "
            "from tasks where run_id = ? and round = ? and not held_out", [rid, r])[0]
        first = q("select avg(correct::int) from attempts where run_id = ? and round = ? and turn = 0", [rid, r])[0][0]
        final = q(
            "select avg(correct::int) from attempts a where run_id = ? and round = ? and turn = (select max(turn) "
            "from attempts b where b.run_id = a.run_id and b.round = a.round)", [rid, r])[0][0]
        # Each answer's first and last turn, and the judge per class: the round's own debate scored
        # the way the debate protocol is (engine.protocol), from the verifier's outcomes.
        first_n, kept_right, right_wrong, wrong_right = q(
            "select count(*), count(*) filter (f.correct), count(*) filter (f.correct and not l.correct), "
            "count(*) filter (not f.correct and l.correct) from attempts f join attempts l on l.run_id = f.run_id "
            "and l.round = f.round and l.task_id = f.task_id and l.agent = f.agent and l.sample = f.sample "
            "and l.turn = (select max(turn) from attempts b where b.run_id = f.run_id and b.round = f.round) "
            "where f.run_id = ? and f.round = ? and f.turn = 0", [rid, r])[0]
        jtp, jtn, jfp, jfn = q(
            "select count(*) filter (verifier_correct and judge_correct is true), "
            "count(*) filter (not verifier_correct and judge_correct is false), "
            "count(*) filter (not verifier_correct and judge_correct is not false), "
            "count(*) filter (verifier_correct and judge_correct is not true) "
            "from verdicts where run_id = ? and round = ?", [rid, r])[0]
        debate = DebateScore(first_n, kept_right, kept_right - right_wrong + wrong_right, right_wrong, wrong_right,
                             jtp, jtn, jfp, jfn)
        agree = q("select avg(agreement::int), count(*) from verdicts where run_id = ? and round = ?", [rid, r])[0]
        hints = dict(((k, ok), n) for k, ok, n in q(
            "select kind, correct, count(*) from hints where run_id = ? and round = ? group by all", [rid, r]))
        tokens, secs = q("select coalesce(sum(tokens), 0), coalesce(sum(seconds), 0) from attempts where run_id = ? and round = ?", [rid, r])[0]
        out = {
            "tasks": float(proposed), "accepted": float(accepted), "rejected": float(rejected),
            "solve_rate_first": float(first or 0.0), "solve_rate_final": float(final or 0.0),
            "judge_agreement": float(agree[0]) if agree[0] is not None else float("nan"),
            "verdicts": float(agree[1]), "attempt_tokens": float(tokens),
            # the round's own (sampled) debate, scored by the verifier afterwards
            "first_n": float(first_n),
            "debate_gain": float((final or 0.0) - (first or 0.0)),
            **{k: float("nan") if v is None else v for k, v in (
                ("right_to_wrong", debate.right_to_wrong_rate), ("wrong_to_right", debate.wrong_to_right_rate),
                ("judge_balanced_accuracy", debate.judge_balanced_accuracy))},
            # the hint phase: how many critiques led to a verified revision, how many rationales passed
            "hint_critiques": float(hints.get(("critique", True), 0) + hints.get(("critique", False), 0)),
            "hint_critiques_passed": float(hints.get(("critique", True), 0)),
            "rationales": float(hints.get(("rationale", True), 0) + hints.get(("rationale", False), 0)),
            "rationales_passed": float(hints.get(("rationale", True), 0)),
        }
        if self.gen_seconds:
            out["tokens_per_second"] = self.tokens / self.gen_seconds
        return out
