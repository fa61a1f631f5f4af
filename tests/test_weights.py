"""Weight types: conversion, the cache, auto's choice and its quality guard, a run keeping its weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import weights as W
from engine.errors import ModelError, RecipeError
from engine.models import check_gguf
from engine.runtime import Request, Runtime, Sampling
from tests.conftest import small_recipe


def test_convert_writes_a_checked_file_once_and_serves_it(tiny_model: Path, swarm_home: Path) -> None:
    assert W.file_type(tiny_model) == "F16"
    out = W.convert(tiny_model, "q8_0", swarm_home)
    assert out.name == "Q8_0.gguf" and out.parent.parent.name == "weights"
    assert W.file_type(out) == "Q8_0" and check_gguf(out).n_tensors == check_gguf(tiny_model).n_tensors
    before = out.stat().st_mtime_ns
    assert W.convert(tiny_model, "Q8_0", swarm_home) == out and out.stat().st_mtime_ns == before  # cached
    assert W.convert(tiny_model, "F16", swarm_home) == tiny_model  # already that type
    with Runtime(out, n_ctx=256, n_parallel=1) as rt:
        res = rt.generate(Request(prompt="What is 2 + 2?", sampling=Sampling(temperature=0.0, max_tokens=4)))
    assert res.completion_tokens > 0


def test_a_damaged_cached_file_is_made_again(tiny_model: Path, swarm_home: Path) -> None:
    out = W.convert(tiny_model, "Q4_0", swarm_home)
    out.write_bytes(out.read_bytes()[:1000])  # truncated
    again = W.convert(tiny_model, "Q4_0", swarm_home)
    assert again == out and check_gguf(again).size > 1000


def test_unknown_types_are_refused_by_name(tiny_model: Path, swarm_home: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown weight type 'Q3_X'"):
        W.convert(tiny_model, "Q3_X", swarm_home)
    from engine.recipes import load_recipe

    bad = small_recipe(tmp_path, tiny_model, **{'weights = "auto"': 'weights = "Q3_X"'})
    with pytest.raises(RecipeError, match=r"small.toml: model.weights: .*unknown weight type 'Q3_X'"):
        load_recipe(str(bad))
    good = small_recipe(tmp_path, tiny_model, **{'weights = "auto"': 'weights = "q4_0"'})
    assert load_recipe(str(good))[0].model.weights == "Q4_0"


def test_auto_measures_once_and_takes_the_fastest_that_keeps_quality(
        tiny_model: Path, swarm_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SWARM_CACHE", str(tmp_path / "cache"))  # made-up figures stay out of the session's cache
    speed = {"F16": 100.0, "Q4_0": 300.0, "Q8_0": 150.0, "BF16": 90.0}  # the tiny model ships as F16
    nll = {"F16": 2.0, "Q4_0": 2.3, "Q8_0": 2.02, "BF16": 2.0}
    monkeypatch.setattr(W, "decode_speed", lambda p, *a, **k: speed[W.file_type(p)])
    monkeypatch.setattr(W, "mean_nll", lambda p, **k: nll[W.file_type(p)])
    lines: list[str] = []
    choice = W.choose(tiny_model, "auto", swarm_home, n_parallel=4, log=lines.append)
    # Q4_0 is fastest but its perplexity rose 15% (> MAX_NLL_RISE): Q8_0 it is.
    assert choice.type == "Q8_0" and W.file_type(choice.path) == "Q8_0"
    assert "refused for perplexity: Q4_0" in choice.reason and set(choice.measured) == set(speed)
    assert any("measuring weight types" in line for line in lines)
    saved = json.loads((W.cache_root(swarm_home) / "weights" / W.sha256_file(tiny_model) / "auto.json").read_text())
    assert saved[0]["type"] == "Q8_0" and saved[0]["fingerprint"]["n_parallel"] == 4

    def no_measuring(*a: object, **k: object) -> float:
        raise AssertionError("measured again")

    monkeypatch.setattr(W, "decode_speed", no_measuring)
    again = W.choose(tiny_model, "auto", swarm_home, n_parallel=4)
    assert again.type == "Q8_0" and again.path == choice.path and "measured earlier" in again.reason
    # Another setting of the machine (sequences decoded together) is measured on its own.
    monkeypatch.setattr(W, "decode_speed", lambda p, *a, **k: speed[W.file_type(p)])
    nll["Q4_0"] = 2.05
    assert W.choose(tiny_model, "auto", swarm_home, n_parallel=2).type == "Q4_0"


def test_auto_really_measures(tiny_model: Path, swarm_home: Path) -> None:
    choice = W.choose(tiny_model, "auto", swarm_home, n_parallel=2)
    assert set(choice.measured) == {"F16", "Q4_0", "Q8_0", "BF16"}
    for m in choice.measured.values():
        assert m["tokens_per_second"] > 0 and m["nll"] > 0
    assert choice.type in choice.measured and check_gguf(choice.path)


def test_a_run_keeps_the_weights_it_started_with(tiny_model: Path, tmp_path: Path, swarm_home: Path) -> None:
    from engine.api import Engine
    from engine.events import ModelNotice

    recipe = small_recipe(tmp_path, tiny_model, **{'weights = "auto"': 'weights = "Q8_0"'})
    eng = Engine.open(swarm_home)
    notices: list[str] = []
    eng.subscribe(lambda e: notices.append(e.text) if isinstance(e, ModelNotice) else None)
    try:
        run = eng.create_run(str(recipe), rounds=1)
        info = eng.run_info(run)
        rt = eng.runtime_for(info.recipe, run)
        assert W.file_type(rt.path) == "Q8_0"
        settings = json.loads(eng.store.execute("select settings from runs where id = ?", [run])[0][0])
        assert settings["weights"]["type"] == "Q8_0" and settings["weights"]["source"] == str(tiny_model)
        assert any("serving Q8_0 weights" in n for n in notices)
        # The run says Q4_0 from now on (as if recorded by an earlier play): later plays follow the
        # record, not the recipe.
        settings["weights"] = W.Choice(W.convert(tiny_model, "Q4_0", swarm_home), "Q4_0", "test", tiny_model).record()
        eng.store.execute("update runs set settings = ? where id = ?", [json.dumps(settings), run])
        assert W.file_type(eng.runtime_for(info.recipe, run).path) == "Q4_0"
    finally:
        eng.close()


def test_gpu_layers_are_ignored_by_a_cpu_build(tiny_model: Path) -> None:
    import llama_cpp

    with Runtime(tiny_model, n_ctx=256, n_parallel=1, gpu_layers=-1) as rt:
        assert rt.gpu_layers == (-1 if llama_cpp.llama_supports_gpu_offload() else 0)


def test_doctor_reports_weights_and_offload(tiny_model: Path, swarm_home: Path, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    from engine.doctor import check_gpu, check_weights

    monkeypatch.setenv("SWARM_CACHE", str(tmp_path / "cache"))
    assert "F16 as shipped, served as Q4_0" in check_weights(str(tiny_model), "Q4_0", swarm_home).detail
    assert "measured on the first run" in check_weights(str(tiny_model), "auto", swarm_home).detail
    gpu = check_gpu(-1)
    assert gpu.ok and ("CPU only" in gpu.detail or "offloads every layer" in gpu.detail)


@pytest.mark.slow  # about a minute: torch, a dequantized checkpoint, training and the check
@pytest.mark.parametrize("wtype", ["Q4_0", "Q8_0"])
def test_an_adapter_trained_on_converted_weights_passes_the_export_check(
        tiny_model: Path, swarm_home: Path, tmp_path: Path, wtype: str) -> None:
    """Training dequantizes the file that is served, so an adapter trained there matches llama.cpp
    running the converted weights (the round's 0.99 cosine gate)."""
    from engine.recipes import load_recipe
    from engine.train.runner import TrainConfig, train_lora

    swarm_home.mkdir(parents=True, exist_ok=True)
    served = W.convert(tiny_model, wtype, swarm_home)
    spec = load_recipe("default")[0].train.model_copy(update={"steps": 4, "rank": 4, "alpha": 8, "batch_size": 2,
                                                              "max_seq_len": 64, "backend": "peft"})
    msgs = [[{"role": "user", "content": f"What is {i} + 2?"}, {"role": "assistant", "content": str(i + 2)}]
            for i in range(6)]
    trained = train_lora(TrainConfig(home=swarm_home, gguf=served, workdir=tmp_path / "train", spec=spec, seed=0,
                                     check_prompts=["What is 12 + 30?", "hello there"]), msgs)
    assert trained.cosine >= 0.99
    with Runtime(served, n_ctx=256, n_parallel=1) as rt:
        rt.set_adapter(trained.adapter_path).result(timeout=30)
