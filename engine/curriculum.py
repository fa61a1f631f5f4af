"""The curriculum: which levels a round draws its tasks from, which tasks, and why.

Every task carries skill tags from its domain (``engine.tasks``: arith ``digits:2``,
``carries:1``, ``op:-``; python ``loop``, ``string``, ``family:dedupe``). Two per-skill pass
rates are kept per round in ``skill_scores``: the round's own first answers (``round``) and the
dev sets as scored by the gate for the adapter in use once the round ended (``dev``).

A round's plan (``plan``) is written to ``rounds``: its main level, the mix of levels its
generated tasks come from (the main level and, always, a share of the next one, so a round
never trains on one level only) and in words why. The main level moves

- **up** when the dev score at it passes ``task.target_high``, or when it stopped rising:
  the best of the last ``task.stall_rounds`` scores at the level is not ``task.min_rise``
  above the best before them;
- **down** when the score stayed under ``task.target_low`` for two rounds in a row without
  rising (by more than ``task.min_rise``: the level is too hard for now; a low score that rises
  is learning, and stays), or when the generator ran out of new train tasks at it (a small level such
  as 1-digit sums), to the nearest level below that still has data, else the nearest above.

The score of a round is the dev accuracy at its level of the adapter in use after its gate
(``rounds.dev_score``); without training, the round's first-answer pass rate on its main
level's tasks. Test sets are never read.

Within a level, generated tasks lean toward weak skills (``task.focus_weak``): the generator
draws a few times more candidates than needed and keeps a weighted sample, each task weighted
by how weak its skills are. The proposer's prompt can name the weak skills (``{weak_skills}``)
and show tasks the round got wrong (``{failed}``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass

from engine.recipes import Recipe, TaskSpec
from engine.store import Store
from engine.tasks import Domain, Task, task_skills

#: How many times more candidates than needed the generator draws when leaning toward weak skills.
OVERDRAW = 4
#: Skills need this many answers before they count as weak or strong.
MIN_EVIDENCE = 3


@dataclass(frozen=True)
class Plan:
    level: int
    mix: dict[int, int]  # level -> generated tasks to draw
    reason: str


def level_mix(level: int, generated: int, spec: TaskSpec) -> dict[int, int]:
    """Generated tasks per level: ``next_share`` of them from the next level and ``prev_share``
    from the one below (each at least one task where the level exists and the share is not
    zero), the rest from ``level``.

    >>> from engine.recipes import TaskSpec
    >>> level_mix(2, 24, TaskSpec(max_difficulty=8, next_share=0.25)), level_mix(8, 24, TaskSpec(max_difficulty=8))
    ({2: 18, 3: 6}, {8: 24})
    >>> level_mix(2, 2, TaskSpec(next_share=0.1)), level_mix(2, 0, TaskSpec())
    ({2: 1, 3: 1}, {2: 0})
    >>> level_mix(3, 12, TaskSpec(next_share=0.25, prev_share=0.25)), level_mix(1, 12, TaskSpec(prev_share=0.25))
    ({2: 3, 3: 6, 4: 3}, {1: 9, 2: 3})

    ``ahead_share`` more, shared out evenly over the levels two and more above (the nearer take the
    remainder), so that what lies ahead is seen before the curriculum reaches it:

    >>> level_mix(2, 120, TaskSpec(max_difficulty=9, next_share=0.25, prev_share=0.1, ahead_share=0.2))
    {1: 12, 2: 54, 3: 30, 4: 4, 5: 4, 6: 4, 7: 4, 8: 4, 9: 4}
    >>> level_mix(8, 24, TaskSpec(max_difficulty=9, ahead_share=0.2)), level_mix(2, 4, TaskSpec(max_difficulty=9, ahead_share=0.2))
    ({8: 18, 9: 6}, {2: 2, 3: 1, 4: 1})

    ``ahead_top``: that share of the ahead tasks from the top level, the rest evenly over the others:

    >>> level_mix(2, 120, TaskSpec(max_difficulty=9, next_share=0.25, prev_share=0.1, ahead_share=0.2, ahead_top=0.5))
    {1: 12, 2: 54, 3: 30, 4: 3, 5: 3, 6: 2, 7: 2, 8: 2, 9: 12}
    >>> level_mix(5, 24, TaskSpec(max_difficulty=9, next_share=0, ahead_share=0.25, ahead_top=1.0))
    {5: 18, 9: 6}
    """
    mix = {level: generated}
    for other, share in ((level + 1, spec.next_share), (level - 1, spec.prev_share)):
        if 1 <= other <= spec.max_difficulty and share > 0 and mix[level] >= 2:
            n = min(mix[level] - 1, max(1, round(generated * share)))
            mix[level] -= n
            mix[other] = n
    ahead = list(range(level + 2, spec.max_difficulty + 1))
    if ahead and spec.ahead_share > 0 and mix[level] >= 2:
        n = min(mix[level] - 1, max(1, round(generated * spec.ahead_share)))
        mix[level] -= n
        if spec.ahead_top is not None and len(ahead) > 1:
            if (top := round(n * spec.ahead_top)):
                mix[ahead[-1]] = top
            n, ahead = n - top, ahead[:-1]
        per, extra = divmod(n, len(ahead))
        for i, other in enumerate(ahead):
            if (k := per + (i < extra)):
                mix[other] = k
    return dict(sorted(mix.items()))


def next_level(scores: list[tuple[int, float]], spec: TaskSpec, exhausted: set[int]) -> tuple[int, str]:
    """The next round's main level from the scores ``(level, score)`` of the rounds so far, oldest
    first, and the levels whose train data ran out.

    >>> from engine.recipes import TaskSpec
    >>> spec = TaskSpec(max_difficulty=6, target_low=0.2, target_high=0.8, stall_rounds=2, min_rise=0.02)
    >>> next_level([(2, 0.5)], spec, set())
    (2, 'dev 50% at level 2, between 20% and 80%: stay')
    >>> next_level([(2, 0.9)], spec, set())[0], next_level([(2, 0.5), (2, 0.66), (2, 0.66), (2, 0.67)], spec, set())[0]
    (3, 3)
    >>> next_level([(3, 0.1)], spec, set())[0], next_level([(3, 0.1), (3, 0.11)], spec, set())[0]
    (3, 2)
    >>> next_level([(3, 0.14), (3, 0.17)], spec, set())[1]
    'dev 17% at level 3, under 20% but rising (14%, 17%): stay'
    >>> next_level([(2, 0.6), (3, 0.14)], spec, set())[1]
    'dev 14% at level 3, under 20% for one round (two move down): stay'

    >>> next_level([(1, 0.5)], spec, {1})
    (2, 'the generator ran out of new train tasks at level 1: move to level 2')
    """
    level, score = scores[-1]
    run: list[float] = []
    for lvl, s in reversed(scores):
        if lvl != level:
            break
        run.insert(0, s)
    top, low, high = spec.max_difficulty, spec.target_low, spec.target_high
    if score > high and level < top:
        return level + 1, f"dev {score:.0%} at level {level} passed {high:.0%}: up to level {level + 1}"
    k = spec.stall_rounds
    if level < top and len(run) > k and max(run[-k:]) <= max(run[:-k]) + spec.min_rise:
        last = ", ".join(f"{s:.0%}" for s in run[-k:])
        return level + 1, (f"dev at level {level} stopped rising ({last} after a best of {max(run[:-k]):.0%}): "
                           f"up to level {level + 1}")
    if level > 1 and len(run) >= 2 and run[-1] < low and run[-2] < low:
        if run[-1] > run[-2] + spec.min_rise:
            return level, f"dev {score:.0%} at level {level}, under {low:.0%} but rising ({run[-2]:.0%}, {score:.0%}): stay"
        return level - 1, (f"dev under {low:.0%} at level {level} two rounds in a row, not rising: "
                           f"down to level {level - 1}")
    if level in exhausted:
        for cand in [*range(level - 1, 0, -1), *range(level + 1, top + 1)]:
            if cand not in exhausted:
                return cand, f"the generator ran out of new train tasks at level {level}: move to level {cand}"
    if score < low and level > 1:  # one round under: a second one moves down
        return level, f"dev {score:.0%} at level {level}, under {low:.0%} for one round (two move down): stay"
    return level, f"dev {score:.0%} at level {level}, between {low:.0%} and {high:.0%}: stay"


def round_scores(store: Store, run_id: int, before: int) -> list[tuple[int, float]]:
    """Each earlier round's main level and score: the dev accuracy at that level of the adapter in
    use after the round, else the round's first-answer pass rate on that level's tasks."""
    rows = store.execute(
        """
        select r.round, r.difficulty, r.dev_score,
               (select avg(a.correct::int) from attempts a join tasks t on t.id = a.task_id
                where a.run_id = r.run_id and a.round = r.round and a.turn = 0 and t.difficulty = r.difficulty)
        from rounds r where r.run_id = ? and r.round < ? and r.status = 'complete' order by r.round
        """, [run_id, before])
    return [(int(lvl), float(dev if dev is not None else (first or 0.0))) for _, lvl, dev, first in rows]


def exhausted_levels(store: Store, run_id: int, before: int) -> set[int]:
    """Levels where the latest round that asked for generated tasks got fewer than it asked."""
    drawn = {(int(r), int(lvl)): int(n) for r, lvl, n in store.execute(
        "select round, difficulty, count(*) from tasks where run_id = ? and round < ? and source = 'generated' "
        "group by all", [run_id, before])}
    out: dict[int, bool] = {}
    for rnd, mix in store.execute("select round, mix from rounds where run_id = ? and round < ? and mix is not null "
                                  "order by round", [run_id, before]):
        for lvl, asked in json.loads(mix).items():
            out[int(lvl)] = int(asked) > 0 and drawn.get((int(rnd), int(lvl)), 0) < int(asked)
    return {lvl for lvl, short in out.items() if short}


def plan(store: Store, run_id: int, rnd: int, recipe: Recipe) -> Plan:
    """The plan of round ``rnd`` (round 0: the recipe's level)."""
    spec = recipe.task
    if rnd == 0:
        level, reason = spec.difficulty, f"round 0 starts at the recipe's level {spec.difficulty}"
    else:
        scores = round_scores(store, run_id, rnd)
        if not scores:
            level, reason = spec.difficulty, f"no earlier round: the recipe's level {spec.difficulty}"
        else:
            level, reason = next_level(scores, spec, exhausted_levels(store, run_id, rnd))
    mix = level_mix(level, spec.generated, spec)
    others = [f"{n} from level {lvl}" for lvl, n in mix.items() if lvl != level]
    if others:
        reason += f"; of {spec.generated} generated tasks, " + (
            others[0] if len(others) == 1 else ", ".join(others[:-1]) + " and " + others[-1])
    return Plan(level, mix, reason)


# -- skills ------------------------------------------------------------------------------------

def count_skills(rows: Iterable[tuple[str | list[str] | None, bool]]) -> dict[str, tuple[int, int]]:
    """Per skill (answers, right) from ``(skills, correct)`` pairs; skills as a list or JSON text.

    >>> count_skills([(["op:+", "carries:1"], True), ('["op:+"]', False), (None, True)])
    {'op:+': (2, 1), 'carries:1': (1, 1)}
    """
    out: dict[str, list[int]] = {}
    for skills, ok in rows:
        for s in (json.loads(skills) if isinstance(skills, str) else skills or []):
            c = out.setdefault(s, [0, 0])
            c[0] += 1
            c[1] += int(bool(ok))
    return {k: (n, p) for k, (n, p) in out.items()}


def write_skill_scores(store: Store, run_id: int, rnd: int, source: str, adapter_id: int | None,
                       counts: dict[str, tuple[int, int]]) -> None:
    """Replace the round's per-skill scores of ``source`` (round | dev)."""
    store.execute("delete from skill_scores where run_id = ? and round = ? and source = ?", [run_id, rnd, source])
    store.insert("skill_scores", [dict(run_id=run_id, round=rnd, source=source, adapter_id=adapter_id, skill=k, n=n,
                                       passed=p) for k, (n, p) in sorted(counts.items())])


def round_skill_counts(store: Store, run_id: int, rnd: int) -> dict[str, tuple[int, int]]:
    """The round's first answers per skill."""
    return count_skills(store.execute(
        "select t.skills, a.correct from attempts a join tasks t on t.id = a.task_id "
        "where a.run_id = ? and a.round = ? and a.turn = 0", [run_id, rnd]))


def dev_skill_counts(store: Store, outcomes: dict[int, bool]) -> dict[str, tuple[int, int]]:
    """Dev-set outcomes (task id -> right) per skill."""
    if not outcomes:
        return {}
    ids = sorted(outcomes)
    skills = dict(store.execute(f"select id, skills from tasks where id in ({', '.join('?' for _ in ids)})", ids))
    return count_skills((skills.get(i), outcomes[i]) for i in ids)


def skill_rates(store: Store, run_id: int, before: int) -> dict[str, tuple[int, int]]:
    """What is known of each skill before round ``before``: the latest dev scores and the latest
    round's first answers, added together."""
    out: dict[str, list[int]] = {}
    for source in ("dev", "round"):
        rows = store.execute(
            "select skill, n, passed from skill_scores where run_id = ? and source = ? and round = "
            "(select max(round) from skill_scores where run_id = ? and source = ? and round < ?)",
            [run_id, source, run_id, source, before])
        for skill, n, p in rows:
            c = out.setdefault(skill, [0, 0])
            c[0] += int(n)
            c[1] += int(p)
    return {k: (n, p) for k, (n, p) in out.items()}


def rate(counts: tuple[int, int]) -> float:
    """Pass rate with one right and one wrong answer imagined (so no evidence reads as 50%).

    >>> rate((0, 0)), rate((8, 8)), rate((8, 0))
    (0.5, 0.9, 0.1)
    """
    n, p = counts
    return (p + 1) / (n + 2)


def weakness(skills: list[str], rates: dict[str, tuple[int, int]]) -> float:
    """How much a task exercises what the swarm gets wrong: the mean failure rate of its skills.

    >>> round(weakness(["op:+", "carries:2"], {"op:+": (10, 8), "carries:2": (10, 1)}), 3)  # (1/4 + 5/6) / 2
    0.542
    """
    if not skills:
        return 0.5
    return sum(1.0 - rate(rates.get(s, (0, 0))) for s in skills) / len(skills)


def pick_weak(rng: random.Random, candidates: list[Task], n: int, rates: dict[str, tuple[int, int]]) -> list[Task]:
    """``n`` of ``candidates`` drawn without replacement, each with weight its weakness; in the
    candidates' order (the generator's), so a seed gives the same round.

    >>> import random
    >>> from engine.tasks.arith import ARITH
    >>> cands = ARITH.generate(random.Random(0), 2, 40)
    >>> rates = {"carries:0": (20, 20), "carries:1": (20, 2)}
    >>> picked = pick_weak(random.Random(1), cands, 10, rates)
    >>> len(picked), sum("carries:1" in task_skills(t) for t in picked) > sum("carries:1" in task_skills(t) for t in cands) / 4
    (10, True)
    """
    if len(candidates) <= n:
        return list(candidates)
    chosen = sorted(weighted_draw(rng, [max(1e-6, weakness(task_skills(t), rates)) for t in candidates], n))
    return [candidates[i] for i in chosen]


def weighted_draw(rng: random.Random, weights: list[float], n: int) -> list[int]:
    """``n`` indices into ``weights`` drawn without replacement, each with its weight
    (Efraimidis-Spirakis: the n largest u^(1/w), one ``rng.random()`` per weight in order), in the
    order drawn.

    >>> import random
    >>> weighted_draw(random.Random(0), [1.0, 1.0, 100.0, 1.0], 2)[0]
    2
    """
    keyed = [(rng.random() ** (1.0 / w), i) for i, w in enumerate(weights)]
    return [i for _, i in sorted(keyed, reverse=True)[:n]]


def weak_skills(rates: dict[str, tuple[int, int]], domain: Domain, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` weakest skills with enough evidence, weakest first, as (words, pass rate)."""
    seen = [(rate(c), s) for s, c in rates.items() if c[0] >= MIN_EVIDENCE]
    return [(domain.describe_skill(s), r) for r, s in sorted(seen)[:k]]


@dataclass(frozen=True)
class SkillRow:
    """One skill's latest pass rates and how they moved since the round before (None: no data)."""

    skill: str
    words: str
    dev: float | None
    dev_change: float | None
    dev_n: int
    round: float | None
    round_change: float | None
    round_n: int


def skill_report(store: Store, run_id: int, domain: Domain) -> list[SkillRow]:
    """Every skill the run has scores for, weakest first (by dev rate, else the round's)."""
    latest: dict[str, dict[str, list[tuple[int, int]]]] = {}
    for source, skill, n, p in store.execute(
            "select source, skill, n, passed from skill_scores s where run_id = ? and round in (select distinct round "
            "from skill_scores where run_id = ? and source = s.source order by round desc limit 2) "
            "order by source, skill, round desc", [run_id, run_id]):
        latest.setdefault(skill, {}).setdefault(source, []).append((int(n), int(p)))

    def now_and_change(counts: list[tuple[int, int]] | None) -> tuple[float | None, float | None, int]:
        if not counts:
            return None, None, 0
        now = counts[0][1] / counts[0][0] if counts[0][0] else None
        before = counts[1][1] / counts[1][0] if len(counts) > 1 and counts[1][0] else None
        return now, (now - before if now is not None and before is not None else None), counts[0][0]

    rows = [SkillRow(s, domain.describe_skill(s), *now_and_change(by.get("dev")), *now_and_change(by.get("round")))
            for s, by in latest.items()]
    return sorted(rows, key=lambda r: (r.dev if r.dev is not None else r.round if r.round is not None else 2.0, r.skill))


__all__ = ["Plan", "SkillRow", "count_skills", "dev_skill_counts", "level_mix", "next_level", "pick_weak", "plan",
           "round_skill_counts", "skill_rates", "skill_report", "weak_skills", "weakness", "weighted_draw", "write_skill_scores"]
