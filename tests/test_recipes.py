"""Recipes: bundled ones validate; every kind of mistake names the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import RecipeError
from engine.recipes import bundled_recipes, load_recipe, parse_recipe

DEFAULT = Path(__file__).resolve().parent.parent / "recipes" / "default.toml"
PLAIN = DEFAULT.with_name("plain.toml")  # what the tests build on: plain answers, no computing judge


def test_bundled_recipes_validate() -> None:
    paths = bundled_recipes()
    assert paths[0] == DEFAULT and [p.stem for p in paths[1:]] == sorted(p.stem for p in paths[1:])  # default first
    for p in paths:
        recipe, path, text = load_recipe(str(p))
        assert recipe.agents_with("solver")


def test_default_is_used_when_none_named() -> None:
    recipe, path, _ = load_recipe(None)
    assert path.resolve() == DEFAULT
    assert recipe.task.domain == "arith"
    assert recipe.model.path == "builtin:smollm2-135m"


def test_the_default_is_plain_with_the_best_measured_settings() -> None:
    """recipes/default.toml: recipes/plain.toml but for the settings the improve benchmark measured
    best against the curriculum's and the debate's targets: those of
    benchmarks/results/improve-columns-ahead-swapjudge-seed7-partial.json (played on plain.toml when it
    was the default), with those of improve-fast-seeds7-8-9.json on top (played on the default they
    made), with those of improve-stepsid-judge-seeds7-8-9.json on top (the step critic and the
    self-checking judge, played on that default), with those of improve-top-sparse-seeds7-8-9.json
    on top (the mixed level aimed at, one answer per solver at a level not solved yet, played on
    that default), with those of improve-recallpaired-seeds7-8-9.json on top (the gate's paired
    test on the levels below, played on that default), with those of improve-colcand-seeds7-8-9.json
    on top (the step critic's spaced, plan and column checks, played on that default as
    recipes/candidate.toml); the same settings, digest for digest, as the last 3 seeds played."""
    import json

    from benchmarks.improve import recipe_digest

    results = DEFAULT.parent.parent / "benchmarks" / "results"
    measured = json.loads((results / "improve-columns-ahead-swapjudge-seed7-partial.json").read_text())["overrides"]
    names = ("improve-fast-seeds7-8-9", "improve-stepsid-judge-seeds7-8-9", "improve-top-sparse-seeds7-8-9",
             "improve-recallpaired-seeds7-8-9", "improve-colcand-seeds7-8-9")
    layers = [json.loads((results / f"{name}.json").read_text()) for name in names]
    # A layer played as a recipe file of its own (the default with these settings added, named in
    # the result) records no overrides: its settings, which its digest below pins, are these.
    played_as = {"improve-colcand-seeds7-8-9": {"round": {"step_spaced": True, "step_plan": True, "step_columns": True}}}
    for name, layer in zip(names, layers):
        assert not (layer["overrides"] and name in played_as)
        for section, values in (layer["overrides"] or played_as.get(name, {})).items():
            measured.setdefault(section, {}).update(values)
    default_recipe, plain_recipe = load_recipe("default")[0], load_recipe("plain")[0]
    default, plain = default_recipe.model_dump(), plain_recipe.model_dump()
    for section in ("task", "round", "train", "eval"):
        changed = {k: v for k, v in default[section].items() if plain[section][k] != v}
        assert changed == {k: v for k, v in measured[section].items() if plain[section][k] != v}, section
    for a, b in zip(default["agents"], plain["agents"]):
        want = measured.get(f"agents.{a['role']}", {})
        assert {k: v for k, v in a.items() if b[k] != v} == want, a["name"]
    rest = [k for k in default if k not in ("task", "round", "train", "eval", "agents") and default[k] != plain[k]]
    assert rest == ["name", "description"]
    latest = layers[-1]
    assert latest["seeds"] == [7, 8, 9] and latest["rounds"] == 8
    assert {s["recipe_sha256"] for s in latest["per_seed"]} == {recipe_digest(default_recipe)}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


def with_change(old: str, new: str) -> str:
    text = PLAIN.read_text()
    assert old in text
    return text.replace(old, new, 1)


def python_with(tmp_path: Path, section: str, line: str) -> Path:
    """The bundled python recipe with ``line`` added under ``section``, written as r.toml."""
    python = (DEFAULT.parent / "python.toml").read_text()
    assert section in python
    return write(tmp_path, python.replace(section, f"{section}\n{line}", 1))


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("temperature = 0.8", "temperature = 5.0", "agents[1].temperature", "less than or equal to 2"),
        ("temperature = 0.8", "temperatur = 0.8", "agents[1].temperatur", "unknown key"),
        ("samples = 2", "samples = 'two'", "round.samples", "valid integer"),
        ('domain = "arith"', 'domain = "chess"', "task", "unknown domain 'chess'"),
        ("n_parallel = 8", "n_parallel = 0", "model.n_parallel", "greater than or equal to 1"),
        ('role = "judge"', 'role = "jester"', "agents[4].role", "'proposer', 'solver', 'critic' or 'judge'"),
        ('name = "solver-b"', 'name = "solver-a"', "agents", "unique, repeated: solver-a"),
        ("[prompts]", "[prompts]\nextra = 1", "prompts.extra", "unknown key"),
    ],
)
def test_bad_values_name_file_key_reason(tmp_path: Path, old: str, new: str, key: str, reason: str) -> None:
    p = write(tmp_path, with_change(old, new))
    with pytest.raises(RecipeError) as e:
        load_recipe(str(p))
    msg = str(e.value)
    assert f"{p}: {key}: " in msg
    assert reason in msg


def test_a_spaced_step_check_needs_an_inline_one(tmp_path: Path) -> None:
    p = write(tmp_path, with_change("[round]", "[round]\nstep_spaced = true"))  # plain.toml: step_check = "task"
    with pytest.raises(RecipeError, match=rf"{p}: .*round.step_spaced: true needs round.step_check = 'inline'"):
        load_recipe(str(p))


@pytest.mark.parametrize("key", ["step_plan", "step_columns"])
def test_a_plan_or_column_check_needs_a_step_critic(tmp_path: Path, key: str) -> None:
    p = write(tmp_path, with_change("[round]", f"[round]\n{key} = true"))  # plain.toml: critique = "text"
    with pytest.raises(RecipeError, match=rf"{p}: .*round.{key}: true needs a step critic"):
        load_recipe(str(p))
    ok = write(tmp_path, with_change("[round]", f'[round]\n{key} = true\ncritique = "steps"'))
    assert getattr(load_recipe(str(ok))[0].round, key)


def test_broken_toml(tmp_path: Path) -> None:
    p = write(tmp_path, "name = 'x'\n[model\npath = 1")
    with pytest.raises(RecipeError, match=rf"{p}: not valid TOML"):
        load_recipe(str(p))


def test_no_solver(tmp_path: Path) -> None:
    text = DEFAULT.read_text().replace('role = "solver"', 'role = "critic"')
    p = write(tmp_path, text)
    with pytest.raises(RecipeError, match="at least one agent must have role = 'solver'"):
        load_recipe(str(p))


def test_missing_prompts_and_agents() -> None:
    with pytest.raises(RecipeError) as e:
        parse_recipe("name = 'x'", "mem.toml")
    assert "mem.toml: agents: required key is missing" in str(e.value)
    assert "mem.toml: prompts: required key is missing" in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(str(tmp_path / "nope.toml"))
    with pytest.raises(RecipeError, match="is a directory"):
        load_recipe(str(tmp_path))


def test_a_computing_judge_needs_a_domain_whose_answers_are_values(tmp_path: Path) -> None:
    bad = python_with(tmp_path, "[round]", 'judging = "compute"')
    with pytest.raises(RecipeError, match=r"r.toml: .*round.judging: 'compute' needs a domain whose answers are values"):
        load_recipe(str(bad))
    good = write(tmp_path, with_change("[round]", '[round]\njudging = "compute"'))
    assert load_recipe(str(good))[0].round.judging == "compute"


def test_only_arith_draws_shorter_numbers(tmp_path: Path) -> None:
    bad = python_with(tmp_path, "[task]", "shorter = 0.25")
    with pytest.raises(RecipeError, match=r"r.toml: .*task.shorter: the python domain has no numbers of a width"):
        load_recipe(str(bad))
    good = write(tmp_path, with_change("[task]", "[task]\nshorter = 0.25"))
    assert load_recipe(str(good))[0].task.shorter == 0.25


def test_focus_steps_needs_answers_worked_in_steps(tmp_path: Path) -> None:
    """train.focus_steps leans training toward the kinds of step answers get wrong: python's answers
    write no steps, and neither do arith's plain ones (plain.toml)."""
    for make, what in [(lambda: python_with(tmp_path, "[train]", "focus_steps = 4"), "python, 'plain'"),
                       (lambda: write(tmp_path, with_change("[train]", "[train]\nfocus_steps = 4")), "arith, 'plain'")]:
        bad = make()  # each written as r.toml in turn
        with pytest.raises(RecipeError, match=rf"r.toml: .*train.focus_steps: 4.0 needs a domain whose worked answers "
                                              rf"write out their steps \(arith\) and a worked task.answer_format \({what}\)"):
            load_recipe(str(bad))
    good = DEFAULT.read_text().replace("[train]", "[train]\nfocus_steps = 4", 1)
    assert load_recipe(str(write(tmp_path, good)))[0].train.focus_steps == 4.0


