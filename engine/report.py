"""A run's curves, read from the store: what the console plots and ``swarm report`` draws.

Every series comes from rows the loop already writes; nothing here is measured anew.

- ``loss``: each training run's loss per step (``training_runs.loss_curve``), in order;
- ``dev``: per dev set, each round's new adapter as the gate scored it (accuracy and its 95%
  interval), and the base model's score on the same set as a reference;
- ``test``: per test set, every recorded score of an adapter (``swarm eval``, the improve
  benchmark) by round, base model apart. The loop never reads these;
- ``debate``: per round, how often the judge agreed with the verifier, its balanced accuracy, and
  the debate's gain (share right after critique and revision minus share right first);
- ``skills``: per skill and round, the dev pass rate of the adapter in use after that round (the
  round's own first answers where a round has no dev scores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from engine.store import Store

#: (round, accuracy, interval low, interval high)
Point = tuple[int, float, float, float]


@dataclass
class Curves:
    run_id: int
    loss: list[tuple[int, list[float]]] = field(default_factory=list)  # (round, loss per step)
    dev: dict[str, list[Point]] = field(default_factory=dict)
    dev_base: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    test: dict[str, list[Point]] = field(default_factory=dict)
    test_base: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    #: (round, judge agreement, judge balanced accuracy, debate gain); None where not measured
    debate: list[tuple[int, float | None, float | None, float | None]] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)  # the skills matrix's columns
    skills: dict[str, list[float | None]] = field(default_factory=dict)  # skill -> rate per round
    skills_source: str = "dev"

    def empty(self) -> bool:
        return not (self.loss or self.dev or self.test or self.debate or self.skills)


def _num(v: object) -> float | None:
    if v is None:
        return None
    f = float(v)  # type: ignore[arg-type]
    return None if f != f else f  # NaN: not measured


def curves(store: Store, run_id: int) -> Curves:
    """Read every curve of ``run_id`` (empty lists where nothing is recorded yet)."""
    q = store.execute
    out = Curves(run_id)
    for rnd, curve in q("select round, loss_curve from training_runs where run_id = ? and status = 'done' "
                        "and loss_curve is not null order by id", [run_id]):
        losses = json.loads(curve) if isinstance(curve, str) else curve
        if losses:
            out.loss.append((int(rnd), [float(x) for x in losses]))

    # dev: each round's candidate (the adapter trained that round), the base model apart
    for name, rnd, acc, lo, hi in q(
            "select e.eval_set, a.round, e.accuracy, e.ci_low, e.ci_high from evals e join adapters a "
            "on a.id = e.adapter_id where e.run_id = ? and e.pool = 'dev' order by a.round, e.id", [run_id]):
        series = out.dev.setdefault(str(name), [])
        series[:] = [p for p in series if p[0] != int(rnd)]  # the latest score of a round's adapter
        series.append((int(rnd), float(acc), float(lo), float(hi)))
    for pool, target in (("dev", out.dev_base), ("test", out.test_base)):
        for name, acc, lo, hi in q(f"select eval_set, accuracy, ci_low, ci_high from evals where run_id = ? and "
                                   f"pool = '{pool}' and adapter_id is null order by id", [run_id]):
            target[str(name)] = (float(acc), float(lo), float(hi))
    # test: the adapter scored at each round (the latest score per round and set)
    for name, rnd, acc, lo, hi in q(
            "select eval_set, round, accuracy, ci_low, ci_high from evals where run_id = ? and pool = 'test' "
            "and adapter_id is not null order by round, id", [run_id]):
        series = out.test.setdefault(str(name), [])
        series[:] = [p for p in series if p[0] != int(rnd)]
        series.append((int(rnd), float(acc), float(lo), float(hi)))

    for rnd, agree, bal, gain in q(
            "select round, (stats->>'judge_agreement')::double, (stats->>'judge_balanced_accuracy')::double, "
            "(stats->>'debate_gain')::double from rounds where run_id = ? and stats is not null order by round",
            [run_id]):
        out.debate.append((int(rnd), _num(agree), _num(bal), _num(gain)))

    rows = q("select source, round, skill, sum(passed) / sum(n) from skill_scores where run_id = ? and n > 0 "
             "group by all order by round, skill", [run_id])
    source = "dev" if any(r[0] == "dev" for r in rows) else "round"
    chosen = [(int(r), str(k), float(rate)) for src, r, k, rate in rows if src == source]
    out.skills_source = source
    out.rounds = sorted({r for r, _, _ in chosen})
    col = {r: i for i, r in enumerate(out.rounds)}
    for r, k, rate in chosen:
        out.skills.setdefault(k, [None] * len(out.rounds))[col[r]] = rate
    return out


__all__ = ["Curves", "curves"]
