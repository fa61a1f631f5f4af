"""The batched runtime on a tiny random model: equality with solo runs, streaming, stops,
grammars, cancellation, continuous batching, LoRA swaps. One test uses the real model."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from engine.errors import ModelError
from engine.runtime import Request, Runtime, Sampling

GREEDY = Sampling(temperature=0.0, max_tokens=24)
PROMPTS = ["What is 2 + 2?", "Name a colour.", "Write a haiku about rain.", "Count to five.", "Hello!", "Why?"]


def chat(text: str, sampling: Sampling = GREEDY, **kw: object) -> Request:
    return Request(messages=[{"role": "user", "content": text}], sampling=sampling, **kw)  # type: ignore[arg-type]


def test_batched_greedy_equals_alone(tiny_runtime: Runtime) -> None:
    alone = [tiny_runtime.generate(chat(p)).text for p in PROMPTS]
    comps = [tiny_runtime.submit(chat(p)) for p in PROMPTS]  # 6 requests, 4 slots: continuous batching
    together = [c.result(timeout=60).text for c in comps]
    assert together == alone
    assert all(len(t) > 0 for t in alone)


def test_streaming_matches_result_and_callback(tiny_runtime: Runtime) -> None:
    seen: list[str] = []
    comp = tiny_runtime.submit(chat("Tell me a story.", Sampling(temperature=0.0, max_tokens=40), on_text=seen.append))
    pieces = list(comp)
    res = comp.result(timeout=60)
    assert "".join(pieces) == res.text == "".join(seen)
    assert len(pieces) > 1


def test_max_tokens(tiny_runtime: Runtime) -> None:
    res = tiny_runtime.generate(chat("Go on.", Sampling(temperature=0.0, max_tokens=7)))
    assert res.completion_tokens <= 7
    assert res.finish_reason in {"length", "eog"}
    assert res.prompt_tokens > 5


def test_stop_string_cuts_text_and_stream(tiny_runtime: Runtime) -> None:
    full = tiny_runtime.generate(chat("Once upon", Sampling(temperature=0.0, max_tokens=40))).text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert stop.strip(), full
    comp = tiny_runtime.submit(chat("Once upon", Sampling(temperature=0.0, max_tokens=40, stop=(stop,))))
    streamed = "".join(comp)
    res = comp.result(timeout=60)
    assert res.finish_reason == "stop"
    assert res.text == full[: full.index(stop)]
    assert streamed == res.text


def test_sampling_is_seeded(tiny_runtime: Runtime) -> None:
    s = Sampling(temperature=1.0, seed=123, max_tokens=16)
    a = tiny_runtime.generate(chat("Pick words.", s)).text
    b = tiny_runtime.generate(chat("Pick words.", s)).text
    c = tiny_runtime.generate(chat("Pick words.", Sampling(temperature=1.0, seed=124, max_tokens=16))).text
    assert a == b
    assert a != c


def test_grammar_constrains_output(tiny_runtime: Runtime) -> None:
    g = 'root ::= ("yes" | "no") "."'
    outs = [tiny_runtime.submit(chat(p, Sampling(temperature=1.0, seed=i, max_tokens=8, grammar=g))) for i, p in enumerate(PROMPTS)]
    texts = [c.result(timeout=60).text for c in outs]
    assert all(t in {"yes.", "no."} for t in texts), texts


def test_json_schema_output_parses(tiny_runtime: Runtime) -> None:
    schema = {
        "type": "object",
        "properties": {"correct": {"type": "boolean"}, "score": {"type": "integer"}},
        "required": ["correct", "score"],
    }
    res = tiny_runtime.generate(chat("Judge.", Sampling(temperature=0.8, seed=3, max_tokens=60, json_schema=schema)))
    data = json.loads(res.text)
    assert isinstance(data["correct"], bool) and isinstance(data["score"], int)


def test_bad_grammar_fails_only_that_request(tiny_runtime: Runtime) -> None:
    bad = tiny_runtime.submit(chat("x", Sampling(grammar="root ::= (")))
    good = tiny_runtime.submit(chat("y"))
    assert bad.result(timeout=60).finish_reason == "error"
    assert good.result(timeout=60).finish_reason in {"length", "eog"}


def test_a_request_without_a_string_prefix_is_refused_where_it_is_made() -> None:
    """Rendering failures fail a request quietly (an empty "error" result), so a prefix that
    cannot be rendered is refused when the request is made: a step check once passed None and
    every check came back empty, read as "unchecked"."""
    with pytest.raises(TypeError, match="assistant_prefix must be a string"):
        Request(messages=[{"role": "user", "content": "What is 2 + 2?"}], assistant_prefix=None)  # type: ignore[arg-type]
    assert Request(messages=[{"role": "user", "content": "hi"}]).assistant_prefix == ""


def test_cancel(tiny_runtime: Runtime) -> None:
    comp = tiny_runtime.submit(chat("Long.", Sampling(temperature=0.0, max_tokens=400)))
    first = next(iter(comp))  # it has started streaming
    comp.cancel()
    res = comp.result(timeout=60)
    assert first and res.finish_reason in {"cancelled", "eog"}


def test_submit_from_many_threads(tiny_runtime: Runtime) -> None:
    results: dict[int, str] = {}

    def worker(i: int) -> None:
        results[i] = tiny_runtime.generate(chat(PROMPTS[i % len(PROMPTS)])).text

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = {p: tiny_runtime.generate(chat(p)).text for p in PROMPTS}
    assert all(results[i] == expected[PROMPTS[i % len(PROMPTS)]] for i in range(12))


def test_context_overflow_is_truncated_not_raised(tiny_runtime: Runtime) -> None:
    res = tiny_runtime.generate(chat("word " * 2000, Sampling(temperature=0.0, max_tokens=8)))
    assert res.truncated_prompt
    assert res.finish_reason in {"length", "eog"}
    assert res.prompt_tokens < 512


def test_lora_swap_changes_and_restores(tiny_model: Path, tmp_path: Path) -> None:
    from tests.tiny_model import write_tiny_lora

    adapter = write_tiny_lora(tmp_path / "lora.gguf")
    with Runtime(tiny_model, n_ctx=256, n_parallel=2) as rt:
        base = [rt.generate(chat(p)).text for p in PROMPTS[:3]]
        rt.set_adapter(adapter).result(timeout=30)
        assert rt.adapter == str(adapter.resolve())
        tuned = [rt.generate(chat(p)).text for p in PROMPTS[:3]]
        assert tuned != base
        rt.set_adapter(None).result(timeout=30)
        assert [rt.generate(chat(p)).text for p in PROMPTS[:3]] == base
        rt.set_adapter(adapter).result(timeout=30)
        assert [rt.generate(chat(p)).text for p in PROMPTS[:3]] == tuned


def test_swap_waits_for_requests_in_flight(tiny_model: Path, tmp_path: Path) -> None:
    from tests.tiny_model import write_tiny_lora

    adapter = write_tiny_lora(tmp_path / "lora.gguf")
    with Runtime(tiny_model, n_ctx=256, n_parallel=2) as rt:
        base = rt.generate(chat("Hello!", Sampling(temperature=0.0, max_tokens=60))).text
        inflight = rt.submit(chat("Hello!", Sampling(temperature=0.0, max_tokens=60)))
        swap = rt.set_adapter(adapter)
        assert inflight.result(timeout=60).text == base  # finished on the old weights
        swap.result(timeout=60)


def test_bad_adapter_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    half = tmp_path / "half.gguf"
    from tests.tiny_model import write_tiny_lora

    data = write_tiny_lora(tmp_path / "ok.gguf").read_bytes()
    half.write_bytes(data[: len(data) // 2])
    with Runtime(tiny_model, n_ctx=256, n_parallel=1) as rt:
        with pytest.raises(ModelError, match="half.gguf"):
            rt.set_adapter(half).result(timeout=30)
        assert rt.adapter is None
        assert rt.generate(chat("still fine")).finish_reason in {"length", "eog"}


def test_real_model_batched_equals_alone(real_model: Path) -> None:
    questions = ["What is 12 + 30?", "What is the capital of France?", "Say hello.", "What is 7 + 5?"]

    def ask(q: str) -> Request:
        return Request(
            messages=[{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": q}],
            sampling=Sampling(temperature=0.0, max_tokens=24),
        )

    with Runtime(real_model, n_ctx=512, n_parallel=4) as rt:
        alone = [rt.generate(ask(q)).text for q in questions]
        comps = [rt.submit(ask(q)) for q in questions]
        assert [c.result(timeout=120).text for c in comps] == alone
        assert "Paris" in alone[1]  # the model's own chat template is in use


LONG_SYSTEM = "You are a careful assistant. Think about the question, then answer it in one short sentence."


def test_prefix_cache_shares_and_finishes_everything(tiny_model: Path) -> None:
    """Requests with a common prompt head copy its KV cells; every request still completes,
    including sharers whose source is cancelled before it decoded the prefix."""
    def ask(q: str, n: int = 12) -> Request:
        return Request(messages=[{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": q}],
                       sampling=Sampling(temperature=0.0, max_tokens=n))

    with Runtime(tiny_model, n_ctx=512, n_parallel=4, n_batch=256, prefix_cache=True) as rt:
        comps = [rt.submit(ask(p)) for p in PROMPTS]
        results = [c.result(timeout=60) for c in comps]
        assert all(r.finish_reason in {"length", "eog"} and r.error is None for r in results)
        assert rt.stats["shared_prompt_tokens"] > 0
        assert all(r.prompt_tokens > 0 for r in results)
        for _ in range(5):
            first = rt.submit(ask("Why?", 40))
            first.cancel()
            rest = [rt.submit(ask(p)) for p in PROMPTS[:3]]
            assert all(c.result(timeout=60).finish_reason in {"length", "eog"} for c in rest)


def test_real_model_prefix_cache_answers_stay_right(real_model: Path) -> None:
    """A wrongly copied prefix turns answers into noise; shared ones must still say Paris."""
    def ask(q: str) -> Request:
        return Request(messages=[{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": q}],
                       sampling=Sampling(temperature=0.0, max_tokens=16))

    questions = ["What is the capital of France?"] * 3 + ["Say hello.", "What is the capital of France? Be brief."]
    with Runtime(real_model, n_ctx=512, n_parallel=4, prefix_cache=True) as rt:
        texts = [c.result(timeout=120).text for c in [rt.submit(ask(q)) for q in questions]]
        assert rt.stats["shared_prompt_tokens"] >= 4 * 20
    assert all("Paris" in texts[i] for i in (0, 1, 2, 4)), texts


def test_adapters_are_known_by_content_not_path(tiny_model: Path, tmp_path: Path) -> None:
    """A new adapter written where an old one was is loaded, not mistaken for the old one; a
    recorded sha256 that no longer matches the file is refused."""
    import shutil

    from engine.models import sha256_file
    from tests.tiny_model import write_tiny_lora

    first = write_tiny_lora(tmp_path / "a.gguf", seed=1)
    second = write_tiny_lora(tmp_path / "b.gguf", seed=2)
    path = tmp_path / "adapter.gguf"
    shutil.copy(first, path)
    with Runtime(tiny_model, n_ctx=256, n_parallel=2) as rt:
        rt.set_adapter(path).result(timeout=30)
        one = [rt.generate(chat(p)).text for p in PROMPTS[:3]]
        assert rt.serves(path) and rt.serves(first) and not rt.serves(second) and not rt.serves(None)
        shutil.copy(second, path)  # same path, other weights
        assert not rt.serves(path)
        rt.set_adapter(path).result(timeout=30)
        two = [rt.generate(chat(p)).text for p in PROMPTS[:3]]
        assert two != one and rt.adapter_sha256 == sha256_file(second)
        with pytest.raises(ModelError, match="changed since it was recorded"):
            rt.set_adapter(path, sha256=sha256_file(first)).result(timeout=30)


def test_owner_thread_failure_fails_every_request(tiny_model: Path) -> None:
    """An unexpected exception in the owner thread reaches every waiting and every later caller
    as RuntimeFailed; nobody hangs."""
    from engine.errors import RuntimeFailed

    rt = Runtime(tiny_model, n_ctx=256, n_parallel=2)
    try:
        assert rt.generate(chat("Hello!")).text  # healthy first

        def boom(*args: object) -> None:
            raise RuntimeError("injected failure")

        rt._put = boom  # type: ignore[method-assign]  # the next batch build blows up
        comps = rt.submit_many([chat(p) for p in PROMPTS])
        swap = rt.set_adapter(None)
        for c in comps:
            with pytest.raises(RuntimeFailed, match="injected failure"):
                c.result(timeout=30)
            list(c)  # iteration ends instead of blocking
            assert c.done()
        with pytest.raises(RuntimeFailed):
            swap.result(timeout=30)
        with pytest.raises(RuntimeFailed, match="injected failure"):
            rt.submit(chat("later"))
    finally:
        rt.close()


def test_submit_during_or_after_close_fails_at_once(tiny_model: Path) -> None:
    from engine.errors import RuntimeClosed

    rt = Runtime(tiny_model, n_ctx=256, n_parallel=2)
    stop = threading.Event()
    outcomes: list[str] = []

    def hammer() -> None:
        while not stop.is_set():
            try:
                c = rt.submit(chat("Hi", Sampling(temperature=0.0, max_tokens=4)))
            except RuntimeClosed:
                outcomes.append("refused")
                return
            r = c.result(timeout=30)  # never hangs: finished, or cancelled by the close
            outcomes.append(r.finish_reason)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    rt.close()
    stop.set()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert outcomes.count("refused") == 4
    with pytest.raises(RuntimeClosed):
        rt.submit(chat("after"))


def test_submit_many_gives_the_same_outputs_every_time(tiny_model: Path) -> None:
    """Sampled requests handed over together decode the same way on every run, whatever ran
    before them (the cache is reset when the batch drains)."""
    def batch() -> list[str]:
        reqs = [chat(p, Sampling(temperature=1.0, seed=i, max_tokens=20)) for i, p in enumerate(PROMPTS * 2)]
        return [c.result(timeout=60).text for c in rt.submit_many(reqs)]

    with Runtime(tiny_model, n_ctx=256, n_parallel=4, prefix_cache=True) as rt:
        first = batch()
        rt.generate(chat("something else first " * 5))
        assert batch() == first
    with Runtime(tiny_model, n_ctx=256, n_parallel=4, prefix_cache=True) as rt:
        assert batch() == first


def test_cpu_probe_decides_extra_buffers(monkeypatch: pytest.MonkeyPatch, real_model: Path, tmp_path: Path) -> None:
    """Where the CPU lists AMX, a child process decodes with llama.cpp's extra buffer types; if it
    dies, models load without them and llama-server gets --no-repack. A CPU without AMX, or
    $SWARM_CPU_EXTRA_BUFFERS, decides without a probe. Without the extra buffers the real model
    decodes on any machine (the probe's own run with $SWARM_CPU_EXTRA_BUFFERS=0)."""
    import os
    import subprocess
    import sys

    from engine.runtime import cpu_probe
    from engine.runtime.server import LlamaServer

    def fresh(flags: set[str], rc: int | None = None, env: str | None = None) -> bool:
        monkeypatch.setattr(cpu_probe, "_usable", None)
        monkeypatch.setattr(cpu_probe, "cpu_flags", lambda: flags)
        if env is None:
            monkeypatch.delenv("SWARM_CPU_EXTRA_BUFFERS", raising=False)
        else:
            monkeypatch.setenv("SWARM_CPU_EXTRA_BUFFERS", env)
        runs: list[list[str]] = []

        def fake_run(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[bytes]:
            runs.append(cmd)
            return subprocess.CompletedProcess(cmd, rc if rc is not None else 0, b"", b"")

        monkeypatch.setattr(cpu_probe.subprocess, "run", fake_run)
        usable = cpu_probe.extra_buffers_usable()
        assert bool(runs) == (env is None and "amx_tile" in flags)  # probed only where AMX is listed
        return usable

    assert fresh({"avx2"}) and "no AMX" in cpu_probe.reason
    assert not fresh({"avx2", "amx_tile"}, rc=-4) and "SIGILL" in cpu_probe.reason
    server = LlamaServer(real_model, slots=1, n_ctx=64)
    assert "--no-repack" in server.command()
    assert fresh({"amx_tile"}, rc=0) and "--no-repack" not in server.command()
    assert not fresh({"amx_tile"}, env="0") and fresh({"amx_tile"}, env="1")
    monkeypatch.undo()
    plain = subprocess.run([sys.executable, "-m", "engine.runtime.cpu_probe", str(real_model)],
                           cwd=Path(__file__).resolve().parents[1], capture_output=True,
                           env={**os.environ, "SWARM_CPU_EXTRA_BUFFERS": "0"})
    assert plain.returncode == 0, plain.stderr[-500:]
