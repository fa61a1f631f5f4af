"""Agents on OpenAI-compatible inference servers: llama.cpp's ``llama-server`` (and vLLM).

``HttpRuntime`` has the in-process Runtime's interface (submit, submit_many, stream, cancel,
set_adapter, serves, chat, tokenize), so the rounds cannot tell them apart. Prompts are rendered
and tokenized here, with the local GGUF's own template and vocabulary, and sent as token ids:
a server sees exactly the tokens the in-process runtime would decode, truncated the same way.

Endpoints share one queue. Each endpoint has as many worker threads as slots; a worker takes the
oldest request its endpoint serves (all roles, or the roles it lists), so requests spread over
endpoints by free slots. An endpoint that refuses the connection, times out or answers 5xx is
marked down and its request goes back to the head of the queue for another endpoint; a down
endpoint is probed again every few seconds (a launched server that died is started again). When
no endpoint that serves a request has been up for ``wait_down`` seconds, the request fails with
RuntimeFailed: the phase stops before writing anything and the run resumes later. Each Result
names the endpoint that served it.

Adapter changes are barriers, as in-process: requests submitted before run on the old weights.
A launched llama-server is restarted with the adapter (``--lora-scaled``: llama-server loads
adapter files only at start); an external llama-server must already have the file loaded
(``--lora DIR/<sha256>.gguf --lora-init-without-apply``) and each request names it by id.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError, ModelError, RuntimeClosed, RuntimeFailed
from engine.models import check_gguf, resolve_model
from engine.runtime.chat import ChatTemplate
from engine.runtime.llama import (Completion, Request, Result, Vocab, adapter_key, check_adapter_fits, checked_adapter,
                                  fit_prompt, render_request)
from engine.runtime.server import LlamaServer, ServerError, health

log = logging.getLogger(__name__)

PROBE_SECONDS = 3.0


@dataclass
class Endpoint:
    """One server: where it is, how many requests it takes at once, what it serves."""

    url: str
    slots: int = 4
    kind: str = "llama-server"  # llama-server | vllm
    api_key: str | None = None
    roles: frozenset[str] = frozenset()  # empty: every role
    timeout: float = 300.0
    launched: LlamaServer | None = None
    down: str | None = None  # why it is down (None: up)
    down_since: float = 0.0
    served: int = 0
    failures: int = 0
    #: an external llama-server: the scale of every adapter it holds, for the adapter served now
    lora: list[dict[str, Any]] | None = None
    model: str = ""  # the name a vLLM request asks for
    lora_name: str | None = None  # vLLM: the loaded adapter requests ask for instead (None: the base)
    vllm_loaded: set[str] = field(default_factory=set)
    probing: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.url if self.launched is None else f"launched:{self.url}"

    def serves_role(self, role: str) -> bool:
        return not self.roles or not role or role in self.roles


class _Barrier:
    def __init__(self, path: str | None, scale: float, sha256: str | None) -> None:
        self.path, self.scale, self.sha256 = path, scale, sha256
        self.fut: Future[None] = Future()


class _EndpointDown(Exception):
    """The endpoint failed this request in a way that says nothing about the request."""


class HttpRuntime:
    """Generation on inference servers; see the module's doc. Raises ModelError when the local
    model file (needed for its vocabulary and template) is bad, ServerError when a launched
    server does not start."""

    def __init__(self, model: str | os.PathLike[str], endpoints: Sequence[Endpoint], *, n_ctx: int = 2048,
                 adapter_dir: Path | None = None, wait_down: float = 60.0) -> None:
        if not endpoints:
            raise EngineError("the openai backend needs at least one endpoint")
        path = resolve_model(str(model))
        self.info = check_gguf(path)
        self.path = path
        self.n_ctx_seq = n_ctx
        self.endpoints = list(endpoints)
        self.n_parallel = sum(e.slots for e in self.endpoints)
        self.adapter_dir = adapter_dir
        self.wait_down = wait_down
        self._vocab = Vocab(path)
        self.bos_text = self._vocab.bos_text
        self.chat = ChatTemplate(self.info.chat_template, self._vocab.bos_text, self._vocab.eos_text)
        self.adapter: str | None = None
        self.adapter_sha256: str | None = None
        self._scale = 1.0
        self.stats = {"steps": 0, "decoded_tokens": 0, "generated_tokens": 0, "decode_seconds": 0.0,
                      "shared_prompt_tokens": 0, "retries": 0}
        self._cv = threading.Condition()
        self._queue: deque[Completion | _Barrier] = deque()
        self._busy = 0
        self._inflight: set[Completion] = set()
        self._closed = False
        self._failure: BaseException | None = None
        self._threads: list[threading.Thread] = []
        try:
            for e in self.endpoints:
                if e.launched is not None:
                    e.launched.start()
                    e.url = e.launched.url
        except BaseException:
            self._stop_servers()
            self._vocab.close()
            raise
        for e in self.endpoints:
            for i in range(e.slots):
                t = threading.Thread(target=self._worker, args=(e, i), name=f"swarm-http-{e.url}-{i}", daemon=True)
                t.start()
                self._threads.append(t)
        self._swapper = threading.Thread(target=self._swap_loop, name="swarm-http-adapters", daemon=True)
        self._swapper.start()

    # -- the Runtime interface ---------------------------------------------------------------------

    def submit(self, request: Request) -> Completion:
        return self.submit_many([request])[0]

    def submit_many(self, requests: Sequence[Request]) -> list[Completion]:
        for r in requests:
            if r.prompt is None and r.messages is None:
                raise ValueError("a request needs messages or a prompt")
        comps = [Completion(r) for r in requests]
        for c in comps:
            c.queued_at = time.monotonic()  # type: ignore[attr-defined]
        with self._cv:
            self._check_open()
            self._queue.extend(comps)
            self._cv.notify_all()
        return comps

    def generate(self, request: Request) -> Result:
        return self.submit(request).result()

    def _check_open(self) -> None:
        if self._failure is not None:
            raise RuntimeFailed(f"the model runtime failed: {self._failure}") from self._failure
        if self._closed:
            raise RuntimeClosed("the runtime is closed")

    def set_adapter(self, path: str | os.PathLike[str] | None, scale: float = 1.0,
                    sha256: str | None = None) -> Future[None]:
        """Serve the adapter at ``path`` (None: the base model) on every endpoint, after the
        requests submitted before this call; see the module's doc for how it reaches each kind."""
        b = _Barrier(None if path is None else str(Path(path).resolve()), scale, sha256)
        with self._cv:
            self._check_open()
            self._queue.append(b)
            self._cv.notify_all()
        return b.fut

    def serves(self, path: str | os.PathLike[str] | None) -> bool:
        if path is None:
            return self.adapter_sha256 is None
        return self.adapter_sha256 is not None and self.adapter_sha256 == adapter_key(path)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return self._vocab.tokenize(text, add_special)

    def render(self, request: Request) -> str:
        return render_request(self.chat, request)

    def close(self) -> None:
        with self._cv:
            if self._closed:
                return
            self._closed = True
            left = [x for x in self._queue]
            self._queue.clear()
            for c in self._inflight:  # requests streaming now end as cancelled
                c.cancel()
            self._cv.notify_all()
        for x in left:
            if isinstance(x, _Barrier):
                x.fut.set_exception(RuntimeClosed("the runtime is closed"))
            else:
                x._finish(Result("", "cancelled", 0, 0, 0.0, endpoint=""))
        for t in self._threads:
            t.join(timeout=30)
        self._swapper.join(timeout=30)
        self._stop_servers()
        self._vocab.close()

    def _stop_servers(self) -> None:
        for e in self.endpoints:
            if e.launched is not None:
                e.launched.stop()

    def __enter__(self) -> HttpRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- dispatch ---------------------------------------------------------------------------------

    def _take(self, e: Endpoint) -> Completion | None:
        """The oldest request before the first barrier that ``e`` serves; None when closed."""
        with self._cv:
            while True:
                if self._closed:
                    return None
                if e.down is None:
                    for i, x in enumerate(self._queue):
                        if isinstance(x, _Barrier):
                            break
                        if e.serves_role(x.request.role):
                            del self._queue[i]
                            self._busy += 1
                            self._inflight.add(x)
                            return x
                else:
                    self._cv.wait(timeout=PROBE_SECONDS)
                    if not self._closed and e.down is not None and e.probing.acquire(blocking=False):
                        self._cv.release()  # one worker of the endpoint probes it, without the lock
                        try:
                            self._probe(e)
                        finally:
                            e.probing.release()
                            self._cv.acquire()
                    self._fail_stranded()
                    continue
                self._fail_stranded()
                self._cv.wait(timeout=1.0)

    def _fail_stranded(self) -> None:
        """(under the lock) Fail requests that no up endpoint serves once ``wait_down`` has passed."""
        now = time.monotonic()
        for x in list(self._queue):
            if isinstance(x, _Barrier):
                break
            able = [e for e in self.endpoints if e.serves_role(x.request.role)]
            if any(e.down is None for e in able):
                continue
            since = max([getattr(x, "queued_at", now)] + [e.down_since for e in able])
            if now - since >= self.wait_down:
                self._queue.remove(x)
                why = "; ".join(f"{e.name}: {e.down}" for e in able) or f"none serves role {x.request.role!r}"
                x._fail(RuntimeFailed(f"no inference endpoint is up ({why})"))

    def _probe(self, e: Endpoint) -> None:
        if e.launched is not None and not e.launched.running():
            try:
                e.launched.start()
                e.url = e.launched.url
            except ServerError as err:
                e.down = str(err)
                return
        if health(e.url, timeout=5.0, api_key=e.api_key) == "ok":
            log.info("endpoint %s is up again", e.name)
            with self._cv:
                e.down = None
                self._cv.notify_all()

    def _mark_down(self, e: Endpoint, why: str) -> None:
        with self._cv:
            if e.down is None:
                log.warning("endpoint %s is down: %s", e.name, why)
                e.down, e.down_since = why, time.monotonic()
                e.failures += 1
            self._cv.notify_all()

    def _worker(self, e: Endpoint, slot: int) -> None:
        # llama-server reuses a slot's cached prompt even when the request's adapter differs from the
        # one it was computed under: each worker owns one slot (id_slot) and sends its first request
        # after an adapter change without the cache
        cached_under: list[str | None] = ["none yet"]
        while True:
            comp = self._take(e)
            if comp is None:
                return
            try:
                if comp.cancelled.is_set():
                    comp._finish(Result("", "cancelled", 0, 0, 0.0, endpoint=e.name))
                    continue
                # one connection per request: a kept-alive one the server closed while idle would
                # read as the server being down
                conn = _connect(e.url, e.timeout)
                try:
                    result = self._serve(e, conn, comp, slot, cached_under)
                    e.served += 1
                    comp._finish(result)
                except _EndpointDown as down:
                    self._mark_down(e, str(down))
                    with self._cv:
                        self.stats["retries"] += 1
                        if self._closed:
                            comp._finish(Result("", "cancelled", 0, 0, 0.0, endpoint=e.name))
                        else:
                            self._queue.appendleft(comp)  # another endpoint (or this one, back up) takes it
                except Exception as err:  # this request's own failure
                    log.exception("request failed on %s", e.name)
                    comp._finish(Result("", "error", 0, 0, 0.0, error=str(err), endpoint=e.name))
                finally:
                    conn.close()
            finally:
                with self._cv:
                    self._busy -= 1
                    self._inflight.discard(comp)
                    self._cv.notify_all()

    def _swap_loop(self) -> None:
        while True:
            with self._cv:
                while not self._closed and not (self._queue and isinstance(self._queue[0], _Barrier) and self._busy == 0):
                    self._cv.wait()
                if self._closed:
                    return
                b = self._queue.popleft()
                assert isinstance(b, _Barrier)
            try:
                self._apply(b)
                b.fut.set_result(None)
            except Exception as err:
                b.fut.set_exception(err if isinstance(err, EngineError) else ModelError(str(err)))
            with self._cv:
                self._cv.notify_all()

    def _apply(self, b: _Barrier) -> None:
        sha = None
        if b.path is not None:
            sha = checked_adapter(b.path, b.sha256)
            check_adapter_fits(b.path, self.info.architecture)
        if sha == self.adapter_sha256 and b.scale == self._scale:
            self.adapter = b.path
            return
        shared = None
        if b.path is not None and sha is not None and self.adapter_dir is not None:
            self.adapter_dir.mkdir(parents=True, exist_ok=True)
            shared = self.adapter_dir / f"{sha}.gguf"
            if not shared.exists():
                tmp = shared.with_suffix(".part")
                shutil.copyfile(b.path, tmp)
                tmp.replace(shared)
        for e in self.endpoints:
            if e.launched is not None:
                e.launched.restart(None if b.path is None else (b.path, b.scale))
                e.url = e.launched.url
                with self._cv:
                    e.down = None
            elif e.kind == "llama-server":
                e.lora = self._lora_scales(e, sha, b.scale, shared)
            elif e.kind == "vllm":
                e.lora_name = None if sha is None or b.path is None else self._vllm_load(e, Path(b.path), sha, b.scale)
        self.adapter, self.adapter_sha256, self._scale = b.path, sha, b.scale

    def _vllm_load(self, e: Endpoint, gguf: Path, sha: str, scale: float) -> str:
        """Load the adapter into a vLLM server at run time (``VLLM_ALLOW_RUNTIME_LORA_UPDATING``):
        the PEFT directory written beside the GGUF (``peft/``), copied to ``adapter_dir/<sha>/``,
        which the server must read at the same path. Returns the name requests ask for."""
        if scale != 1.0:
            raise ServerError(f"vLLM endpoint {e.url}: an adapter scale other than 1 cannot be set per request")
        peft = gguf.parent / "peft"
        if not (peft / "adapter_config.json").exists():
            raise ServerError(f"no PEFT copy of {gguf} for vLLM endpoint {e.url} (adapters exported before swarm "
                              "wrote peft/ beside them cannot be served by vLLM)")
        if self.adapter_dir is None:
            raise ServerError(f"vLLM endpoint {e.url} loads adapters from files: set model.adapter_dir to a directory "
                              "it reads at the same path")
        shared = self.adapter_dir / sha
        if not shared.exists():
            tmp = shared.with_name(sha + ".part")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(peft, tmp)
            tmp.replace(shared)
        name = f"swarm-{sha[:16]}"
        if name not in e.vllm_loaded:
            _post_json(e, "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(shared)})
            e.vllm_loaded.add(name)
        return name

    def _lora_scales(self, e: Endpoint, sha: str | None, scale: float, shared: Path | None) -> list[dict[str, Any]]:
        """What each request to an external llama-server says of its adapters: the one file
        ``<sha>.gguf`` at ``scale`` (None: none), every other adapter it holds at 0 (a request that
        names none gets the server's global scales, 1 unless it was told otherwise)."""
        data = _get_json(e, "/lora-adapters")
        held = [(int(item["id"]), Path(str(item.get("path", ""))).name) for item in (data if isinstance(data, list) else [])]
        if sha is None or any(name == f"{sha}.gguf" for _, name in held):
            return [{"id": i, "scale": scale if sha is not None and name == f"{sha}.gguf" else 0.0} for i, name in held]
        where = shared.parent if shared is not None else "the adapter directory"
        raise ServerError(f"llama-server {e.url} has no adapter {sha}.gguf loaded: llama-server loads adapter files "
                          f"only at start; restart it with --lora-init-without-apply --lora {where}/{sha}.gguf "
                          "(or let swarm launch the server: endpoints = [{launch = true}])")

    # -- one request ----------------------------------------------------------------------------------

    def _prompt(self, comp: Completion) -> tuple[list[int], bool]:
        req = comp.request
        text = self.render(req)
        add_special = self._vocab.add_bos and not (self.bos_text and text.startswith(self.bos_text))
        return fit_prompt(self.tokenize(text, add_special=add_special), req.sampling.max_tokens, self.n_ctx_seq)

    def _serve(self, e: Endpoint, conn: http.client.HTTPConnection, comp: Completion, slot: int,
               cached_under: list[str | None]) -> Result:
        started = time.perf_counter()
        try:
            tokens, truncated = self._prompt(comp)
        except Exception as err:
            return Result("", "error", 0, 0, 0.0, error=str(err), endpoint=e.name)
        s = comp.request.sampling
        max_tokens = min(s.max_tokens, max(1, self.n_ctx_seq - len(tokens) - 1))
        if e.kind == "vllm":
            body: dict[str, Any] = {"model": e.lora_name or e.model, "prompt": tokens, "max_tokens": max_tokens,
                                    "temperature": s.temperature, "top_k": s.top_k if s.top_k > 0 else -1,
                                    "top_p": s.top_p, "min_p": s.min_p, "seed": s.seed, "stream": True,
                                    "stream_options": {"include_usage": True}, "skip_special_tokens": True}
            if s.stop:
                body["stop"] = list(s.stop)
            if s.grammar is not None:
                body["structured_outputs"] = {"grammar": s.grammar}
            elif s.json_schema is not None:
                body["structured_outputs"] = {"json": s.json_schema}
            route = "/v1/completions"
        else:
            body = {"prompt": tokens, "n_predict": max_tokens, "temperature": s.temperature, "top_k": s.top_k,
                    "top_p": s.top_p, "min_p": s.min_p, "seed": s.seed & 0xFFFFFFFF, "stream": True,
                    "samplers": ["top_k", "top_p", "min_p", "temperature"], "repeat_penalty": 1.0,
                    "cache_prompt": cached_under[0] == self.adapter_sha256, "id_slot": slot, "stop": list(s.stop)}
            cached_under[0] = self.adapter_sha256
            if s.grammar is not None:
                body["grammar"] = s.grammar
            elif s.json_schema is not None:
                body["json_schema"] = s.json_schema
            if e.launched is None:  # an external server: every adapter it holds, at the scale wanted now
                if e.lora is None:
                    try:
                        e.lora = self._lora_scales(e, None, 0.0, None)
                    except ServerError as err:
                        raise _EndpointDown(str(err)) from err
                body["lora"] = e.lora
            route = "/completion"
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if e.api_key:
            headers["Authorization"] = f"Bearer {e.api_key}"
        try:
            conn.request("POST", _path(e.url, route), body=json.dumps(body), headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            raise _EndpointDown(f"{type(err).__name__}: {err}") from err
        if resp.status >= 500 or resp.status in (401, 403, 404, 429):
            detail = resp.read()[:300].decode(errors="replace")
            raise _EndpointDown(f"HTTP {resp.status}: {detail}")
        if resp.status != 200:
            detail = resp.read()[:500].decode(errors="replace")
            return Result("", "error", len(tokens), 0, time.perf_counter() - started,
                          error=f"{e.name} answered HTTP {resp.status}: {detail}", endpoint=e.name)
        text, reason, n_out, ended = "", "length", 0, False
        try:
            for event in _events(resp):
                if comp.cancelled.is_set():
                    conn.close()  # llama-server stops the slot when its client goes away
                    return Result(text, "cancelled", len(tokens), n_out, time.perf_counter() - started,
                                  truncated, endpoint=e.name)
                if e.kind == "vllm":
                    if event.get("usage"):
                        n_out = int(event["usage"].get("completion_tokens") or n_out)
                    for ch in event.get("choices") or []:
                        piece = ch.get("text") or ""
                        text += piece
                        comp._emit(piece)
                        if ch.get("finish_reason"):
                            reason = {"stop": "stop", "length": "length"}.get(ch["finish_reason"], "stop")
                            ended = True
                else:
                    piece = event.get("content") or ""
                    if piece:
                        text += piece
                        comp._emit(piece)
                    if event.get("stop"):
                        ended = True
                        n_out = int(event.get("tokens_predicted") or 0)
                        kind = event.get("stop_type")
                        reason = {"eos": "eog", "limit": "length", "word": "stop"}.get(kind, "length")
                        if reason == "length" and n_out < max_tokens:
                            reason = "context"
        except (OSError, http.client.HTTPException, ValueError) as err:
            raise _EndpointDown(f"the stream broke: {type(err).__name__}: {err}") from err
        if not ended:  # the connection closed before the last event: the server went away
            raise _EndpointDown("the stream ended before the completion did")
        with self._cv:
            self.stats["generated_tokens"] += n_out
            self.stats["decoded_tokens"] += n_out + len(tokens)
        return Result(text, reason, len(tokens), n_out, time.perf_counter() - started, truncated, endpoint=e.name)


def _connect(url: str, timeout: float) -> http.client.HTTPConnection:
    u = urllib.parse.urlsplit(url)
    cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    return cls(u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80), timeout=timeout)


def _path(url: str, route: str) -> str:
    base = urllib.parse.urlsplit(url).path.rstrip("/")
    if base.endswith("/v1") and route.startswith("/v1/"):
        base = base[:-3]
    return base + route


def _events(resp: http.client.HTTPResponse) -> Any:
    """The JSON objects of a server-sent event stream."""
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        event = json.loads(data)
        if isinstance(event, dict) and event.get("error"):
            raise ValueError(f"the server reported: {event['error']}")
        yield event


def _call(e: Endpoint, method: str, route: str, data: dict[str, Any] | None = None, timeout: float = 10.0) -> bytes:
    """One request to an endpoint's API outside generation; the body, or ServerError."""
    conn = _connect(e.url, timeout)
    try:
        headers = {"Authorization": f"Bearer {e.api_key}"} if e.api_key else {}
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, _path(e.url, route), body=None if data is None else json.dumps(data), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise ServerError(f"{e.url}{route} answered HTTP {resp.status}: {body[:300].decode(errors='replace')}")
        return body
    except (OSError, http.client.HTTPException) as err:
        raise ServerError(f"{e.url}{route}: {err}") from err
    finally:
        conn.close()


def _post_json(e: Endpoint, route: str, data: dict[str, Any]) -> None:
    _call(e, "POST", route, data, timeout=60.0)


def _get_json(e: Endpoint, route: str) -> Any:
    body = _call(e, "GET", route)
    try:
        return json.loads(body)
    except ValueError as err:
        raise ServerError(f"{e.url}{route}: not JSON: {err}") from err


def from_spec(m: Any, served: Path, home: Path) -> HttpRuntime:
    """The HTTP runtime a recipe's ``[model]`` (backend = "openai") describes; launched servers
    serve ``served`` (the weights engine.weights chose) and log to ``HOME/servers/``. Raises
    EngineError for an API key variable that is not set, ServerError for a server that will not start."""
    endpoints = []
    launched = sum(1 for spec in m.endpoints if spec.launch)
    threads = m.n_threads or max(1, (os.cpu_count() or 1) // max(1, launched))
    for i, spec in enumerate(m.endpoints):
        key = None
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise EngineError(f"model.endpoints[{i}].api_key_env: ${spec.api_key_env} is not set")
        server = None
        if spec.launch:
            (home / "servers").mkdir(parents=True, exist_ok=True)
            server = LlamaServer(served, slots=spec.slots, n_ctx=m.n_ctx, n_batch=m.n_batch, threads=threads,
                                 gpu_layers=m.gpu_layers, log_file=home / "servers" / f"llama-server-{i}.log")
        endpoints.append(Endpoint(url=spec.url, slots=spec.slots, kind=spec.kind, api_key=key, roles=frozenset(spec.roles),
                                  timeout=spec.timeout, launched=server, model=spec.model))
    adapter_dir = Path(m.adapter_dir).expanduser() if m.adapter_dir else None
    return HttpRuntime(served, endpoints, n_ctx=m.n_ctx, adapter_dir=adapter_dir, wait_down=m.wait_down)