def test_replay_facts_needs_replay(tmp_path: Path) -> None:
    text = DEFAULT.read_text().replace("[train]", "[train]\nreplay_facts = true", 1)
    assert load_recipe(str(write(tmp_path, text)))[0].train.replay_facts
    bad = write(tmp_path, text.replace("replay_fraction = 0.4", "replay_fraction = 0", 1))
    with pytest.raises(RecipeError, match=r"r.toml: .*train.replay_facts: true adds fact questions to the replay, "
                                          r"and train.replay_fraction is 0"):
        load_recipe(str(bad))


def test_the_top_levels_share_of_the_tasks_ahead_needs_tasks_ahead(tmp_path: Path) -> None:
    bad = write(tmp_path, with_change("[task]", "[task]\nahead_top = 0.5"))  # plain.toml: ahead_share 0
    with pytest.raises(RecipeError, match=r"r.toml: .*task.ahead_top: 0.5 shares out the tasks ahead, and "
                                          r"task.ahead_share is 0"):
        load_recipe(str(bad))
    good = write(tmp_path, with_change("[task]", "[task]\nahead_top = 0.5\nahead_share = 0.4"))
    assert load_recipe(str(good))[0].task.ahead_top == 0.5


def test_a_python_recipe_has_no_swapped_view_for_its_judge(tmp_path: Path) -> None:
    bad = python_with(tmp_path, "[round]", 'judge_view = "swapped"')
    with pytest.raises(RecipeError, match=r"r.toml: .*round.judge_view: 'swapped' is not a view of the python domain "
                                          r"\(known: asked\)"):
        load_recipe(str(bad))


