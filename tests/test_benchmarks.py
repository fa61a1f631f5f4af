"""The benchmarks' own plumbing on the tiny model: recipe variants, one round's phase report,
the improvement report's structure. The figures themselves come from `swarm bench` runs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from benchmarks import common
from benchmarks.common import recipe_variant, toml_dumps
from engine.errors import RecipeError
from engine.recipes import load_recipe


def test_recipe_variant_changes_only_what_it_is_told(tmp_path: Path) -> None:
    out = recipe_variant("default", tmp_path, {"task": {"generated": 3}, "model": {"n_parallel": 1}})
    rec = load_recipe(str(out))[0]
    base = load_recipe("default")[0]
    assert rec.task.generated == 3 and rec.model.n_parallel == 1
    assert rec.agents == base.agents and rec.prompts == base.prompts and rec.train == base.train
    with pytest.raises(RecipeError, match=r"model.n_parallel"):
        recipe_variant("default", tmp_path, {"model": {"n_parallel": 0}})
    solvers = load_recipe(str(recipe_variant("default", tmp_path, {"agents.solver": {"max_tokens": 64}})))[0].agents
    assert {a.name: a.max_tokens for a in solvers if a.role == "solver"} == {"solver-a": 64, "solver-b": 64}
    assert [a for a in solvers if a.role != "solver"] == [a for a in base.agents if a.role != "solver"]


def test_results_go_to_the_checkout_the_data_dir_or_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from console.cli import main

    monkeypatch.setenv(common.OUT_ENV, "")  # unset, and restored after the CLI sets it
    assert common.results_dir() == common.RESULTS  # a source checkout writes its own results
    installed = tmp_path / "site-packages" / "benchmarks" / "results"  # no .git above it: an installed package
    monkeypatch.setattr(common, "RESULTS", installed)
    assert common.results_dir() == Path(__import__("os").environ["SWARM_HOME"]).resolve() / "bench"
    path = common.write_results("probe", {"x": 1})
    assert path.parent == common.results_dir() and json.loads(path.read_text())["x"] == 1 and not installed.exists()
    monkeypatch.setattr(common, "RESULTS", common.Path(common.__file__).resolve().parent / "results")
    out = tmp_path / "elsewhere"
    assert main(["bench", "store", "--quick", "--out", str(out)]) == 0
    assert (out / "store.json").exists()


def test_results_name_the_cpu_features_that_change_the_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.paths

    monkeypatch.setattr(engine.paths, "cpu_flags", lambda: {"fma", "avx2", "avx512f", "sse4_2"})
    assert common.machine()["vector"] == ["avx2", "avx512f"]  # no bfloat16: training runs in float32
    monkeypatch.setattr(engine.paths, "cpu_flags", lambda: set())
    assert common.machine()["vector"] == []


def test_toml_dumps_round_trips_the_default_recipe() -> None:
    text = (Path(__file__).resolve().parent.parent / "recipes" / "default.toml").read_text()
    data = tomllib.loads(text)
    assert tomllib.loads(toml_dumps(data)) == data


def test_round_benchmark_reports_every_phase(tiny_recipe: Path) -> None:
    from benchmarks.round import play

    out = play(str(tiny_recipe), rounds=1, train=False)
    assert out["status"] == "finished"
    assert set(out["phases"]) == {"propose", "solve", "debate", "judge", "hint", "verify", "collect", "train", "evaluate"}
    assert out["generated_tokens"] > 0 and out["rows"]["attempts"] > 0
    assert out["peak_rss_mb"]["process"] > 0 and out["wall_seconds"] >= sum(out["phases"].values()) * 0.9
    # The debate's profile accounts for every generated row, by kind, and what it fed.
    (prof,) = out["debate_profile"]
    assert prof["answers"]["requests"] + prof["revisions"]["requests"] == out["rows"]["attempts"]
    assert prof["critiques"]["requests"] == out["rows"]["critiques"] == prof["revisions"]["requests"] > 0
    assert prof["verdicts"]["verdicts"] == out["rows"]["verdicts"] >= prof["verdicts"]["requests"] > 0
    assert sum(k["tokens"] for k in prof.values() if isinstance(k, dict)) <= out["generated_tokens"]
    for kind in ("answers", "critiques", "revisions", "verdicts"):
        assert 0 <= prof[kind]["capped"] <= prof[kind]["requests"]
        assert prof[kind]["in_example"] == 0  # nothing trained: the tiny model verifies nothing


def test_improve_benchmark_reports_test_sets_over_seeds(tiny_recipe: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from benchmarks import common, improve
    from benchmarks.improve import merge, run

    monkeypatch.setenv(common.OUT_ENV, str(tmp_path))
    written: list[tuple[str, list[int], list[bool]]] = []

    def spy(name: str, data: dict) -> Path:
        written.append((name, [len(s["per_round"]) for s in data["per_seed"]],
                        [bool(s.get("partial")) for s in data["per_seed"]]))
        if name.endswith("-partial"):
            assert data["partial"] and data["rounds_played"] == {str(s["seed"]): len(s["per_round"])
                                                                 for s in data["per_seed"]}
        return common.write_results(name, data)

    monkeypatch.setattr(improve, "write_results", spy)
    data = run(rounds=2, recipe=str(tiny_recipe), overrides={}, levels=(1, 2), seeds=[7, 8], name="improve-probe")
    # what a run stopped early keeps: every round so far, the seed in play marked partial
    assert written == [("improve-probe-partial", [1], [True]), ("improve-probe-partial", [2], [False]),
                       ("improve-probe-partial", [2, 1], [False, True]), ("improve-probe", [2, 2], [False, False])]
    assert not (tmp_path / "improve-probe-partial.json").exists()  # the whole run replaces it
    assert json.loads((tmp_path / "improve-probe.json").read_text())["seeds"] == [7, 8]
    assert data["seeds"] == [7, 8] and len(data["per_seed"]) == 2
    assert set(data["test"]) == {"test-1 (1-digit addition)", "test-2 (2-digit addition)"}
    assert set(data["dev"]) == {"dev-1 (1-digit addition)", "dev-2 (2-digit addition)"}
    for pool in ("test", "dev"):
        for v in data[pool].values():
            for which in ("base", "final"):
                assert set(v[which]) == {"mean", "min", "max"} and v[which]["min"] <= v[which]["mean"] <= v[which]["max"]
            assert set(v["curves"]) == {"7", "8"} and all(len(c) == 3 for c in v["curves"].values())
            assert set(v["n_per_seed"]) == {"7", "8"} and v["n"] == v["n_per_seed"]["7"]
    for s in data["per_seed"]:
        r0 = s["per_round"][0]
        # what the seed was played with, from the run's settings: a host may serve another type
        assert s["weights"]["type"] and s["weights"]["reason"]
        # The tiny random model verifies nothing, so the round skips training and says why.
        assert r0["training"]["status"] == "skipped" and "min_examples" in r0["training"]["error"]
        assert r0["adapter_in_use"] is None and r0["test"] == s["base"]["test"] and r0["dev"] == s["base"]["dev"]
        assert r0["control_drift"]["similarity"] == 1.0 and r0["control_drift"]["identical"] == 1.0
        lvl2 = s["base"]["test"]["2"]
        assert lvl2["n"] == 6 and lvl2["ci"][0] <= lvl2["accuracy"] <= lvl2["ci"][1]
    assert data["ratios"]["final_minus_base_points"] == {k: 0.0 for k in data["test"]}
    # every test task of both seeds pooled, each paired with itself under the base model: nothing
    # trained, so no task changed and the interval is a point
    gain = data["test_gain"]
    assert gain["n"] == 2 * 12 and gain["worse"] == gain["better"] == 0 and gain["gain"] == 0.0 and gain["ci"] == [0.0, 0.0]
    assert gain["base"] == pytest.approx(sum(s["base"]["test"][str(lvl)]["correct"] for s in data["per_seed"]
                                             for lvl in (1, 2)) / 24)
    for s in data["per_seed"]:
        assert s["paired"]["n"] == 12 and s["paired"]["both"] == sum(s["base"]["test"][k]["correct"] for k in ("1", "2"))
    for key in ("control", "control_dev"):  # general facts answered right, of 16
        c = data[key]
        assert c["n"] == 16 and set(c["base"]) == {"mean", "min", "max"} and c["base"] == c["final"]
        assert set(c["curves"]) == {"7", "8"}
    deb = data["debate"]  # the debate protocol on the test sets, both levels pooled
    assert deb["n"] == 12
    for key in ("gain_final", "first_final", "final_final"):
        assert set(deb[key]) == {"mean", "min", "max"} and deb[key]["min"] <= deb[key]["mean"] <= deb[key]["max"]
    assert deb["first_final"]["mean"] == pytest.approx(
        sum(v["final"]["mean"] for v in data["test"].values()) / 2)  # first answers are the pass@1 answers
    for key in ("judge_balanced_accuracy_final", "right_to_wrong_final"):
        assert deb[key] is None or 0 <= deb[key]["min"] <= deb[key]["max"] <= 1
    assert set(deb["gain_curves"]) == {"7", "8"} and all(len(c) == 3 for c in deb["gain_curves"].values())
    assert deb["revised_final_final"] is not None  # the revisions' own figures, beside the judged answer
    assert deb["three_way_final_final"] is None and deb["judge_result_final"] is None  # a verdict judge computes nothing
    assert data["per_seed"][0]["per_round"][0]["debate"]["2"]["n"] == 6
    cost = data["debate_time"]  # the debate's phases against the rest of the same rounds
    assert set(cost["per_seed"]) == {"7", "8"} and all(0 < r["share"] < 1 for r in cost["per_seed"].values())
    # a test-only run's debate filled in from probes that read the same debate (debate_rounds.py's
    # shape, by the adapter in use) is the debate the run measured
    bare = {**data, "per_seed": [{**s, "base": {**s["base"], "debate": None},
                                  "per_round": [{**pr, "debate": None} for pr in s["per_round"]]}
                                 for s in data["per_seed"]]}
    assert improve.debate_summary(bare["per_seed"]) is None
    probes = [{"benchmark": f"probe-{s['seed']}", "seed": s["seed"], "settings": "", "rounds": {
        str(pr["round"]): {"adapter": pr["adapter_in_use"], "all": pr["debate"]["all"],
                           "levels": {k: v for k, v in pr["debate"].items() if k != "all"}}
        for pr in s["per_round"]}} for s in data["per_seed"]]
    filled = improve.with_debate(bare, probes)
    assert filled["debate"] == data["debate"] and filled["debate_from"] == ["probe-7", "probe-8"]
    with pytest.raises(ValueError, match="no probe read seed 8"):
        improve.with_debate(bare, probes[:1])
    with pytest.raises(ValueError, match="other settings"):
        improve.with_debate(bare, [{**probes[0], "settings": "round.step_plan=true"}])
    # a figure over seeds played in two sittings is the one figure over all of them
    parts = [{**data, "per_seed": [s], "minutes": 1.5} for s in data["per_seed"]]
    merged = merge(parts)
    assert merged["seeds"] == [7, 8] and merged["minutes"] == 3.0
    for key in ("test", "dev", "control", "control_dev", "test_gain", "debate", "debate_time", "level_ups", "ratios"):
        assert merged[key] == data[key], key
    # the same settings under another recipe name (a recipe made the default) are the same benchmark
    from engine.recipes import load_recipe

    assert {s["recipe_sha256"] for s in data["per_seed"]} == {improve.recipe_digest(load_recipe(str(tiny_recipe))[0])}
    renamed = [parts[0], {**parts[1], "recipe": "default"}]
    assert merge(renamed)["seeds"] == [7, 8]
    with pytest.raises(ValueError, match="differ in the recipe's settings"):
        merge([parts[0], {**parts[1], "per_seed": [{**parts[1]["per_seed"][0], "recipe_sha256": "0" * 64}]}])
    with pytest.raises(ValueError, match="differ in recipe"):  # without the settings' digest, by name
        merge([{**part, "per_seed": [{k: v for k, v in s.items() if k != "recipe_sha256"} for s in part["per_seed"]]}
               for part in renamed])


def test_the_pooled_test_gain_pairs_each_task_with_itself() -> None:
    """improve's ``test_gain``: final minus base accuracy over every seed's test tasks, with a paired
    bootstrap interval that only the tasks which changed widen."""
    from benchmarks.improve import paired_counts, pooled_gain

    seed7 = paired_counts({("2", i): i < 40 for i in range(100)}, {("2", i): i < 70 for i in range(100)})
    assert seed7 == {"n": 100, "both": 40, "base_only": 0, "final_only": 30, "neither": 30}
    seed8 = paired_counts({("2", i): i % 2 == 0 for i in range(100)}, {("2", i): i % 2 == 1 for i in range(100)})
    assert seed8 == {"n": 100, "both": 0, "base_only": 50, "final_only": 50, "neither": 0}
    one = pooled_gain([seed7])
    assert (one["n"], one["base"], one["final"], one["better"], one["worse"]) == (100, 0.4, 0.7, 30, 0)
    assert one["gain"] == pytest.approx(0.3) and 0.2 < one["ci"][0] < 0.3 < one["ci"][1] < 0.4
    # the same 50-point swap either way gains nothing and is far less certain than 30 tasks won
    both = pooled_gain([seed7, seed8])
    assert both["n"] == 200 and both["gain"] == pytest.approx(0.15) and both["ci"][0] < 0.15 < both["ci"][1]
    assert both["ci"][1] - both["ci"][0] > one["ci"][1] - one["ci"][0]
    assert one["p_better"] == pytest.approx(0.5**30) and both["p_better"] > 0.001
    assert pooled_gain([paired_counts({i: False for i in range(9)}, {i: i < 4 for i in range(9)})])["p_better"] == 1 / 16
    assert pooled_gain([seed7, None]) is None and pooled_gain([]) is None
    unchanged = pooled_gain([paired_counts({1: True, 2: False}, {1: True, 2: False})])
    assert unchanged["gain"] == 0 and unchanged["ci"] == [0.0, 0.0]


def test_the_debates_cost_is_measured_in_the_same_rounds() -> None:
    """improve's ``debate_time``: the debate, judge and hint phases' seconds against every other
    phase's in the same rounds, per seed and over seeds; a seed with no phases recorded is left out."""
    from benchmarks.improve import debate_time

    seeds = [{"seed": 7, "per_round": [{"phases": {"solve": 100, "train": 100, "debate": 20, "judge": 10}},
                                       {"phases": {"solve": 100, "evaluate": 100, "hint": 10}}]},
             {"seed": 8, "per_round": [{"phases": {"solve": 300, "debate": 30, "judge": 0}}]},
             {"seed": 9, "per_round": [{"phases": {}}]}]
    cost = debate_time(seeds)
    assert set(cost["per_seed"]) == {"7", "8"}
    assert cost["per_seed"]["7"] == {"debate_seconds": 40.0, "other_seconds": 400.0, "added": 0.1,
                                     "share": pytest.approx(40 / 440)}
    assert cost["added"] == {"mean": pytest.approx(0.1), "min": pytest.approx(0.1), "max": pytest.approx(0.1)}
    assert cost["share"]["min"] == pytest.approx(30 / 330) and cost["phases"] == ["debate", "judge", "hint"]
    assert debate_time([seeds[2]]) is None


