"""Scoring on fixed task sets, its bootstrap interval, and the gate that keeps or drops an adapter.

Scoring is greedy pass@1 through the batched runtime with the prompt the solvers use, checked
by the domain's verifier; every task's outcome and answer is kept (``eval_answers``), so two
adapters can be compared task by task. The gate keeps a new adapter unless, on the same dev
tasks, it loses more of them than it wins against the best adapter kept so far or the base
model, or a paired test (exact one-sided McNemar) says it is worse than either.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.agents import request
from engine.recipes import AgentSpec, Recipe
from engine.roundbase import TaskRow
from engine.runtime import Runtime
from engine.store import Store
from engine.tasks import get_domain
from engine.tasks.facts import FACTS
from engine.tasks.facts import MAX_TOKENS as FACTS_MAX_TOKENS
from engine.train.dataset import solve_messages


@dataclass(frozen=True)
class Score:
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    #: task id -> whether the answer was right (empty when not recorded)
    outcomes: dict[int, bool] = field(default_factory=dict, compare=False)


def bootstrap_ci(outcomes: Sequence[bool], resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean.

    >>> bootstrap_ci([True] * 10)
    (1.0, 1.0)
    >>> lo, hi = bootstrap_ci([True, False] * 50, seed=1); lo < 0.5 < hi
    True
    """
    n = len(outcomes)
    if n == 0:
        return 0.0, 0.0
    rng = random.Random(seed)
    vals = [int(x) for x in outcomes]
    means = sorted(sum(rng.choice(vals) for _ in range(n)) / n for _ in range(resamples))
    return means[int(0.025 * (resamples - 1))], means[int(0.975 * (resamples - 1))]


def score(runtime: Runtime, recipe: Recipe, tasks: Sequence[TaskRow], seed: int = 0) -> tuple[Score, list[str]]:
    """Greedy pass@1 of whatever adapter the runtime serves now; also the answers, in order.
    Tasks of the general facts are asked as plain questions; others as the solvers see them."""
    if tasks and tasks[0].task.domain == FACTS.name:
        agent = AgentSpec(name="facts", role="solver", system="", temperature=0.0, max_tokens=FACTS_MAX_TOKENS)
        reqs = [request(agent, tr.task.prompt, 0, greedy=True) for tr in tasks]
        verify = FACTS.verify
    else:
        solver = recipe.agents_with("solver")[0]
        agent = AgentSpec(name="eval", role="solver", system=solver.system, temperature=0.0, max_tokens=solver.max_tokens)
        reqs = [request(agent, solve_messages(recipe, tr.task.prompt)[-1]["content"], 0, greedy=True) for tr in tasks]
        verify = get_domain(recipe.task.domain).verify
    texts = [c.result().text for c in runtime.submit_many(reqs)]
    outcomes = [verify(tr.task, text).correct for tr, text in zip(tasks, texts)]
    lo, hi = bootstrap_ci(outcomes, recipe.eval.bootstrap, seed)
    k = sum(outcomes)
    return Score(len(outcomes), k, k / len(outcomes) if outcomes else 0.0, lo, hi,
                 {tr.id: ok for tr, ok in zip(tasks, outcomes)}), texts


def record_score(store: Store, run_id: int, rnd: int, adapter_id: int | None, eval_set: str, pool: str,
                 sc: Score, texts: Sequence[str]) -> int:
    """Write a score and each task's outcome (inside the caller's transaction); returns its id."""
    eid = store.allocate_ids("evals", 1)[0]
    store.insert("evals", [dict(id=eid, run_id=run_id, round=rnd, adapter_id=adapter_id, eval_set=eval_set, n=sc.n,
                                correct=sc.correct, accuracy=sc.accuracy, ci_low=sc.ci_low, ci_high=sc.ci_high,
                                pool=pool)])
    store.insert("eval_answers", [dict(eval_id=eid, task_id=tid, correct=ok, text=text)
                                  for (tid, ok), text in zip(sc.outcomes.items(), texts)])
    return eid


