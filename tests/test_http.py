"""The openai backend against real llama-server processes (engine.runtime.http, engine.runtime.server).

Every test here runs llama.cpp's own server, built by ``swarm llama-server build`` (CI builds it
before the tests); none is mocked. A missing binary fails the tests with the message that says
how to build it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from engine.api import Engine
from engine.errors import RecipeError, RuntimeFailed
from engine.models import sha256_file
from engine.recipes import load_recipe
from engine.runtime import Request, Runtime, Sampling
from engine.runtime.http import Endpoint, HttpRuntime
from engine.runtime.server import LlamaServer, ServerError, require_server
from tests.conftest import small_recipe


@pytest.fixture(scope="module")
def server_binary() -> Path:
    return require_server()  # a ServerError here says: run `swarm llama-server build`


def _reqs(n: int, max_tokens: int = 24, role: str = "") -> list[Request]:
    return [Request(messages=[{"role": "user", "content": f"What is {i} + {2 * i + 1}?"}], role=role,
                    sampling=Sampling(temperature=0.0, max_tokens=max_tokens)) for i in range(n)]


def _launched(model: Path, tmp_path: Path, name: str, slots: int = 2, roles: frozenset[str] = frozenset()) -> Endpoint:
    return Endpoint(url="", slots=slots, roles=roles,
                    launched=LlamaServer(model, slots=slots, n_ctx=512, threads=1, log_file=tmp_path / f"{name}.log"))


def test_a_launched_llama_server_answers_like_the_in_process_runtime(server_binary: Path, tiny_model: Path,
                                                                     tmp_path: Path) -> None:
    reqs = _reqs(6)
    with Runtime(tiny_model, n_ctx=512, n_parallel=2) as rt:
        local = [c.result() for c in rt.submit_many(reqs)]
    with HttpRuntime(tiny_model, [_launched(tiny_model, tmp_path, "a")], n_ctx=512) as rt:
        remote = [c.result() for c in rt.submit_many(_reqs(6))]
        # grammar, JSON schema and stop strings reach the server's sampler
        g = rt.generate(Request(prompt="Verdict:", sampling=Sampling(temperature=0.0, max_tokens=12,
                                                                      grammar='root ::= "yes" | "no"')))
        js = rt.generate(Request(prompt="JSON:", sampling=Sampling(temperature=0.9, seed=3, max_tokens=40, json_schema={
            "type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]})))
        streamed: list[str] = []
        st = rt.submit(Request(prompt="a b c", sampling=Sampling(temperature=0.0, max_tokens=30),
                               on_text=streamed.append))
        res = st.result()
        assert rt.stats["generated_tokens"] > 0 and rt.n_parallel == 2
    # the same tokens in, the same greedy tokens out: the server links the very llama.cpp libraries
    assert [r.text for r in remote] == [r.text for r in local]
    assert [(r.prompt_tokens, r.completion_tokens, r.finish_reason) for r in remote] == \
        [(r.prompt_tokens, r.completion_tokens, r.finish_reason) for r in local]
    assert all(r.endpoint.startswith("launched:http://127.0.0.1:") for r in remote)
    assert all(r.endpoint == "inprocess" for r in local)
    assert g.text in ("yes", "no")
    assert json.loads(js.text)["ok"] in (True, False)
    assert "".join(streamed) == res.text and len(streamed) > 1


def test_requests_spread_over_endpoints_and_roles_choose_theirs(server_binary: Path, tiny_model: Path,
                                                                tmp_path: Path) -> None:
    a = _launched(tiny_model, tmp_path, "a")
    b = _launched(tiny_model, tmp_path, "b")
    judges = _launched(tiny_model, tmp_path, "j", slots=1, roles=frozenset({"judge"}))
    with HttpRuntime(tiny_model, [a, b, judges], n_ctx=512) as rt:
        out = [c.result() for c in rt.submit_many(_reqs(12, role="solver") + _reqs(3, role="judge"))]
    by = {r.endpoint for r in out[:12]}
    assert a.served > 0 and b.served > 0 and len(by) == 2  # free slots on both took solver requests
    assert judges.name not in by  # a judges-only endpoint takes nothing else
    assert a.served + b.served + judges.served == 15


def test_a_killed_server_loses_no_request(server_binary: Path, tiny_model: Path, tmp_path: Path) -> None:
    a = _launched(tiny_model, tmp_path, "a")
    b = _launched(tiny_model, tmp_path, "b")
    with HttpRuntime(tiny_model, [a, b], n_ctx=512) as rt:
        comps = rt.submit_many(_reqs(24, max_tokens=128))  # enough work that the kill lands mid-batch
        while a.served + b.served < 2:
            time.sleep(0.01)
        assert a.launched is not None
        a.launched.kill()  # mid-phase: its requests in flight break off
        out = [c.result(timeout=120) for c in comps]
        assert all(r.finish_reason in ("eog", "length") and r.text for r in out)
        assert rt.stats["retries"] >= 1 and a.failures >= 1
        # a launched server that died is started again when probed
        deadline = time.monotonic() + 60
        while a.down is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert a.down is None and a.launched.running()
        assert rt.generate(_reqs(1)[0]).text


def test_no_endpoint_up_fails_the_requests_instead_of_hanging(server_binary: Path, tiny_model: Path,
                                                                tmp_path: Path) -> None:
    dead = Endpoint(url="http://127.0.0.1:9", slots=1)  # nothing listens on the discard port
    with HttpRuntime(tiny_model, [dead], n_ctx=512, wait_down=1.0) as rt:
        c = rt.submit(_reqs(1)[0])
        with pytest.raises(RuntimeFailed, match="no inference endpoint is up.*127.0.0.1:9"):
            c.result(timeout=30)


def test_adapters_reach_launched_and_external_servers(server_binary: Path, tiny_model: Path, tmp_path: Path) -> None:
    from tests.tiny_model import write_tiny_lora

    tiny_adapter = write_tiny_lora(tmp_path / "adapter.gguf", seed=1)
    sha = sha256_file(tiny_adapter)
    req = Request(prompt="The answer is", sampling=Sampling(temperature=0.0, max_tokens=16))
    with Runtime(tiny_model, n_ctx=512, n_parallel=1) as rt:
        base = rt.generate(req).text
        rt.set_adapter(tiny_adapter, scale=4.0).result()
        tuned = rt.generate(req).text
    assert base != tuned
    with HttpRuntime(tiny_model, [_launched(tiny_model, tmp_path, "a")], n_ctx=512) as rt:
        assert rt.generate(req).text == base
        rt.set_adapter(tiny_adapter, scale=4.0, sha256=sha).result()  # restarts the server with the file
        assert rt.serves(tiny_adapter) and rt.generate(req).text == tuned
        rt.set_adapter(None).result()
        assert rt.serves(None) and rt.generate(req).text == base
    # an external llama-server: the adapter must be loaded at its start, from the shared directory
    shared = tmp_path / "adapters"
    server = LlamaServer(tiny_model, slots=1, n_ctx=512, threads=1, log_file=tmp_path / "ext.log")
    server.start()
    try:
        with HttpRuntime(tiny_model, [Endpoint(url=server.url, slots=1)], n_ctx=512, adapter_dir=shared) as rt:
            with pytest.raises(ServerError, match=f"no adapter {sha}.gguf loaded.*--lora {shared}/{sha}.gguf"):
                rt.set_adapter(tiny_adapter, scale=4.0).result()
        assert (shared / f"{sha}.gguf").exists()  # copied where the servers read adapters
        server.stop()
        server.extra = ["--lora-init-without-apply", "--lora", str(shared / f"{sha}.gguf")]
        server.start()
        with HttpRuntime(tiny_model, [Endpoint(url=server.url, slots=1)], n_ctx=512, adapter_dir=shared) as rt:
            rt.set_adapter(tiny_adapter, scale=4.0).result()
            assert rt.generate(req).text == tuned  # the request names the adapter by the server's id
            rt.set_adapter(None).result()
            assert rt.generate(req).text == base
    finally:
        server.stop()


def test_recipes_describe_endpoints_and_refuse_bad_ones(tmp_path: Path, tiny_model: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def recipe(extra: str) -> Path:
        return small_recipe(tmp_path, tiny_model, **{"[model]": f"[model]\n{extra}"})

    ok = load_recipe(str(recipe('backend = "openai"\nendpoints = [{launch = true, slots = 2}, '
                                '{url = "http://gpu:8080", slots = 8, roles = ["solver"], api_key_env = "GPU_KEY"}]')))[0]
    assert [e.launch for e in ok.model.endpoints] == [True, False] and ok.model.endpoints[1].roles == ["solver"]
    for extra, why in [
        ('backend = "openai"', "model: .*needs endpoints"),
        ('endpoints = [{launch = true}]', "model: .*endpoints are for backend"),
        ('backend = "openai"\nendpoints = [{launch = true, url = "http://x:1"}]', r"model\.endpoints\[0\]: .*either url or launch"),
        ('backend = "openai"\nendpoints = [{url = "gpu:8080"}]', r"model\.endpoints\[0\]: .*http://"),
        ('backend = "openai"\nendpoints = [{url = "http://x:1", kind = "tgi"}]', r"model\.endpoints\[0\]\.kind"),
        ('backend = "openai"\nendpoints = [{url = "http://x:1", roles = ["boss"]}]', r"model\.endpoints\[0\]\.roles"),
        ('backend = "openai"\nendpoints = [{url = "http://x:1", roles = ["solver"]}]',
         "model.endpoints: no endpoint serves the role.s. critic, judge, proposer"),
    ]:
        with pytest.raises(RecipeError, match=why):
            load_recipe(str(recipe(extra)))
    monkeypatch.delenv("GPU_KEY", raising=False)
    eng = Engine.open()
    with pytest.raises(Exception, match=r"model.endpoints\[1\].api_key_env: \$GPU_KEY is not set"):
        eng.runtime_for(ok)
    eng.close()


@pytest.mark.slow
def test_a_round_with_training_on_a_launched_llama_server_matches_in_process(server_binary: Path,
                                                                              tmp_path: Path) -> None:
    """The whole loop on the real model with agents on llama-server: the same phases, row counts and
    verdict structure as in-process, the adapter swapped on the server, every row naming its endpoint."""
    overrides = {"steps = 30": "steps = 3", "difficulty = 2": "difficulty = 1", "generated = 24": "generated = 6"}
    shapes = []
    for backend in ("inprocess", "openai"):
        extra = "" if backend == "inprocess" else 'backend = "openai"\nendpoints = [{launch = true, slots = 8}]\n'
        (tmp_path / backend).mkdir()
        recipe = small_recipe(tmp_path / backend, "builtin:smollm2-135m", **overrides, **{"[model]": f"[model]\n{extra}"})
        eng = Engine.open(tmp_path / backend / "home")
        run_id = eng.create_run(str(recipe), rounds=1, train=True)
        assert eng.play(run_id) == "finished"
        q = eng.store.execute
        shape = {t: q(f"select count(*) from {t} where run_id = ?", [run_id])[0][0]
                 for t in ("tasks", "attempts", "critiques", "verdicts", "training_runs", "adapters")}
        shape["phases"] = q("select phase, status from rounds where run_id = ?", [run_id])
        shape["turns"] = q("select turn, count(*) from attempts where run_id = ? group by turn order by turn", [run_id])
        shape["verdicts"] = sorted({t for (t,) in q("select judge_text from verdicts where run_id = ?", [run_id])})
        endpoints = {e for t in ("attempts", "critiques", "verdicts")
                     for (e,) in q(f"select distinct endpoint from {t} where run_id = ?", [run_id])}
        shapes.append(shape)
        adapters = q("select path, promoted from adapters where run_id = ?", [run_id])
        assert adapters and q("select status from training_runs where run_id = ?", [run_id]) == [("done",)]
        promoted = [p for p, ok in adapters if ok]
        rt = eng._runtime
        assert rt is not None and rt.serves(promoted[-1] if promoted else None)
        if backend == "openai":
            assert len(endpoints) == 1 and endpoints.pop().startswith("launched:http://127.0.0.1:")
            server = rt.endpoints[0].launched  # type: ignore[union-attr]
            assert server is not None and server.running()
            assert server.lora == ((promoted[-1], 1.0) if promoted else None)  # swapped on the server
            exported = {p for p, _ in adapters}
            assert server.starts[0] is None and any(s is not None and s[0] in exported for s in server.starts)
        else:
            assert endpoints == {"inprocess"}
        eng.close()
    assert shapes[0] == shapes[1]


def test_doctor_checks_every_endpoint(server_binary: Path, tiny_model: Path, tmp_path: Path) -> None:
    from engine.doctor import check_endpoints

    server = LlamaServer(tiny_model, slots=2, n_ctx=512, threads=1, log_file=tmp_path / "s.log")
    server.start()
    try:
        rec = load_recipe(str(small_recipe(tmp_path, tiny_model, **{"[model]": (
            f'[model]\nbackend = "openai"\nendpoints = [{{url = "{server.url}", slots = 4}}, {{launch = true}}, '
            '{url = "http://127.0.0.1:9"}]')})))[0]
        checks = check_endpoints(rec.model)
    finally:
        server.stop()
    assert [c.name for c in checks] == ["llama-server", "endpoint 0", "endpoint 1", "endpoint 2"]
    assert checks[0].ok and checks[0].detail == str(server_binary)
    live = checks[1]
    assert live.ok and f"model {tiny_model.name}, 2 slots (the recipe sends 4 at once), 0 LoRA adapter(s)" in live.detail
    assert checks[2].ok and "launched on this machine" in checks[2].detail
    assert not checks[3].ok and "unreachable" in checks[3].detail


def test_endpoints_benchmark_compares_in_process_and_servers(server_binary: Path, tiny_model: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import common, endpoints

    monkeypatch.setenv(common.OUT_ENV, str(tmp_path))
    out = endpoints.run(quick=True, model=str(tiny_model))
    data = json.loads((tmp_path / "endpoints.json").read_text())
    assert [r["config"] for r in data["rows"]] == ["in-process", "1 llama-server", "2 llama-servers"]
    assert data["ratios"]["http_vs_inprocess_8"] == out["ratios"]["http_vs_inprocess_8"] > 0
    assert all(r["n8"]["tokens"] > 0 for r in data["rows"]) and all(n > 0 for n in data["rows"][2]["served"])


def test_a_round_survives_a_server_killed_mid_phase(server_binary: Path, tiny_model: Path, tmp_path: Path) -> None:
    """A round on two launched servers, one killed while the debate streams: the round finishes
    with every row, the same counts as in-process, and rows from both servers."""
    import engine.events as ev

    shapes = []
    for backend in ("inprocess", "openai"):
        extra = "" if backend == "inprocess" else \
            'backend = "openai"\nendpoints = [{launch = true, slots = 2}, {launch = true, slots = 2}]\n'
        (tmp_path / backend).mkdir()
        recipe = small_recipe(tmp_path / backend, tiny_model, **{"[model]": f"[model]\n{extra}"})
        eng = Engine.open(tmp_path / backend / "home")
        killed: list[str] = []

        def kill_one(e: ev.Event, eng: Engine = eng, killed: list[str] = killed) -> None:
            rt = eng._runtime
            if isinstance(e, ev.PhaseProgress) and e.phase == "debate" and e.done >= 1 and not killed \
                    and isinstance(rt, HttpRuntime):
                server = rt.endpoints[0].launched
                assert server is not None
                killed.append(rt.endpoints[0].url)
                threading.Thread(target=server.kill).start()

        eng.subscribe(kill_one)
        run_id = eng.create_run(str(recipe), rounds=1, train=False)
        assert eng.play(run_id) == "finished"
        q = eng.store.execute
        shapes.append({t: q(f"select count(*) from {t} where run_id = ?", [run_id])[0][0]
                       for t in ("tasks", "attempts", "critiques", "verdicts")})
        by = dict(q("select endpoint, count(*) from attempts where run_id = ? group by endpoint", [run_id]))
        if backend == "openai":
            rt = eng._runtime
            assert isinstance(rt, HttpRuntime) and killed and rt.endpoints[0].failures >= 1
            assert len(by) >= 2 and all(k.startswith("launched:") for k in by)  # a restarted one has a new port
        else:
            assert set(by) == {"inprocess"}
        eng.close()
    assert shapes[0] == shapes[1]
