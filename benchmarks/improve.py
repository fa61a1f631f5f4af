"""Self-improvement, measured where the loop cannot have chosen it: test-set pass@1 per level,
for the base model and after every round (or every K-th and the last: ``measure_every``; a
measurement costs about as much as a round), over several seeds.

Each seed is its own run of the recipe (its own pools, its own rounds, a fresh model process
state) played in full: propose ... train, evaluate, gate. After every round the adapter the
run has in use is scored greedily on the run's **test** sets for the chosen levels (never read
by the loop) and, beside them, on its **dev** sets (what the gate and the curriculum read), so
the gap between the two shows the selection bias. Scores the gate already measured on dev are
read from the store, not recomputed. Also per round: training-set size, the judge's agreement
with the verifier, the round's wall time, and the drift of answers to general control prompts
from the base model's.

Results: ``seeds``; ``test`` and ``dev``: set name -> ``{"base": {mean, min, max}, "final":
{mean, min, max}}`` (fractions); ``debate``: the debate as a protocol on the test sets (all levels
pooled; ``engine.protocol``): ``gain_final``, ``judge_balanced_accuracy_final``,
``right_to_wrong_final`` (and first, final, wrong_to_right), each {mean, min, max} over seeds,
with per-round curves; the debate's answer is the judge's pick (round.debate_answer), and
``revised_*`` (gain, right_to_wrong, wrong_to_right, final) are the revisions' own figures; with a
computing judge, ``judge_result_*`` is the share of its own (greedy) results that are right and ``three_way_*``
the answer if its result stood where it disagrees with both; ``per_seed``: every seed's per-round curves.
This is the number the project lives by; it is reported as measured, flat or not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import recipe_variant, results_dir, served_weights, shared_cache, table, versions, write_results

LEVELS = (1, 2, 3, 9)  # 9: the mixed set (+, -, x; up to 3 terms; up to 2 digits; before 2026-12-06: 3 terms, 2 digits)
QUICK = {"task": {"generated": 12, "proposed": 2}, "eval": {"dev": 30, "test": 30}, "train": {"steps": 12}}
N_SEEDS = 3


def play_seed(seed: int, recipe_path: Path, n_rounds: int, levels: tuple[int, ...], log: Any = print,
              on_round: Callable[[dict[str, Any]], None] | None = None, measure_every: int = 1,
              test_only: bool = False, home: Path | None = None) -> dict[str, Any]:
    """One run of the recipe with this seed: base and per-round test/dev scores (after every
    ``measure_every``-th round and the last; a round between has ``"test": None``). ``on_round``
    is given the seed's results so far (marked ``"partial": True``) after each round, so that a
    long run stopped early keeps what it measured. ``test_only``: the test sets and facts alone,
    no dev sets and no debate on them (``"dev"`` and ``"debate"`` read None), about a third of
    the measuring time. ``home``: the run's data dir, kept when the seed is done (its store and
    adapters, for the console or a probe); by default a temporary one, removed."""
    from engine.api import Engine
    from engine.evaluate import control_answers, drift, record_score, score, stored_score
    from engine.events import PhaseFinished
    from engine.pools import fact_set, pool_tasks, set_name
    from engine.protocol import DebateScore, debate_score, record_debate, stored_debate
    from engine.roles import adapters_key, falls_back, roles_in_use, server
    from engine.tasks.facts import SET_NAMES as FACT_SETS
    from engine.tasks import get_domain
    from engine.train.replay import CONTROL_PROMPTS

    phases: dict[str, float] = {}

    def on_event(e: object) -> None:
        if isinstance(e, PhaseFinished):
            phases[e.phase] = phases.get(e.phase, 0.0) + e.seconds

    with tempfile.TemporaryDirectory() if home is None else contextlib.nullcontext() as d:
        eng = Engine.open(home or Path(d) / "home")
        try:
            eng.subscribe(on_event)
            run_id = eng.create_run(str(recipe_path), rounds=n_rounds, train=True, seed=seed)
            info = eng.run_info(run_id)
            rec, q = info.recipe, eng.store.execute
            domain = get_domain(rec.task.domain)
            pools = ("test",) if test_only else ("test", "dev")
            sets: dict[tuple[str, int | str], Any] = {
                (pool, lvl): pool_tasks(eng.store, run_id, pool, lvl) for pool in pools for lvl in levels}
            sets.update({(pool, "facts"): fact_set(eng.store, run_id, pool) for pool in pools})
            rt = eng.runtime_for(rec, run_id)
            weights = served_weights(eng.store, run_id)
            measured: dict[Any, dict[str, Any]] = {}

            def measure(adapter_id: int | None, adapter_path: str | None, rnd: int,
                        roles: dict[str, Any] | None = None) -> dict[str, Any]:
                """pass@1 of ``adapter_id`` (the solver's); the debate with each role under its own
                adapter when ``roles`` differ (per-role adapters), else all under ``adapter_id``."""
                roles_key = adapters_key(roles)
                if (adapter_id, roles_key) in measured:
                    return measured[adapter_id, roles_key]
                by_role = server(rt, roles) if roles and roles_key else None

                def serve() -> None:
                    if not rt.serves(adapter_path):
                        rt.set_adapter(adapter_path).result()

                out: dict[str, Any] = {"test": {}, "dev": None if test_only else {}, "debate": None if test_only else {}}
                outcomes: dict[tuple[str, int], bool] = {}  # (level, task id) -> right, the test sets pooled
                out["outcomes"] = outcomes
                debates: list[DebateScore] = []
                for (pool, lvl), tasks in sets.items():
                    name = FACT_SETS[pool] if lvl == "facts" else set_name(pool, int(lvl))
                    sc = stored_score(eng.store, run_id, adapter_id, name)
                    texts = None
                    if sc is None:
                        serve()
                        sc, texts = score(rt, rec, tasks, seed=info.seed)
                        with eng.store.transaction():
                            record_score(eng.store, run_id, rnd, adapter_id, name, pool, sc, texts)
                    out[pool][str(lvl)] = {"n": sc.n, "correct": sc.correct, "accuracy": sc.accuracy,
                                           "ci": [sc.ci_low, sc.ci_high]}
                    if pool == "test" and lvl != "facts" and not test_only:  # the debate, on test sets only
                        deb = stored_debate(eng.store, run_id, adapter_id, name, roles_key)
                        if deb is None:
                            serve()
                            deb = debate_score(rt, rec, tasks, texts, serve=by_role)
                            with eng.store.transaction():
                                record_debate(eng.store, run_id, rnd, adapter_id, name, pool, deb, roles_key)
                        out["debate"][str(lvl)] = deb.summary()
                        debates.append(deb)
                    if pool == "test" and lvl != "facts":
                        outcomes.update({(str(lvl), tid): ok for tid, ok in sc.outcomes.items()})
                if not test_only:
                    out["debate"]["all"] = sum(debates, DebateScore(0, 0, 0, 0, 0)).summary()  # every level pooled
                serve()
                out["control_answers"] = control_answers(rt, CONTROL_PROMPTS)
                out["key"] = [adapter_id, roles_key]
                measured[adapter_id, roles_key] = out
                return out

            def result() -> dict[str, Any]:
                final = measured[tuple(last(per_round)["measure_key"])] if any(
                    pr["test"] is not None for pr in per_round) else None
                return {"seed": seed, "run_id": run_id, **({"home": str(home)} if home is not None else {}),
                        "weights": weights,
                        "level_names": {str(lvl): domain.level_name(lvl) for lvl in levels},
                        "base": {"test": base["test"], "dev": base["dev"], "debate": base["debate"],
                                 "seconds": base_seconds, "control_answers": base["control_answers"]},
                        "per_round": list(per_round), "level_ups": level_ups([pr["difficulty"] for pr in per_round]),
                        "final_control_answers": final["control_answers"] if final else None,
                        "paired": paired_counts(base["outcomes"], final["outcomes"]) if final else None,
                        "minutes": (time.perf_counter() - loop_start) / 60}

            t0 = time.perf_counter()
            base = measure(None, None, 0)
            base_seconds = time.perf_counter() - t0
            per_round: list[dict[str, Any]] = []
            loop_start = time.perf_counter()
            for r in range(n_rounds):
                phases.clear()
                t0 = time.perf_counter()
                status = eng.play(run_id, rounds=r + 1)
                played = time.perf_counter() - t0
                if status != "finished":
                    raise RuntimeError(f"seed {seed} round {r} ended {status}")
                difficulty, stats, mix, why, dev_score = q(
                    "select difficulty, stats, mix, curriculum, dev_score from rounds where run_id = ? and round = ?",
                    [run_id, r])[0]
                stats = json.loads(stats) if isinstance(stats, str) else (stats or {})
                trained = q("select n_examples, backend, seconds, status, error from training_runs "
                            "where run_id = ? and round = ? and coalesce(role, 'solver') = 'solver' order by id desc limit 1", [run_id, r])
                new = q("select id, promoted, decision, export_cosine, sha256 from adapters where run_id = ? and round = ? "
                        "and coalesce(role, 'solver') = 'solver' order by id desc limit 1", [run_id, r])
                roles = roles_in_use(eng.store, run_id, falls_back(rec))
                cur_id, cur_path, _sha = roles["solver"]
                measuring = (r + 1) % measure_every == 0 or r + 1 == n_rounds
                m = measure(cur_id, cur_path, r, roles) if measuring else {
                    "key": None, "test": None, "dev": None, "debate": None}
                decided = q("select role, id, promoted, decision from adapters where run_id = ? and round = ? "
                            "and role is not null order by id", [run_id, r])
                per_round.append({
                    "round": r, "difficulty": int(difficulty), "seconds": played,
                    "curriculum": {"mix": json.loads(mix) if mix else None, "reason": why, "dev_score": dev_score},
                    "elapsed_minutes": (time.perf_counter() - loop_start) / 60, "phases": dict(phases),
                    "accepted": stats.get("accepted"), "rejected": stats.get("rejected"),
                    "solve_rate_first": stats.get("solve_rate_first"), "solve_rate_final": stats.get("solve_rate_final"),
                    "judge_agreement": stats.get("judge_agreement"),
                    "round_debate": {k: stats.get(k) for k in ("debate_gain", "right_to_wrong", "wrong_to_right",
                                                               "judge_balanced_accuracy")},
                    "hints": {k: stats.get(k) for k in ("hint_critiques", "hint_critiques_passed", "rationales",
                                                        "rationales_passed")},
                    "examples_by_role": dict(q("select coalesce(role, 'replay'), count(*) from examples where run_id = ? "
                                               "group by all order by all", [run_id])),
                    "training": dict(zip(("examples", "backend", "seconds", "status", "error"), trained[0])) if trained else None,
                    "new_adapter": dict(zip(("id", "promoted", "decision", "export_cosine", "sha256"), new[0])) if new else None,
                    "adapter_in_use": cur_id,
                    "adapters_in_use": {role: a[0] for role, a in roles.items()},
                    "role_adapters": [dict(zip(("role", "id", "promoted", "decision"), d)) for d in decided],
                    "measure_key": m["key"], "test": m["test"], "dev": m["dev"], "debate": m["debate"],
                    "control_drift": drift(base["control_answers"], m["control_answers"]) if measuring else None,
                })
                log(f"  seed {seed} round {r}: level {difficulty}, adapter {cur_id or 'base'}, " + (
                    ", ".join(f"test-{k} {v['accuracy']:.0%}" for k, v in m["test"].items() if k != "facts")
                    + f", facts {m['test']['facts']['correct']}/{m['test']['facts']['n']}"
                    + (f", debate {_pts(m['debate']['all']['gain'])} judge {_pct(m['debate']['all']['judge_balanced_accuracy'])}"
                       if m["debate"] else "")
                    if measuring else "not measured") + f" ({played:.0f} s)")
                if on_round is not None and r + 1 < n_rounds:
                    on_round({**result(), "partial": True})
            return result()
        finally:
            eng.close()


def level_ups(levels: list[int]) -> int:
    """How many rounds played a main level higher than every round before: the climbs to a new
    level. A return to a level after a step down is not one (the curriculum steps down when the
    dev score stays low or a level's data runs out; counting the way back up would count the same
    climb twice).

    >>> level_ups([2, 2, 3, 3, 2, 3, 4])
    2
    >>> level_ups([2, 2, 1, 2, 2, 3])
    1
    """
    ups, top = 0, levels[0] if levels else 0
    for lvl in levels[1:]:
        if lvl > top:
            ups, top = ups + 1, lvl
    return ups


def last(per_round: list[dict[str, Any]], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A seed's last measured round (``base``, the base model's measurement, before any).

    >>> last([{"round": 0, "test": {}}, {"round": 1, "test": None}])["round"]
    0
    >>> last([{"round": 0, "test": None}], {"round": "base"})["round"]
    'base'
    """
    done = [pr for pr in per_round if pr["test"] is not None]
    if done:
        return done[-1]
    if base is None:
        raise ValueError("no round measured")
    return base


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _pts(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.0f}"


#: The phases a round plays for the debate: critiques and revisions, the judge, hint-guided critiques.
DEBATE_PHASES = ("debate", "judge", "hint")


def debate_time(per_seed: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the debate's phases (``DEBATE_PHASES``) cost the rounds, measured in the same rounds:
    per seed, their seconds over all its rounds against the seconds of every other phase
    (``added``: how much longer a round is than the same round without them) and as a share of the
    rounds (``share``); {mean, min, max} over seeds. None when no round recorded its phases.

    >>> r = debate_time([{"seed": 7, "per_round": [{"phases": {"solve": 60, "train": 30, "debate": 6, "judge": 3}},
    ...                                            {"phases": {"solve": 50, "train": 40, "debate": 9}}]}])
    >>> r["added"]["mean"], round(r["share"]["mean"], 4), r["per_seed"]["7"]["debate_seconds"]
    (0.1, 0.0909, 18.0)
    """
    rows = {}
    for s in per_seed:
        phases = [pr.get("phases") or {} for pr in s["per_round"]]
        debate = float(sum(v for ph in phases for k, v in ph.items() if k in DEBATE_PHASES))
        other = float(sum(v for ph in phases for k, v in ph.items() if k not in DEBATE_PHASES))
        if other > 0:
            rows[str(s["seed"])] = {"debate_seconds": debate, "other_seconds": other, "added": debate / other,
                                    "share": debate / (debate + other)}
    if not rows:
        return None
    return {"phases": list(DEBATE_PHASES), "added": spread([r["added"] for r in rows.values()]),
            "share": spread([r["share"] for r in rows.values()]), "per_seed": rows}


def debate_summary(per_seed: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The debate protocol on the test sets (all levels pooled): final-round figures over seeds
    and every seed's per-round curves (index 0: the base model; None where a round's debate was not
    measured). None when a seed measured no debate at its last measurement (``test_only``)."""
    if any(last(s["per_round"], s["base"])["debate"] is None for s in per_seed):
        return None
    keys = {"gain": "gain", "judge_balanced_accuracy": "judge_balanced_accuracy", "right_to_wrong": "right_to_wrong",
            "wrong_to_right": "wrong_to_right", "first": "first", "final": "final"}
    out: dict[str, Any] = {}
    for key, src in keys.items():
        finals = [last(s["per_round"], s["base"])["debate"]["all"][src] for s in per_seed]
        present = [v for v in finals if v is not None]
        out[f"{key}_final"] = spread(present) if present else None
        out[f"{key}_curves"] = {str(s["seed"]): [
            r["debate"]["all"][src] if r["debate"] else None for r in [s["base"], *s["per_round"]]] for s in per_seed}
    # The revisions alone (what the debate's answer would be if the revision stood whatever the
    # judge said): absent from results written before the debate's answer was the judge's pick.
    # A computing judge's own results, and the three-way pick (its result where it disagrees with
    # both answers): absent without round.judging = "compute".
    for group, key in [*(("revised", k) for k in ("gain", "right_to_wrong", "wrong_to_right", "final")),
                       *(("three_way", k) for k in ("gain", "right_to_wrong", "wrong_to_right", "final")),
                       ("judge_result", None)]:
        def get(m: dict[str, Any], group: str = group, key: str | None = key) -> float | None:
            if m["debate"] is None:  # a round not measured
                return None
            v = m["debate"]["all"].get(group)
            return v if key is None else (v or {}).get(key)

        name = group if key is None else f"{group}_{key}"
        finals = [get(last(s["per_round"], s["base"])) for s in per_seed]
        present = [v for v in finals if v is not None]
        out[f"{name}_final"] = spread(present) if present else None
        out[f"{name}_curves"] = {str(s["seed"]): [get(s["base"])] + [get(r) for r in s["per_round"]]
                                 for s in per_seed}
    out["n"] = last(per_seed[0]["per_round"], per_seed[0]["base"])["debate"]["all"]["n"]
    return out


def with_debate(result: dict[str, Any], probes: list[dict[str, Any]]) -> dict[str, Any]:
    """A test-only result (``test_only``: no debate measured) with the debate filled in from
    ``benchmarks/probes/debate_rounds.py`` results on its seeds' kept stores: the same protocol on
    the same test sets, played on the adapter in use after a round. Every round (and the base
    model) takes the reading of the adapter it had in use (``adapter_in_use``), so a round that
    kept the adapter before takes that adapter's reading; a round no probe read stays None. Each
    probe must name a seed of the result and play the recipe as stored (no ``settings``); the
    seed's last round must have been read. The summary is made again (``report``), and
    ``debate_from`` names the probes.

    >>> one = {"all": {"n": 4, "gain": 0.25}, "1": {"n": 4, "gain": 0.25}}
    >>> probe = {"benchmark": "p", "seed": 7, "settings": "", "rounds": {"1": {"adapter": 2, "all": one["all"],
    ...          "levels": {"1": one["1"]}}}}
    >>> per_round = [{"round": 0, "adapter_in_use": 1}, {"round": 1, "adapter_in_use": 2},
    ...              {"round": 2, "adapter_in_use": 2}]
    >>> _fill_debate({"seed": 7, "base": {}, "per_round": per_round}, [probe])
    >>> [pr["debate"] and pr["debate"]["all"]["gain"] for pr in per_round]
    [None, 0.25, 0.25]
    >>> _fill_debate({"seed": 8, "base": {}, "per_round": per_round}, [probe])
    Traceback (most recent call last):
    ValueError: no probe read seed 8's last round (round 2, adapter 2)
    """
    for probe in probes:
        if probe.get("settings"):
            raise ValueError(f"{probe['benchmark']} played other settings ({probe['settings']}): not the run's debate")
        if probe["seed"] not in result["seeds"]:
            raise ValueError(f"{probe['benchmark']} read seed {probe['seed']}, not one of {result['seeds']}")
    per_seed = json.loads(json.dumps(result["per_seed"]))
    for s in per_seed:
        _fill_debate(s, probes)
    out = report(per_seed, quick=result["quick"], n_rounds=result["rounds"], recipe=result["recipe"],
                 overrides=result["overrides"], levels=tuple(result["levels"]), minutes=result["minutes"],
                 versions=result["versions"], measure_every=result.get("measure_every", 1))
    out["debate_from"] = [p["benchmark"] for p in probes]
    return out


def _fill_debate(s: dict[str, Any], probes: list[dict[str, Any]]) -> None:
    """One seed's rounds' (and base's) ``debate`` read off the probes of that seed, by adapter."""
    by_adapter: dict[Any, dict[str, Any]] = {}
    for probe in (p for p in probes if p["seed"] == s["seed"]):
        for rnd, r in probe["rounds"].items():
            key = "base" if rnd == "base" or r["adapter"] is None else r["adapter"]
            by_adapter[key] = {**{str(lvl): v for lvl, v in r["levels"].items()}, "all": r["all"]}
    s["base"]["debate"] = by_adapter.get("base")
    for pr in s["per_round"]:
        pr["debate"] = by_adapter.get("base" if pr["adapter_in_use"] is None else pr["adapter_in_use"])
    end = s["per_round"][-1]
    if end["debate"] is None:
        raise ValueError(f"no probe read seed {s['seed']}'s last round (round {end['round']}, "
                         f"adapter {end['adapter_in_use']})")


def paired_counts(base: dict[Any, bool], final: dict[Any, bool]) -> dict[str, int]:
    """How a seed's test tasks (every level's pooled) went under the base model and at its last
    measurement: right under both, under the base only, at the end only, under neither.

    >>> paired_counts({1: True, 2: False, 3: True, 4: False}, {1: True, 2: True, 3: False, 4: False})
    {'n': 4, 'both': 1, 'base_only': 1, 'final_only': 1, 'neither': 1}
    """
    common = sorted(set(base) & set(final))
    pairs = [(base[k], final[k]) for k in common]
    return {"n": len(pairs), "both": pairs.count((True, True)), "base_only": pairs.count((True, False)),
            "final_only": pairs.count((False, True)), "neither": pairs.count((False, False))}


def pooled_gain(per_seed: list[dict[str, int] | None], resamples: int = 4000, seed: int = 0) -> dict[str, Any] | None:
    """The test sets' gain over the base model with every seed's tasks pooled (all levels; not the
    facts): accuracy at the last measurement minus under the base model, and its 95% paired
    bootstrap interval (each seed's tasks resampled with their two outcomes, so a task that was
    right before and after adds nothing to the spread), and ``p_better``, the exact one-sided sign
    test's p-value for "no better than the base model" on the tasks that changed (with few changes
    the bootstrap interval is too narrow: 4 tasks won and none lost leave it above 0 at p 0.0625).
    None where a seed has no pairs (results written before they were kept, or no round measured).

    >>> g = pooled_gain([{"n": 100, "both": 40, "base_only": 2, "final_only": 30, "neither": 28}])
    >>> g["base"], g["final"], round(g["gain"], 2), g["ci"][0] > 0.15, g["ci"][1] < 0.4
    (0.42, 0.7, 0.28, True, True)
    >>> pooled_gain([{"n": 10, "both": 5, "base_only": 0, "final_only": 0, "neither": 5}])["ci"]
    [0.0, 0.0]
    >>> pooled_gain([None]) is None
    True
    """
    import numpy as np

    from engine.evaluate import sign_test

    if not per_seed or any(c is None or not c["n"] for c in per_seed):
        return None
    seeds = [c for c in per_seed if c is not None]
    kinds = ("both", "base_only", "final_only", "neither")
    n = sum(c["n"] for c in seeds)
    rng = np.random.default_rng(seed)
    diffs = np.zeros(resamples)
    for c in seeds:
        p = np.array([c[k] for k in kinds], dtype=float) / c["n"]
        draws = rng.multinomial(c["n"], p, size=resamples)
        diffs += draws[:, 2] - draws[:, 1]
    diffs /= n
    base = sum(c["both"] + c["base_only"] for c in seeds) / n
    final = sum(c["both"] + c["final_only"] for c in seeds) / n
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    worse, better = sum(c["base_only"] for c in seeds), sum(c["final_only"] for c in seeds)
    return {"n": n, "base": base, "final": final, "gain": final - base, "ci": [float(lo), float(hi)],
            "worse": worse, "better": better, "p_better": sign_test(better, worse + better)}


def spread(values: list[float]) -> dict[str, float]:
    """{mean, min, max} of per-seed figures.

    >>> spread([0.25, 0.5, 0.75])
    {'mean': 0.5, 'min': 0.25, 'max': 0.75}
    """
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def n_span(entry: dict[str, Any]) -> str:
    """A summarised set's size as the table prints it: one number, or min-max where seeds' sets
    differ in size (results written before ``n_per_seed``: the first seed's).

    >>> n_span({"n": 20, "n_per_seed": {"11": 20, "12": 19}}), n_span({"n": 100, "n_per_seed": {"7": 100}}), n_span({"n": 5})
    ('19-20', '100', '5')
    """
    ns = list((entry.get("n_per_seed") or {}).values()) or [entry["n"]]
    return str(ns[0]) if min(ns) == max(ns) else f"{min(ns)}-{max(ns)}"


def summarise(per_seed: list[dict[str, Any]], levels: tuple[int, ...]) -> dict[str, Any]:
    """Set name -> base and final {mean, min, max} over seeds, for the test and dev pools (dev:
    None when a seed measured the test sets only); the facts kept; ``test_gain``, every test task
    pooled (``pooled_gain``)."""
    out: dict[str, Any] = {"dev": None, "control_dev": None}
    names = per_seed[0]["level_names"]
    pools = ("test",) if any(s["base"]["dev"] is None for s in per_seed) else ("test", "dev")
    for pool in pools:
        out[pool] = {}
        for lvl in levels:
            key = f"{pool}-{lvl} ({names[str(lvl)]})"
            base = [s["base"][pool][str(lvl)]["accuracy"] for s in per_seed]
            final = [last(s["per_round"], s["base"])[pool][str(lvl)]["accuracy"] for s in per_seed]
            curves = [[s["base"][pool][str(lvl)]["accuracy"]] + [r[pool][str(lvl)]["accuracy"] if r[pool] else None
                                                                 for r in s["per_round"]] for s in per_seed]
            # Sets drawn per seed may differ in size (python: whole families held out): "n" is the
            # first seed's, "n_per_seed" each one's.
            out[pool][key] = {"base": spread(base), "final": spread(final), "n": per_seed[0]["base"][pool][str(lvl)]["n"],
                              "n_per_seed": {str(s["seed"]): s["base"][pool][str(lvl)]["n"] for s in per_seed},
                              "curves": {str(s["seed"]): c for s, c in zip(per_seed, curves)}}
    # General facts answered right, of the 16 in each half (test: reported; dev: the gate's)
    for pool in pools:
        base = [float(s["base"][pool]["facts"]["correct"]) for s in per_seed]
        final = [float(last(s["per_round"], s["base"])[pool]["facts"]["correct"]) for s in per_seed]
        out["control" if pool == "test" else "control_dev"] = {
            "n": per_seed[0]["base"][pool]["facts"]["n"], "base": spread(base), "final": spread(final),
            "curves": {str(s["seed"]): [s["base"][pool]["facts"]["correct"]] + [
                r[pool]["facts"]["correct"] if r[pool] else None for r in s["per_round"]] for s in per_seed}}
    out["test_gain"] = pooled_gain([s.get("paired") for s in per_seed])
    return out


#: Settings added after digests were recorded, with the value that plays as the recipe did before
#: each existed: left out of the digest at that value, so that a recorded run still matches.
ADDED_LATER: dict[tuple[str, str], Any] = {("round", "critique"): "text", ("round", "judge_check"): "none",
                                            ("round", "step_check"): "task", ("round", "step_operands"): "any",
                                            ("task", "shorter"): 0.0, ("task", "ahead_top"): None,
                                            ("round", "unsolved_samples"): None, ("eval", "recall_test"): "share",
                                            ("round", "step_spaced"): False, ("round", "step_plan"): False,
                                            ("round", "step_columns"): False, ("train", "focus_steps"): 0.0,
                                            ("train", "replay_facts"): False}


def recipe_digest(recipe: Any) -> str:
    """The sha256 of a recipe's settings, its name and description left out: two files that hold the
    same settings (a recipe renamed, or made the default) play the same benchmark. A setting added
    since (``ADDED_LATER``) counts only where it is not at its old behaviour's value."""
    data = recipe.model_dump(mode="json")
    for key in ("name", "description"):
        data.pop(key)
    for (section, key), before in ADDED_LATER.items():
        if data.get(section, {}).get(key, before) == before:
            data.get(section, {}).pop(key, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def results_name(recipe: str) -> str:
    """The results file's name: ``improve`` for the default recipe, ``improve-NAME`` for another, so
    measuring the python recipe does not overwrite the default's figures.

    >>> results_name("default"), results_name("python"), results_name("recipes/python.toml")
    ('improve', 'improve-python', 'improve-python')
    """
    stem = Path(recipe).stem
    return "improve" if stem == "default" else f"improve-{stem}"


def run(quick: bool = False, rounds: int | None = None, recipe: str = "default", overrides: dict[str, Any] | None = None,
        levels: tuple[int, ...] = LEVELS, write: bool = True, seeds: list[int] | None = None,
        name: str | None = None, measure_every: int = 1, test_only: bool = False,
        keep: str | Path | None = None) -> dict[str, Any]:
    """Play each seed for ``rounds`` rounds and report, measuring the test sets after every
    ``measure_every``-th round and the last (1: every round). With ``write``, the results go to
    ``name`` (default: ``results_name(recipe)``) at the end, and after every round until then to
    ``NAME-partial`` (the seeds so far, the last one marked ``"partial": true``; removed when the
    whole run is written), so that a run stopped early keeps every round it measured. ``test_only``:
    measure the test sets and facts alone (no dev sets, no debate): the issue-13 scoreboard at about
    a third of the measuring time. ``keep``: a folder in which each seed's data dir is kept
    (``KEEP/seed-S``: its store and adapters, to open in the console with ``swarm --home`` or to
    replay with a probe such as ``benchmarks/probes/debate_rounds.py``); a seed's folder must not
    hold anything yet."""
    from engine.recipes import load_recipe

    if measure_every < 1:
        raise ValueError(f"measure_every must be at least 1 (got {measure_every})")
    n_rounds = rounds or (2 if quick else 8)
    shrink = overrides if overrides is not None else (QUICK if quick else {})
    t_start = time.perf_counter()
    with shared_cache():
        with tempfile.TemporaryDirectory() as d:
            path = recipe_variant(recipe, Path(d), shrink)
            rec = load_recipe(str(path))[0]
            digest = recipe_digest(rec)
            base_seed = rec.seed
            levels = tuple(lvl for lvl in levels if lvl <= rec.task.max_difficulty)  # python: no level 9
            seeds = seeds or [base_seed + i for i in range(N_SEEDS)]
            homes = {} if keep is None else {s: Path(keep).resolve() / f"seed-{s}" for s in seeds}
            for h in homes.values():
                if h.exists() and any(h.iterdir()):  # checked for every seed before the first plays
                    raise ValueError(f"{h} is not empty: a kept run is never overwritten (choose another folder)")
            name = name or results_name(recipe)
            used = versions("llama-cpp-python", "torch", "unsloth", "peft", "transformers")
            per_seed: list[dict[str, Any]] = []

            def so_far(seed_run: dict[str, Any] | None = None) -> None:
                runs = per_seed if seed_run is None else [*per_seed, {**seed_run, "recipe_sha256": digest}]
                data = report(runs, quick=quick, n_rounds=n_rounds, recipe=recipe, overrides=shrink,
                              levels=levels, minutes=(time.perf_counter() - t_start) / 60, versions=used, echo=False,
                              measure_every=measure_every)
                write_results(f"{name}-partial", {**data, "partial": True,
                                                  "rounds_played": {str(s["seed"]): len(s["per_round"]) for s in runs}})

            for seed in seeds:
                print(f"seed {seed}: {n_rounds} round(s)")
                per_seed.append({**play_seed(seed, path, n_rounds, levels, on_round=so_far if write else None,
                                             measure_every=measure_every, test_only=test_only, home=homes.get(seed)),
                                  "recipe_sha256": digest})
                if write and seed != seeds[-1]:
                    so_far()
    minutes = (time.perf_counter() - t_start) / 60
    data = report(per_seed, quick=quick, n_rounds=n_rounds, recipe=recipe, overrides=shrink, levels=levels,
                  minutes=minutes, versions=used, measure_every=measure_every)
    if write:
        print(f"wrote {write_results(name, data)}")
        (results_dir() / f"{name}-partial.json").unlink(missing_ok=True)
    return data


def report(per_seed: list[dict[str, Any]], *, quick: bool, n_rounds: int, recipe: str, overrides: dict[str, Any],
           levels: tuple[int, ...], minutes: float, versions: dict[str, Any], echo: bool = True,
           measure_every: int = 1) -> dict[str, Any]:
    """Print every seed's rounds and the summary over seeds (not when ``echo`` is false); the
    results' data (``versions``: of the packages the seeds ran with)."""
    say: Callable[..., None] = print if echo else (lambda *_a, **_k: None)
    seeds = [s["seed"] for s in per_seed]
    for s in per_seed:
        head = ["round", "level", "s", "examples", "judge agrees", "adapter"] + \
            [f"test-{lvl}" for lvl in levels] + [f"dev-{lvl}" for lvl in levels] + \
            ["facts-test", "debate gain", "r->w", "judge bal.", "control sim"]

        def cells(m: dict[str, Any]) -> list[str]:
            if m["test"] is None:  # a round not measured
                return ["-"] * (2 * len(levels) + 4)
            d = m["debate"]["all"] if m["debate"] else {}
            return [f"{m['test'][str(lvl)]['accuracy']:.0%}" for lvl in levels] + \
                [f"{m['dev'][str(lvl)]['accuracy']:.0%}" if m["dev"] else "-" for lvl in levels] + \
                [f"{m['test']['facts']['correct']}/{m['test']['facts']['n']}", _pts(d.get("gain")),
                 _pct(d.get("right_to_wrong")), _pct(d.get("judge_balanced_accuracy"))]

        rows: list[list[Any]] = [["base", "-", s["base"]["seconds"], "-", "-", "-", *cells(s["base"]), 1.0]]
        for pr in s["per_round"]:
            ad = pr["new_adapter"]
            decision = "-" if ad is None else ("kept" if ad["promoted"] else "dropped")
            rows.append([pr["round"], pr["difficulty"], pr["seconds"], pr["training"]["examples"] if pr["training"] else 0,
                         f"{pr['judge_agreement']:.0%}" if pr["judge_agreement"] is not None else "-", decision,
                         *cells(pr), pr["control_drift"]["similarity"] if pr["control_drift"] else "-"])
        say(f"\nseed {s['seed']} ({s['minutes']:.1f} min)")
        say(table(head, rows))

    summary = summarise(per_seed, levels)
    debate = debate_summary(per_seed)
    rows = []
    for key, v in summary["test"].items():
        d = summary["dev"][key.replace("test-", "dev-", 1)] if summary["dev"] else None
        rows.append([key, n_span(v), f"{v['base']['mean']:.1%} [{v['base']['min']:.0%}, {v['base']['max']:.0%}]",
                     f"{v['final']['mean']:.1%} [{v['final']['min']:.0%}, {v['final']['max']:.0%}]",
                     f"{d['final']['mean']:.1%}" if d else "-",
                     f"{100 * (d['final']['mean'] - v['final']['mean']):+.1f}" if d else "-"])
    say(f"\n{len(seeds)} seeds, {n_rounds} rounds, {minutes:.1f} min; mean [min, max] over seeds")
    c = summary["control"]
    rows.append([f"facts-test (general facts, right of {c['n']})", c["n"],
                 f"{c['base']['mean']:.1f} [{c['base']['min']:.0f}, {c['base']['max']:.0f}]",
                 f"{c['final']['mean']:.1f} [{c['final']['min']:.0f}, {c['final']['max']:.0f}]",
                 f"{summary['control_dev']['final']['mean']:.1f}" if summary["control_dev"] else "-", "-"])
    say(table(["test set", "n", "base", f"after {n_rounds} rounds", "dev (gate's pool)", "dev - test points"], rows))

    gain = summary["test_gain"]
    if gain is not None:
        say(f"every test task pooled ({gain['n']}, all seeds and levels, not the facts): {gain['base']:.1%} -> "
            f"{gain['final']:.1%}, gain {100 * gain['gain']:+.1f} points, 95% paired interval "
            f"[{100 * gain['ci'][0]:+.1f}, {100 * gain['ci'][1]:+.1f}] ({gain['better']} tasks won, {gain['worse']} lost; "
            f"sign test p = {gain['p_better']:.3g})")

    def span(v: dict[str, float] | None, fmt: str) -> str:
        return "-" if v is None else f"{v['mean']:{fmt}} [{v['min']:{fmt}}, {v['max']:{fmt}}]"

    if debate is None:
        say("\nthe debate: not measured (test sets only)")
    else:
        say(f"\nthe debate on the test sets ({debate['n']} tasks, all levels), after {n_rounds} rounds; mean [min, max]")
        say(table(["first answers", "after debate", "gain", "right->wrong", "wrong->right", "judge balanced acc."],
                    [[span(debate["first_final"], ".1%"), span(debate["final_final"], ".1%"), span(debate["gain_final"], "+.1%"),
                      span(debate["right_to_wrong_final"], ".1%"), span(debate["wrong_to_right_final"], ".1%"),
                      span(debate["judge_balanced_accuracy_final"], ".1%")]]))
        if debate["revised_final_final"] is not None:
            say("the revisions alone (had each stood whatever the judge said): "
                  f"after revision {span(debate['revised_final_final'], '.1%')}, gain {span(debate['revised_gain_final'], '+.1%')}, "
                  f"right->wrong {span(debate['revised_right_to_wrong_final'], '.1%')}, "
                  f"wrong->right {span(debate['revised_wrong_to_right_final'], '.1%')}")
        if debate.get("three_way_final_final") is not None:
            say(f"the computing judge's own results: right {span(debate['judge_result_final'], '.1%')}; "
                  f"the three-way pick (its result where it disagrees with both): {span(debate['three_way_final_final'], '.1%')}, "
                  f"gain {span(debate['three_way_gain_final'], '+.1%')}, "
                  f"right->wrong {span(debate['three_way_right_to_wrong_final'], '.1%')}, "
                  f"wrong->right {span(debate['three_way_wrong_to_right_final'], '.1%')}")
    cost = debate_time(per_seed)
    if cost is not None:
        say(f"the debate's phases ({', '.join(cost['phases'])}): {span(cost['share'], '.1%')} of the rounds' time, "
            f"adding {span(cost['added'], '.1%')} to a round without them (same rounds)")
    for seed_run in per_seed:
        say(f"seed {seed_run['seed']}: levels " + " ".join(str(pr["difficulty"]) for pr in seed_run["per_round"])
              + f" ({seed_run['level_ups']} level-up(s))"
              + (f", served as {seed_run['weights']['type']}" if seed_run.get("weights") else ""))

    start = per_seed[0]["per_round"][0]["difficulty"] if per_seed[0]["per_round"] else levels[0]
    start = start if start in levels else levels[0]
    start_key = next(k for k in summary["test"] if k.startswith(f"test-{start} "))
    base_mean = summary["test"][start_key]["base"]["mean"]
    final_mean = summary["test"][start_key]["final"]["mean"]
    ratios = {
        "final_vs_base": final_mean / base_mean if base_mean > 0 else None,
        "final_minus_base_points": {k: round(100 * (v["final"]["mean"] - v["base"]["mean"]), 1)
                                    for k, v in summary["test"].items()},
    }
    return {"quick": quick, "rounds": n_rounds, "recipe": recipe, "overrides": overrides, "levels": list(levels),
            "measure_every": measure_every, "test_only": summary["dev"] is None,
            "seeds": seeds, "minutes": minutes, "ratio_set": start_key, "test": summary["test"], "dev": summary["dev"],
            "control": summary["control"], "control_dev": summary["control_dev"], "test_gain": summary["test_gain"],
            "debate": debate, "debate_time": cost,
            "level_ups": spread([float(s["level_ups"]) for s in per_seed]),
            "per_seed": per_seed, "ratios": ratios,
            "versions": versions}


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result over the seeds of several runs of the same benchmark (the same recipe,
    overrides, rounds, levels and package versions, different seeds), e.g. a 3-seed figure played
    in two sittings, its seeds in order; its minutes are their sum. A run that differs in any of those is refused,
    naming what. The same recipe: the same settings (every seed's ``recipe_sha256``) where each
    seed has them, a recipe renamed or made the default included; else the same name.

    >>> one = {"quick": False, "rounds": 8, "recipe": "default", "overrides": {}, "levels": [2], "versions": {},
    ...        "per_seed": [{"seed": 7}]}
    >>> merge([one, {**one, "rounds": 2, "per_seed": [{"seed": 8}]}])
    Traceback (most recent call last):
    ValueError: results differ in rounds (8 vs 2): not one benchmark
    >>> merge([one, one])
    Traceback (most recent call last):
    ValueError: seed 7 is in more than one of the results
    >>> two = {**one, "recipe": "columns", "per_seed": [{"seed": 8, "recipe_sha256": "a"}]}
    >>> merge([{**one, "per_seed": [{"seed": 7, "recipe_sha256": "b"}]}, two])
    Traceback (most recent call last):
    ValueError: results differ in the recipe's settings (recipe_sha256 b vs a): not one benchmark
    """
    first = parts[0]
    # Level-ups counted as level_ups counts them now (a result written before a return to a level
    # stopped counting as one holds the old count).
    per_seed = sorted(({**s, "level_ups": level_ups([pr["difficulty"] for pr in s["per_round"]])} if "per_round" in s
                       else s for part in parts for s in part["per_seed"]), key=lambda s: s["seed"])
    digests = {s.get("recipe_sha256") for s in per_seed}
    by_settings = None not in digests
    if by_settings and len(digests) > 1:
        a, b = list(dict.fromkeys(s["recipe_sha256"] for s in per_seed))[:2]
        raise ValueError(f"results differ in the recipe's settings (recipe_sha256 {a} vs {b}): not one benchmark")
    for other in parts[1:]:
        for key in ("quick", "rounds", "recipe", "overrides", "levels", "versions"):  # measure_every may differ
            if key == "recipe" and by_settings:
                continue
            if other[key] != first[key]:
                raise ValueError(f"results differ in {key} ({first[key]} vs {other[key]}): not one benchmark")
    seeds = [s["seed"] for s in per_seed]
    for seed in seeds:
        if seeds.count(seed) > 1:
            raise ValueError(f"seed {seed} is in more than one of the results")
    return report(per_seed, quick=first["quick"], n_rounds=first["rounds"], recipe=first["recipe"],
                  overrides=first["overrides"], levels=tuple(first["levels"]),
                  minutes=sum(part["minutes"] for part in parts), versions=first["versions"],
                  measure_every=max(part.get("measure_every", 1) for part in parts))


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
