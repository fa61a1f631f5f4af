"""Held-out scoring, its bootstrap interval, and the gate that keeps or drops a new adapter.

Scoring is greedy pass@1 through the batched runtime with the prompt the solvers use, checked
by the domain's verifier. The gate promotes a new adapter unless it is worse than the one in
use by more than the recipe's noise margin.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from engine.agents import request
from engine.recipes import AgentSpec, Recipe
from engine.rounds import TaskRow
from engine.runtime import Runtime
from engine.store import Store
from engine.tasks import get_domain
from engine.train.dataset import solve_messages


@dataclass(frozen=True)
class Score:
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float


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


def score(runtime: Runtime, recipe: Recipe, tasks: Sequence[TaskRow], seed: int = 0) -> tuple[Score, list[bool]]:
    """Greedy pass@1 of whatever adapter the runtime serves now."""
    domain = get_domain(recipe.task.domain)
    solver = recipe.agents_with("solver")[0]
    agent = AgentSpec(name="eval", role="solver", system=solver.system, temperature=0.0, max_tokens=solver.max_tokens)
    comps = []
    for tr in tasks:
        msgs = solve_messages(recipe, tr.task.prompt)
        req = request(agent, msgs[-1]["content"], 0, greedy=True)
        comps.append(runtime.submit(req))
    outcomes = [domain.verify(tr.task, c.result().text).correct for tr, c in zip(tasks, comps)]
    lo, hi = bootstrap_ci(outcomes, recipe.eval.bootstrap, seed)
    k = sum(outcomes)
    return Score(len(outcomes), k, k / len(outcomes) if outcomes else 0.0, lo, hi), outcomes


def stored_score(store: Store, run_id: int, adapter_id: int | None, eval_set: str) -> Score | None:
    """The score already recorded for this adapter (None: the base model) on ``eval_set``, if any.
    Greedy scoring is deterministic, so a recorded score is reused instead of measured again."""
    row = store.execute(
        "select n, correct, accuracy, ci_low, ci_high from evals where run_id = ? and adapter_id is not distinct from ? "
        "and eval_set = ? order by id desc limit 1", [run_id, adapter_id, eval_set])
    if not row:
        return None
    n, correct, acc, lo, hi = row[0]
    return Score(int(n), int(correct), float(acc), float(lo), float(hi))


def gate(new: float, current: float, margin: float) -> tuple[bool, str]:
    """Promote unless the new adapter is worse beyond the noise margin.

    >>> gate(0.60, 0.62, 0.05)[0], gate(0.50, 0.62, 0.05)[0]
    (True, False)
    """
    if new >= current - margin:
        return True, f"held-out {new:.1%} vs {current:.1%} in use (margin {margin:.1%}): not worse"
    return False, f"held-out {new:.1%} vs {current:.1%} in use: worse by more than {margin:.1%}"


def control_answers(runtime: Runtime, prompts: Sequence[str], max_tokens: int = 48) -> list[str]:
    """Greedy answers of whatever adapter the runtime serves now to general ``prompts``."""
    from engine.runtime import Request, Sampling

    comps = [runtime.submit(Request(messages=[{"role": "user", "content": p}],
                                    sampling=Sampling(temperature=0.0, max_tokens=max_tokens))) for p in prompts]
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