def stored_score(store: Store, run_id: int, adapter_id: int | None, eval_set: str) -> Score | None:
    """The score already recorded for this adapter (None: the base model) on ``eval_set``, with
    its per-task outcomes when they were kept. Greedy scoring is deterministic, so a recorded
    score is reused instead of measured again."""
    row = store.execute(
        "select id, n, correct, accuracy, ci_low, ci_high from evals where run_id = ? and adapter_id is not distinct from ? "
        "and eval_set = ? order by id desc limit 1", [run_id, adapter_id, eval_set])
    if not row:
        return None
    eid, n, correct, acc, lo, hi = row[0]
    outcomes = {int(t): bool(c) for t, c in store.execute(
        "select task_id, correct from eval_answers where eval_id = ? order by task_id", [eid])}
    return Score(int(n), int(correct), float(acc), float(lo), float(hi), outcomes)


def stored_answers(store: Store, run_id: int, adapter_id: int | None, eval_set: str) -> dict[int, str]:
    """Task id -> the greedy answer recorded with this adapter's latest score on ``eval_set``
    (empty when it was never scored): the same answers ``score`` would give again."""
    return {int(t): str(text) for t, text in store.execute(
        "select a.task_id, a.text from eval_answers a where a.eval_id = (select id from evals where run_id = ? "
        "and adapter_id is not distinct from ? and eval_set = ? order by id desc limit 1)",
        [run_id, adapter_id, eval_set])}


def recorded_answers(store: Store, run_id: int, adapter_id: int | None, eval_set: str,
                     tasks: Sequence[TaskRow]) -> list[str] | None:
    """The answers ``stored_answers`` holds for ``tasks`` (by task id), in their order; None
    unless every task has one (then they are scored again)."""
    got = stored_answers(store, run_id, adapter_id, eval_set)
    return [got[t.id] for t in tasks] if all(t.id in got for t in tasks) else None


@dataclass(frozen=True)
class Paired:
    """A new adapter against a reference on the same tasks."""

    n: int
    new_accuracy: float
    ref_accuracy: float
    worse: int  # tasks the reference got right and the new one wrong
    better: int  # tasks the new one got right and the reference wrong
    p_worse: float  # exact one-sided McNemar p-value for "the new one is worse"

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "new": self.new_accuracy, "ref": self.ref_accuracy, "worse": self.worse,
                "better": self.better, "p_worse": self.p_worse}


K = TypeVar("K", bound=Hashable)


def sign_test(at_least: int, changed: int) -> float:
    """Exact one-sided sign test: the chance that at least ``at_least`` of ``changed`` discordant
    tasks go one way when each is equally likely to go either (1.0 when none changed).

    >>> sign_test(4, 4), sign_test(1, 2), sign_test(0, 0)
    (0.0625, 0.75, 1.0)
    """
    return sum(math.comb(changed, k) for k in range(at_least, changed + 1)) / 2**changed if changed else 1.0


def paired(new: Mapping[K, bool], ref: Mapping[K, bool]) -> Paired:
    """Compare two adapters on the tasks (any keys: a judge's verdicts too) both were scored on.

    Under "no difference" each discordant task is equally likely to go either way, so the
    number the new adapter lost is Binomial(discordant, 1/2); ``p_worse`` is the chance of
    losing at least that many.

    >>> p = paired({1: True, 2: False, 3: True, 4: True}, {1: True, 2: True, 3: False, 4: True})
    >>> p.worse, p.better, p.p_worse
    (1, 1, 0.75)
    >>> round(paired({i: i >= 10 for i in range(40)}, {i: True for i in range(40)}).p_worse, 5)
    0.00098
    """
    common = sorted(set(new) & set(ref))
    worse = sum(1 for t in common if ref[t] and not new[t])
    better = sum(1 for t in common if new[t] and not ref[t])
    p = sign_test(worse, worse + better)
    n = len(common)
    return Paired(n, sum(new[t] for t in common) / n if n else 0.0, sum(ref[t] for t in common) / n if n else 0.0,
                  worse, better, p)