def test_a_judge_checks_its_steps_only_where_it_works_its_result_out(tmp_path: Path) -> None:
    """round.judge_check = "steps" needs a computing judge writing a worked format with one result:
    the default recipe's judge is one (and checks its steps); plain's (a verdict judge, plain answers)
    is refused, and so is a computing judge with several results."""
    assert 'judge_check = "steps"' in DEFAULT.read_text() and load_recipe("default")[0].round.judge_check == "steps"
    bad = write(tmp_path, with_change("[round]", '[round]\njudge_check = "steps"'))
    with pytest.raises(RecipeError, match=r"r.toml: .*round.judge_check: 'steps' needs a computing judge"):
        load_recipe(str(bad))
    votes = write(tmp_path, DEFAULT.read_text().replace("[round]", '[round]\njudge_votes = 3', 1))
    with pytest.raises(RecipeError, match=r"round.judge_check: .*round.judge_votes = 1"):
        load_recipe(str(votes))


def test_the_column_check_is_refused_with_the_split_format(tmp_path: Path) -> None:
    """round.step_columns reads the columns format's layout: the split format writes a carried
    column as two steps, which it would read as a carry left out."""
    text = DEFAULT.read_text()
    assert load_recipe(str(write(tmp_path, text)))[0].round.step_columns  # the default reads columns
    bad = write(tmp_path, text.replace('answer_format = "columns"', 'answer_format = "split"', 1))
    with pytest.raises(RecipeError, match=r"r.toml: .*round.step_columns: true reads a column with its carry as one "
                                          r"step .*task.answer_format is 'split'"):
        load_recipe(str(bad))