def test_improve_benchmark_measures_every_kth_round_and_the_last(tiny_recipe: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """measure_every = 2 over 3 rounds: the test sets are measured after round 1 and the last
    (round 2) only; round 0's figures read None, the curves keep its place, the final figures are
    the last round's."""
    from benchmarks.improve import run

    monkeypatch.setenv(common.OUT_ENV, str(tmp_path))
    data = run(rounds=3, recipe=str(tiny_recipe), overrides={}, levels=(1,), seeds=[7], name="improve-every",
               measure_every=2)
    assert data["measure_every"] == 2
    (s,) = data["per_seed"]
    assert [pr["test"] is not None for pr in s["per_round"]] == [False, True, True]
    assert s["per_round"][0]["debate"] is None and s["per_round"][0]["control_drift"] is None
    assert s["per_round"][0]["difficulty"] >= 1 and s["per_round"][0]["seconds"] > 0  # the round itself is recorded
    curve = data["test"]["test-1 (1-digit addition)"]["curves"]["7"]
    assert len(curve) == 4 and curve[1] is None and None not in (curve[0], curve[2], curve[3])
    assert data["test"]["test-1 (1-digit addition)"]["final"]["mean"] == s["per_round"][2]["test"]["1"]["accuracy"]
    assert data["debate"]["gain_curves"]["7"][1] is None and data["control"]["curves"]["7"][1] is None
    assert s["final_control_answers"] is not None


def test_generation_measures_every_weight_type_auto_considers(tiny_model: Path) -> None:
    from benchmarks.generation import _weights

    rows = _weights(str(tiny_model), 8)
    assert [r["type"] for r in rows] == ["F16", "Q4_0", "Q8_0", "BF16"]  # the tiny model ships as F16
    assert rows[0]["as_shipped"] and rows[0]["vs_shipped_8"] == 1.0 and rows[0]["nll_rise"] == 0.0
    for r in rows:
        assert r["tokens_per_second_8"] > 0 and r["nll"] > 0 and isinstance(r["auto_candidate"], bool)
        assert len(r["tokens_per_second_8_each"]) == 3 and r["tokens_per_second_8"] == max(r["tokens_per_second_8_each"])


def test_training_step_benchmark_times_both_steps_on_the_same_batches(tiny_model: Path, tmp_path: Path) -> None:
    from benchmarks.training import step_child
    from engine.train.runner import run_worker

    prep = run_worker("prepare", {"home": str(tmp_path / "home"), "gguf": str(tiny_model)}, tmp_path / "log")
    out = step_child(prep["base_dir"], str(tiny_model), "peft", 2)
    assert out["examples"] > 100 and out["mean_labels"] < out["mean_tokens"]
    # the product's step (labels only) and the baseline give the same loss and gradients
    assert abs(out["loss"]["every logit"] - out["loss"]["labels only"]) < 1e-4 and out["min_gradient_cosine"] > 0.999
    assert {k: len(v) for k, v in out["seconds"].items()} == {"labels only": 4, "every logit": 4}
    assert all(t > 0 for v in out["seconds"].values() for t in v)


def test_formats_benchmark_trains_the_same_train_tasks_in_every_format(tiny_model: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from benchmarks import common, formats
    from engine.pools import pool_of
    from engine.tasks.arith import ARITH

    rec = load_recipe("default")[0]
    tasks = formats.train_tasks(rec, 40, seed=11)
    assert len(tasks) == 40 and {t.difficulty for t in tasks} == {2, 3}
    assert all(pool_of(t.fingerprint, rec.seed) == "train" for t in tasks)  # never a dev or test task
    spread = formats.train_tasks(rec, 11, seed=11, levels=(2, 9))  # evenly over the levels named
    assert [t.difficulty for t in spread] == [2] * 6 + [9] * 5
    assert all(pool_of(t.fingerprint, rec.seed) == "train" for t in spread)
    for fmt in ARITH.formats:
        assert all(ARITH.verify(t, m[-1]["content"]).correct for t, m in zip(tasks, formats.examples_in(rec, tasks, fmt)))
    monkeypatch.setenv(common.OUT_ENV, str(tmp_path / "out"))
    monkeypatch.setattr(formats, "train_tasks", lambda recipe, n, seed, levels=None: tasks[:min(n, 8)])
    got = formats.run(quick=True, model=str(tiny_model), results_name="formats-test")
    screened = [f for f in ARITH.formats if f != "plain"]  # with no solver's words plain is the value alone
    assert [r["format"] for r in got["rows"]] == ["base model", *screened] and got["best"] in screened
    assert got["rows"][1]["example"] == tasks[0].reference  # value: the verified result alone
    data = json.loads((tmp_path / "out" / "formats-test.json").read_text())
    assert data["examples"] == 8 and set(data["rows"][1]["scores"]) == {"test-1", "test-2", "test-3", "test-9", "facts-test"}
    assert data["rows"][2]["example"] == ARITH.worked(tasks[0], "columns")
    tried = formats.run(quick=True, model=str(tiny_model), formats=("value",), results_name="formats-settings",
                        settings=({"steps": 2}, {"rank": 4, "alpha": 8}, {"examples": 4, "steps": 2}))
    assert [r["format"] for r in tried["rows"][1:]] == ["value@steps=2", "value@rank=4,alpha=8", "value@examples=4,steps=2"]
    assert [r["train"]["steps"] for r in tried["rows"][1:]] == [2, 12, 2]
    assert [r["examples"] for r in tried["rows"][1:]] == [8, 8, 4]  # the examples key sets a trial's train tasks


def test_improve_benchmark_measures_the_test_sets_alone_when_told(tiny_recipe: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """test_only: the test sets and facts are measured, the dev sets and the debate are not (None,
    and the report says so); the test figures are the ones a full measurement gives."""
    from benchmarks.improve import run

    monkeypatch.setenv(common.OUT_ENV, str(tmp_path))
    lean = run(rounds=1, recipe=str(tiny_recipe), overrides={}, levels=(1,), seeds=[7], name="improve-lean",
               test_only=True, keep=tmp_path / "kept")
    full = run(rounds=1, recipe=str(tiny_recipe), overrides={}, levels=(1,), seeds=[7], name="improve-full",
               write=False)
    assert lean["test_only"] and not full["test_only"]
    assert lean["dev"] is None and lean["control_dev"] is None and lean["debate"] is None
    (s,) = lean["per_seed"]
    assert s["base"]["dev"] is None and s["base"]["debate"] is None and s["per_round"][0]["dev"] is None
    assert lean["test"] == full["test"] and lean["control"] == full["control"]
    assert "the debate: not measured (test sets only)" in capsys.readouterr().out
    # keep: the seed's data dir stays, its store holding the run and its adapters' files beside it
    from engine.api import Engine

    home = tmp_path / "kept" / "seed-7"
    assert s["home"] == str(home.resolve()) and "home" not in full["per_seed"][0]
    eng = Engine.open(home)
    try:
        q = eng.store.execute
        assert q("select count(*) from rounds where run_id = ?", [s["run_id"]])[0][0] == 1
        paths = [p for (p,) in q("select path from adapters where run_id = ?", [s["run_id"]])]
        assert len(paths) == (s["per_round"][0]["new_adapter"] is not None)
        assert all(Path(p).exists() and p.startswith(str(home.resolve())) for p in paths)
    finally:
        eng.close()
    with pytest.raises(ValueError, match="seed-7 is not empty: a kept run is never overwritten"):
        run(rounds=1, recipe=str(tiny_recipe), overrides={}, levels=(1,), seeds=[7], name="improve-again",
            test_only=True, keep=tmp_path / "kept")


def test_debate_vote_rules_are_scored_against_the_first_answers():
    from benchmarks.debate_votes import score_rules
    row = {"level": 2, "first": "5", "first_ok": False, "revision": "5", "judged_ok": False,
           "judge": ["6", "6", "6", "7", "6"], "samples": ["6", "5", "6", "6"], "right": ["6"]}
    right_first = {**row, "first": "6", "first_ok": True, "revision": "6", "judged_ok": True,
                   "judge": ["7", "7", "7", "7", "7"], "samples": ["6", "6", "6", "6"]}
    scored = score_rules([row, right_first])
    base = scored["first answer (baseline)"]
    assert base["accuracy"] == 0.5 and base["gain"] == 0.0 and base["right_to_wrong_n"] == 0
    # Unanimous judge votes overturn the right answer; 4 of 5 are not enough for the wrong one.
    five = scored["judge votes, >= 5 of 5"]
    assert five["gain"] == -0.5 and five["right_to_wrong_n"] == 1 and five["wrong_to_right_n"] == 0
    four = scored["judge votes, >= 4 of 5"]
    assert four["wrong_to_right_n"] == 1 and four["right_to_wrong_n"] == 1 and four["gain_per_level"] == {"2": 0}
    # The plurality of all 11 keeps the right answer (6 of 11) and fixes the wrong one (7 of 11 say 6).
    assert scored["plurality of all 11, >= 3"]["accuracy"] == 1.0


def test_a_setting_added_later_changes_a_recipes_digest_only_away_from_its_old_behaviour() -> None:
    """Settings added after digests were recorded (``ADDED_LATER``): the default's 3 seeds of
    improve-fast-seeds7-8-9.json were played before any existed, as each plays at its old value;
    at that value the digest is the recorded one, at any other value another."""
    import json

    from benchmarks.improve import ADDED_LATER, recipe_digest
    from engine.recipes import load_recipe

    def with_values(values: dict[tuple[str, str], object]) -> object:
        sections = {sec: getattr(rec, sec).model_copy(update={k: v for (s, k), v in values.items() if s == sec})
                    for sec in {s for s, _ in values}}
        return rec.model_copy(update=sections)

    rec = load_recipe("default")[0]
    recorded = json.loads((Path(__file__).parent.parent / "benchmarks" / "results" / "improve-fast-seeds7-8-9.json")
                          .read_text())["per_seed"][0]["recipe_sha256"]
    assert recipe_digest(with_values(ADDED_LATER)) == recorded
    other = {("round", "critique"): "steps", ("round", "judge_check"): "steps", ("round", "step_check"): "inline",
             ("round", "step_operands"): "digits", ("task", "shorter"): 0.25, ("task", "ahead_top"): 0.5,
             ("round", "unsolved_samples"): 1, ("eval", "recall_test"): "paired", ("round", "step_spaced"): True,
             ("round", "step_plan"): True, ("round", "step_columns"): True, ("train", "focus_steps"): 4.0,
             ("train", "replay_facts"): True}
    assert set(other) == set(ADDED_LATER)  # a setting added later is listed here with a value of its own
    for key, value in other.items():
        assert recipe_digest(with_values({**ADDED_LATER, key: value})) != recorded, key