def gate(new: Mapping[int, bool], refs: Mapping[str, Mapping[int, bool]], alpha: float,
         facts: tuple[Mapping[int, bool], Mapping[int, bool], int] | None = None,
         recall: tuple[Mapping[int, bool], Mapping[int, bool], float] | None = None,
         recall_alpha: float | None = None) -> tuple[bool, str, dict[str, Any]]:
    """Keep the new adapter unless, against any reference, it is worse beyond what the pairing
    calls noise (one-sided p < ``alpha``) or it loses more of the tasks than it wins (a tie
    keeps it); or, given ``facts`` = (base's outcomes, new's outcomes, most allowed lost), it
    answers wrong more facts the base model answered right than allowed; or, given ``recall`` =
    (the adapter in use's outcomes on tasks of the levels below, new's, a share), it loses more
    of those tasks than it wins by over that share of them (it forgot a level learnt before) and,
    given ``recall_alpha``, the loss is also significant by the same paired test (one-sided p <
    ``recall_alpha``): on a sample of 7 tasks a share of 0.1 allows none, so two tasks lost by
    chance would drop an adapter 20 points better on the round's level.
    Returns (keep, the reason in words, the numbers).

    Why "loses more than it wins" too: every round trains from the base on all the data so far,
    so dropping an adapter that is not better loses nothing, while keeping one that is worse but
    not *significantly* worse lets the adapter in use drift down round by round (seen: one that
    lost 9 dev tasks and won 3, p = 0.073, replaced a better one).

    >>> keep, why, _ = gate({1: True, 2: True}, {"base": {1: False, 2: True}}, 0.05); keep
    True
    >>> gate({i: i < 5 for i in range(30)}, {"best kept #3": {i: True for i in range(30)}}, 0.05)[0]
    False
    >>> lost9_won3 = {i: i >= 9 for i in range(12)}, {"best kept #1": {i: i < 9 for i in range(12)}}
    >>> keep, why, _ = gate(*lost9_won3, 0.05); keep, why.endswith("loses more than it wins against best kept #1: dropped")
    (False, True)
    >>> keep, why, _ = gate({1: True}, {"base": {1: True}}, 0.05, ({7: True, 8: True, 9: True}, {7: False, 8: False, 9: True}, 1))
    >>> keep, why.endswith("forgot 2 facts the base knew (allowed 1): dropped")
    (False, True)
    >>> lower_in_use, lower_new = {i: True for i in range(20)}, {i: i < 3 for i in range(20)}
    >>> keep, why, _ = gate({1: True}, {"base": {1: True}}, 0.05, None, (lower_in_use, lower_new, 0.1))
    >>> keep, why.endswith("forgot the levels below: lost 17 of 20 tasks, won 0 (net allowed 2): dropped")
    (False, True)
    >>> small_in_use, small_new = {i: True for i in range(7)}, {i: i >= 2 for i in range(7)}
    >>> gate({1: True}, {"base": {1: True}}, 0.05, None, (small_in_use, small_new, 0.1))[0]
    False
    >>> keep, why, _ = gate({1: True}, {"base": {1: True}}, 0.05, None, (small_in_use, small_new, 0.1), 0.05)
    >>> keep, "levels below 5/7 (in use 7), lost 2, won 0, p=0.250: not worse" in why
    (True, True)
    >>> gate({1: True}, {"base": {1: True}}, 0.05, None, (lower_in_use, lower_new, 0.1), 0.05)[0]
    False
    """
    comps = {label: paired(new, ref) for label, ref in refs.items()}
    worse = [label for label, c in comps.items() if c.p_worse < alpha]
    net_loss = [label for label, c in comps.items() if c.worse > c.better and label not in worse]
    parts = [f"{label} {c.ref_accuracy:.1%} (lost {c.worse}, won {c.better}, p={c.p_worse:.3f})"
             for label, c in comps.items()]
    head = f"dev {sum(new.values()) / len(new):.1%}" if new else "dev -"
    numbers: dict[str, Any] = {"alpha": alpha, "test": "exact one-sided McNemar",
                               "vs": {k: c.as_dict() for k, c in comps.items()}}
    reason = f"{head} vs {'; '.join(parts)}"
    forgot = 0
    if facts is not None:
        base_f, new_f, allowed = facts
        forgot = sum(1 for t, ok in base_f.items() if ok and not new_f.get(t, False))
        numbers["facts"] = {"n": len(new_f), "base": sum(base_f.values()), "new": sum(new_f.values()), "lost": forgot,
                            "lost_max": allowed}
        reason += f"; facts {sum(new_f.values())}/{len(new_f)} (base {sum(base_f.values())})"
        forgot = forgot if forgot > allowed else 0
    recall_net = 0
    if recall is not None:
        ref_r, new_r, share = recall
        c = paired(new_r, ref_r)  # the tasks both were scored on
        lost, won = c.worse, c.better
        recall_allowed = int(share * c.n)
        r = numbers["recall"] = {"n": c.n, "in_use": round(c.ref_accuracy * c.n), "new": round(c.new_accuracy * c.n),
                                 "lost": lost, "won": won, "net_allowed": recall_allowed}
        reason += f"; levels below {r['new']}/{r['n']} (in use {r['in_use']})"
        recall_net = lost - won if lost - won > recall_allowed else 0
        if recall_alpha is not None:
            r["p_worse"], r["alpha"] = c.p_worse, recall_alpha
            reason += f", lost {lost}, won {won}, p={c.p_worse:.3f}"
            recall_net = recall_net if c.p_worse < recall_alpha else 0
    keep = not worse and not net_loss and not forgot and not recall_net
    if worse:
        reason += f": worse than {', '.join(worse)} (p < {alpha:g}): dropped"
    elif net_loss:
        reason += f": loses more than it wins against {', '.join(net_loss)}: dropped"
    elif forgot:
        reason += f": forgot {forgot} facts the base knew (allowed {facts[2] if facts else 0}): dropped"
    elif recall_net:
        reason += (f": forgot the levels below: lost {r['lost']} of {r['n']} tasks, won {r['won']} "
                   f"(net allowed {r['net_allowed']}" + (f", p < {recall_alpha:g}" if recall_alpha is not None else "")
                   + "): dropped")
    else:
        reason += ": not worse, wins at least as many as it loses: kept"
    numbers["kept"] = keep
    return keep, reason, numbers


