"""Self-improvement: held-out pass@1 per round and per difficulty level over R rounds of the
default recipe, from fixed seeds, against the base model measured in the same run.

Every round plays in full (propose ... train, evaluate, gate); after it, the adapter the run
has promoted is scored greedily on the run's fixed held-out sets for levels 1-3 (2-digit and
3-digit additions are levels 2 and 3), with bootstrap 95% intervals. Scores the gate already
measured for that adapter and set are read from the store, not recomputed. Beside them: the
training-set size, the judge's agreement with the verifier, the round's wall time, and the
drift of answers to general control prompts (never trained on) from the base model's.
This is the number the project lives by; it is reported as measured, flat or not.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import recipe_variant, shared_cache_env, table, versions, write_results

LEVELS = (1, 2, 3)
QUICK = {"task": {"generated": 12, "proposed": 2}, "eval": {"held_out": 30}, "train": {"steps": 12}}


def run(quick: bool = False, rounds: int | None = None, recipe: str = "default", overrides: dict[str, Any] | None = None,
        levels: tuple[int, ...] = LEVELS, write: bool = True) -> dict[str, Any]:
    from engine.api import Engine
    from engine.evaluate import control_answers, drift, score, stored_score
    from engine.events import PhaseFinished
    from engine.heldout import ensure_held_out, set_name
    from engine.train.replay import CONTROL_PROMPTS

    n_rounds = rounds or (2 if quick else 8)
    shrink = overrides if overrides is not None else (QUICK if quick else {})
    saved_env = {k: os.environ.get(k) for k in ("SWARM_CACHE",)}
    os.environ.update(shared_cache_env())
    phases: dict[str, float] = {}

    def on_event(e: object) -> None:
        if isinstance(e, PhaseFinished):
            phases[e.phase] = phases.get(e.phase, 0.0) + e.seconds

    try:
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            path = recipe_variant(recipe, work, shrink)
            eng = Engine.open(work / "home")
            try:
                eng.subscribe(on_event)
                run_id = eng.create_run(str(path), rounds=n_rounds, train=True)
                info = eng.run_info(run_id)
                rec, q = info.recipe, eng.store.execute
                start = str(rec.task.difficulty if rec.task.difficulty in levels else levels[0])
                sets = {lvl: ensure_held_out(eng.store, run_id, rec, info.seed, lvl) for lvl in levels}
                rt = eng.runtime_for(rec)
                measured: dict[int | None, dict[str, Any]] = {}

                def measure(adapter_id: int | None, adapter_path: str | None) -> dict[str, Any]:
                    if adapter_id in measured:
                        return measured[adapter_id]
                    if not rt.serves(adapter_path):
                        rt.set_adapter(adapter_path).result()
                    out: dict[str, Any] = {}
                    for lvl, tasks in sets.items():
                        sc = stored_score(eng.store, run_id, adapter_id, set_name(lvl))
                        if sc is None:
                            sc, _ = score(rt, rec, tasks, seed=info.seed)
                        out[str(lvl)] = {"n": sc.n, "accuracy": sc.accuracy, "ci": [sc.ci_low, sc.ci_high]}
                    answers = control_answers(rt, CONTROL_PROMPTS)
                    measured[adapter_id] = {"levels": out, "control_answers": answers}
                    return measured[adapter_id]

                t_start = time.perf_counter()
                base = measure(None, None)
                base_seconds = time.perf_counter() - t_start
                per_round = []
                loop_start = time.perf_counter()
                for r in range(n_rounds):
                    phases.clear()
                    t0 = time.perf_counter()
                    status = eng.play(run_id, rounds=r + 1)
                    played = time.perf_counter() - t0
                    if status != "finished":
                        raise RuntimeError(f"round {r} ended {status}")
                    difficulty, stats = q("select difficulty, stats from rounds where run_id = ? and round = ?",
                                          [run_id, r])[0]
                    stats = json.loads(stats) if isinstance(stats, str) else (stats or {})
                    trained = q("select n_examples, backend, seconds, status, error from training_runs "
                                "where run_id = ? and round = ? order by id desc limit 1", [run_id, r])
                    new = q("select id, promoted, decision, export_cosine from adapters where run_id = ? and round = ? "
                            "order by id desc limit 1", [run_id, r])
                    cur = q("select id, path from adapters where run_id = ? and promoted order by id desc limit 1", [run_id])
                    cur_id, cur_path = (int(cur[0][0]), str(cur[0][1])) if cur else (None, None)
                    m = measure(cur_id, cur_path)
                    per_round.append({
                        "round": r, "difficulty": int(difficulty), "seconds": played,
                        "elapsed_minutes": (time.perf_counter() - loop_start) / 60, "phases": dict(phases),
                        "accepted": stats.get("accepted"), "rejected": stats.get("rejected"),
                        "solve_rate_first": stats.get("solve_rate_first"), "solve_rate_final": stats.get("solve_rate_final"),
                        "judge_agreement": stats.get("judge_agreement"),
                        "training": dict(zip(("examples", "backend", "seconds", "status", "error"), trained[0])) if trained else None,
                        "new_adapter": dict(zip(("id", "promoted", "decision", "export_cosine"), new[0])) if new else None,
                        "adapter_in_use": cur_id, "levels": m["levels"],
                        "control_drift": drift(base["control_answers"], m["control_answers"]),
                    })
                final = per_round[-1] if per_round else None
            finally:
                eng.close()
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    head = ["round", "level", "s", "accepted", "examples", "judge agrees", "adapter"] + [f"L{lvl} pass@1 [95% CI]" for lvl in levels] + ["control sim"]

    def cells(levels_: dict[str, Any]) -> list[str]:
        return [f"{levels_[str(lvl)]['accuracy']:.0%} [{levels_[str(lvl)]['ci'][0]:.0%},{levels_[str(lvl)]['ci'][1]:.0%}]"
                for lvl in levels]

    rows: list[list[Any]] = [["base", "-", base_seconds, "-", "-", "-", "-", *cells(base["levels"]), 1.0]]
    for pr in per_round:
        ad = pr["new_adapter"]
        decision = "-" if ad is None else ("promoted" if ad["promoted"] else "kept previous")
        rows.append([pr["round"], pr["difficulty"], pr["seconds"], pr["accepted"],
                     pr["training"]["examples"] if pr["training"] else 0,
                     f"{pr['judge_agreement']:.0%}" if pr["judge_agreement"] is not None else "-", decision,
                     *cells(pr["levels"]), pr["control_drift"]["similarity"]])
    print(table(head, rows))
    base_acc = base["levels"][start]["accuracy"]
    final_acc = final["levels"][start]["accuracy"] if final else base_acc
    ratios = {
        "final_vs_base": (final_acc / base_acc) if base_acc > 0 else None,
        "final_minus_base_points": {lvl: round(100 * ((final["levels"][lvl]["accuracy"] if final else 0.0)
                                                      - base["levels"][lvl]["accuracy"]), 1) for lvl in base["levels"]},
    }
    print(f"final_vs_base (level {start}): {ratios['final_vs_base']}; "
          f"minutes for {n_rounds} rounds: {per_round[-1]['elapsed_minutes'] if per_round else 0:.1f}")
    data = {"quick": quick, "rounds": n_rounds, "recipe": recipe, "overrides": shrink, "levels": list(levels),
            "ratio_level": int(start), "base": {"levels": base["levels"], "seconds": base_seconds,
                                                "control_answers": base["control_answers"]},
            "per_round": per_round, "final_control_answers": measured[per_round[-1]["adapter_in_use"]]["control_answers"]
            if per_round else None, "ratios": ratios,
            "versions": versions("llama-cpp-python", "torch", "unsloth", "peft", "transformers")}
    if write:
        print(f"wrote {write_results('improve', data)}")
    return data


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
