"""The verify phase: ground truth was computed as answers were written; it closes the round with
its stats (``round_stats``) and per-skill scores.
"""

from __future__ import annotations

import json

from engine.curriculum import round_skill_counts, write_skill_scores
from engine.protocol import DebateScore
from engine.roundbase import PhaseRunner


def run(ctx: PhaseRunner, rnd: int, difficulty: int, timings: dict[str, float]) -> None:
    """Ground truth was computed as answers were written; close the round with its stats."""
    stats = round_stats(ctx, rnd)
    stats.update({f"seconds_{k}": round(v, 3) for k, v in timings.items()})
    stats["budget_capped"] = float(ctx.budget_capped)
    with ctx.store.transaction():
        write_skill_scores(ctx.store, ctx.run_id, rnd, "round", ctx.current_adapter()[0],
                           round_skill_counts(ctx.store, ctx.run_id, rnd))
        ctx.store.execute(
            "update rounds set phase = 'verify', stats = ?, finished_at = current_timestamp "
            "where run_id = ? and round = ?", [json.dumps(stats), ctx.run_id, rnd])


def round_stats(ctx: PhaseRunner, rnd: int) -> dict[str, float]:
    q = ctx.store.execute
    r, rid = rnd, ctx.run_id
    proposed, accepted, rejected = q(
        "select count(*), count(*) filter (rejected_reason is null), count(*) filter (rejected_reason is not null) "
        "from tasks where run_id = ? and round = ? and not held_out", [rid, r])[0]
    first = q("select avg(correct::int) from attempts where run_id = ? and round = ? and turn = 0", [rid, r])[0][0]
    # Each answer's last turn: a task the round did not debate (round.debate_tasks) ends at its first.
    final = q(
        "select avg(correct::int) from attempts a where run_id = ? and round = ? and turn = (select max(turn) "
        "from attempts b where b.run_id = a.run_id and b.round = a.round and b.task_id = a.task_id "
        "and b.agent = a.agent and b.sample = a.sample)", [rid, r])[0][0]
    # Each debated answer's first and last turn, and the judge per class: the round's own debate
    # scored the way the debate protocol is (engine.protocol), from the verifier's outcomes.
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
        "debate_gain": float(debate.gain),  # over the debated answers only
        **{k: float("nan") if v is None else v for k, v in (
            ("right_to_wrong", debate.right_to_wrong_rate), ("wrong_to_right", debate.wrong_to_right_rate),
            ("judge_balanced_accuracy", debate.judge_balanced_accuracy))},
        # the hint phase: how many critiques led to a verified revision, how many rationales passed
        "hint_critiques": float(hints.get(("critique", True), 0) + hints.get(("critique", False), 0)),
        "hint_critiques_passed": float(hints.get(("critique", True), 0)),
        "rationales": float(hints.get(("rationale", True), 0) + hints.get(("rationale", False), 0)),
        "rationales_passed": float(hints.get(("rationale", True), 0)),
    }
    if ctx.gen_seconds:
        out["tokens_per_second"] = ctx.tokens / ctx.gen_seconds
    return out