def control_answers(runtime: Runtime, prompts: Sequence[str], max_tokens: int = 48) -> list[str]:
    """Greedy answers of whatever adapter the runtime serves now to general ``prompts``."""
    from engine.runtime import Request, Sampling

    comps = runtime.submit_many([Request(messages=[{"role": "user", "content": p}],
                                         sampling=Sampling(temperature=0.0, max_tokens=max_tokens)) for p in prompts])
    return [c.result().text for c in comps]


def drift(base: Sequence[str], now: Sequence[str]) -> dict[str, float]:
    """How far answers to the control prompts moved from the base model's.

    ``similarity``: mean difflib ratio to the base answer (1.0: unchanged); ``identical``: share
    of answers equal to the base's; ``numeric_only``: share of answers with digits and no words,
    the way an over-trained arithmetic adapter answers everything.

    >>> drift(["Paris is the capital.", "Hi there"], ["Paris is the capital.", "42"])
    {'similarity': 0.5, 'identical': 0.5, 'numeric_only': 0.5}
    """
    import difflib
    import re

    pairs = list(zip(base, now, strict=True))
    if not pairs:
        return {"similarity": 1.0, "identical": 1.0, "numeric_only": 0.0}
    sim = sum(difflib.SequenceMatcher(None, a, b).ratio() for a, b in pairs) / len(pairs)
    same = sum(a == b for a, b in pairs) / len(pairs)
    numeric = sum(bool(re.search(r"\d", b)) and not re.search(r"[A-Za-z]{2,}", b) for _, b in pairs) / len(pairs)
    return {"similarity": round(sim, 4), "identical": same, "numeric_only": numeric}
