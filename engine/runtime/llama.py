"""The batched llama.cpp runtime: many agents, one model, one ``llama_decode`` per step.

One owner thread drives the model. Callers on any thread ``submit`` a Request and get a
Completion: a handle they can iterate for streamed text, wait on for the Result, or cancel.
Each request decodes in its own sequence (seq_id) with its own sampler chain (temperature,
top-k/p, min-p, seed, optional GBNF grammar or JSON schema), max tokens and stop strings.
Every step packs the next token of every generating sequence, plus prompt tokens of newly
admitted ones up to ``n_batch``, into a single batch (continuous batching); a finished
sequence frees its KV cells at once and a waiting request takes its slot.

LoRA adapters are swapped in place (``set_adapter``): the owner stops admitting requests,
lets those in flight finish, applies the adapter, and clears the KV cache so nothing computed
under the old weights is reused. An adapter is known by its content (sha256), never by its path.

Same requests, same outputs: ``submit_many`` hands a phase's requests over in one piece, so
they are admitted in the same order and batched the same way on every run, and the KV cache
is reset whenever the batch drains, so cells are laid out the same way too.

If the owner thread fails, every waiting and every later request fails with that error
(``RuntimeFailed``) instead of hanging; after ``close`` has begun, ``submit`` raises at once.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError, ModelError, RuntimeClosed, RuntimeFailed
from engine.models import check_gguf, resolve_model, sha256_file
from engine.runtime.chat import ChatTemplate, Message

log = logging.getLogger(__name__)

_backend_lock = threading.Lock()
_backend_ready = False
_log_callback: Any = None  # keep the ctypes callback alive for the process's lifetime


def _init_backend() -> Any:
    """Import llama_cpp, initialise its backend once, and route its logs to ``logging``."""
    global _backend_ready, _log_callback
    import llama_cpp

    with _backend_lock:
        if not _backend_ready:
            llama_cpp.llama_backend_init()

            @llama_cpp.llama_log_callback
            def _cb(level: int, text: bytes, _user: Any) -> None:
                if log.isEnabledFor(logging.DEBUG) and text:
                    log.debug("llama.cpp: %s", text.decode(errors="replace").rstrip())

            _log_callback = _cb
            llama_cpp.llama_log_set(_cb, ctypes.c_void_p(0))
            _backend_ready = True
    return llama_cpp


def _put(batch: Any, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
    """Token ``i`` of a llama.cpp batch: one sequence, with or without its logits."""
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq_id
    batch.logits[i] = logits


def model_params(ll: Any) -> Any:
    """llama.cpp's default model parameters, without the extra CPU buffer types (AMX, repacked
    weights) where they crash this machine (``engine.runtime.cpu_probe``)."""
    from engine.runtime.cpu_probe import extra_buffers_usable

    params = ll.llama_model_default_params()
    params.use_extra_bufts = extra_buffers_usable()
    return params


class Logits:
    """A model (and optionally a LoRA adapter) that gives the logits of a token sequence: the
    perplexity measure and the export check. Loaded like the runtime's (``model_params``).
    ``with Logits(path) as m: m.of(m.tokenize(text))`` -> one row per position asked for."""

    def __init__(self, path: str | os.PathLike[str], lora: str | os.PathLike[str] | None = None,
                 n_ctx: int = 512, n_threads: int = 0) -> None:
        self._ll = ll = _init_backend()
        self._ctx = self._adapter = None
        self._model = ll.llama_model_load_from_file(str(path).encode(), model_params(ll))
        if not self._model:
            raise ModelError(f"llama.cpp could not load the model {path}")
        threads = n_threads or os.cpu_count() or 1
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = cparams.n_batch = cparams.n_ubatch = n_ctx
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.no_perf = True
        self._ctx = ll.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            self.close()
            raise ModelError(f"llama.cpp could not create a context for {path} (n_ctx={n_ctx})")
        self.n_ctx = n_ctx
        self._vocab = ll.llama_model_get_vocab(self._model)
        self.n_vocab = ll.llama_vocab_n_tokens(self._vocab)
        if lora is not None:
            self._adapter = ll.llama_adapter_lora_init(self._model, str(lora).encode())
            if not self._adapter:
                self.close()
                raise ModelError(f"llama.cpp refused the LoRA adapter {lora}")
            arr = (ll.llama_adapter_lora_p_ctypes * 1)(self._adapter)
            if ll.llama_set_adapters_lora(self._ctx, arr, 1, (ctypes.c_float * 1)(1.0)) != 0:
                self.close()
                raise ModelError(f"llama.cpp could not apply the LoRA adapter {lora}")

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        """Tokens of ``text`` (special tokens parsed), cut to the context."""
        return _tokenize(self._ll, self._vocab, text, add_special)[:self.n_ctx]

    def of(self, tokens: Sequence[int], last_only: bool = False) -> Any:
        """Logits (a float32 numpy array, positions x vocabulary) after each token, or after the
        last only; each call starts from an empty cache."""
        import numpy as np

        ll = self._ll
        tokens = list(tokens)[:self.n_ctx]
        ll.llama_memory_clear(ll.llama_get_memory(self._ctx), True)
        batch = ll.llama_batch_init(len(tokens), 0, 1)
        try:
            for i, t in enumerate(tokens):
                _put(batch, i, t, i, 0, not last_only or i == len(tokens) - 1)
            batch.n_tokens = len(tokens)
            if ll.llama_decode(self._ctx, batch) != 0:
                raise ModelError(f"llama.cpp could not evaluate {len(tokens)} tokens")
            rows = 1 if last_only else len(tokens)
            return np.ctypeslib.as_array(ll.llama_get_logits(self._ctx), shape=(rows, self.n_vocab)).copy()
        finally:
            ll.llama_batch_free(batch)

    def close(self) -> None:
        ll = self._ll
        if self._ctx:
            ll.llama_free(self._ctx)
            self._ctx = None
        if self._adapter:
            ll.llama_adapter_lora_free(self._adapter)
            self._adapter = None
        if self._model:
            ll.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> Logits:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Sampling:
    """How one request picks tokens. ``temperature == 0`` is greedy."""

    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    seed: int = 0
    max_tokens: int = 128
    stop: tuple[str, ...] = ()
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None


@dataclass
class Request:
    """A prompt (raw text, or chat messages rendered with the model's template)."""

    messages: Sequence[Message] | None = None
    prompt: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    tag: str = ""
    on_text: Callable[[str], None] | None = None
    #: Text the assistant's reply starts with (written into the prompt, not returned).
    assistant_prefix: str = ""
    #: The task this request works on (a label for whoever watches the stream; generation ignores it).
    task: int | None = None
    #: The agent's role (proposer, solver, critic, judge): an HTTP endpoint may serve only some roles.
    role: str = ""

    def __post_init__(self) -> None:
        # A request that cannot be rendered fails only itself, with an empty "error" result: a
        # wrong prefix would pass silently as an empty reply, so it is refused where it is made.
        if not isinstance(self.assistant_prefix, str):
            raise TypeError(f"Request.assistant_prefix must be a string (\"\": none), not {self.assistant_prefix!r}")


@dataclass(frozen=True)
class Result:
    text: str
    finish_reason: str  # stop | eog | length | context | cancelled | error
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    truncated_prompt: bool = False
    error: str | None = None
    #: Who generated it: "inprocess", or the inference endpoint (engine.runtime.http).
    endpoint: str = "inprocess"


_DONE = object()
MIN_SHARED_PREFIX = 8  # shorter common prefixes are decoded, not copied


def adapter_key(path: str | os.PathLike[str] | None) -> str | None:
    """How the runtime knows an adapter: the sha256 of its file (None: the base model; a
    missing file gets a key no real adapter has, so it is never taken for one)."""
    if path is None:
        return None
    try:
        return sha256_file(path)
    except OSError:
        return f"missing:{Path(path).resolve()}"


def render_request(chat: ChatTemplate, request: Request) -> str:
    """A request's prompt text: raw, or its messages in the model's chat template; then the
    assistant prefix."""
    if request.prompt is not None:
        return request.prompt + request.assistant_prefix
    assert request.messages is not None
    return chat.render(request.messages) + request.assistant_prefix


def fit_prompt(tokens: list[int], max_tokens: int, n_ctx: int) -> tuple[list[int], bool]:
    """Cut a prompt to leave room for the answer (at least half the context): keep the head
    (system prompt, task) and the tail (the latest turn), drop the middle. Returns the tokens and
    whether anything was cut."""
    room = n_ctx - min(max_tokens, n_ctx // 2)
    if len(tokens) <= room:
        return tokens, False
    head = room // 3
    return tokens[:head] + tokens[len(tokens) - (room - head):], True


def _tokenize(ll: Any, vocab: Any, text: str, add_special: bool) -> list[int]:
    data = text.encode()
    n_max = len(data) + 16
    buf = (ll.llama_token * n_max)()
    n = ll.llama_tokenize(vocab, data, len(data), buf, n_max, add_special, True)
    if n < 0:
        buf = (ll.llama_token * -n)()
        n = ll.llama_tokenize(vocab, data, len(data), buf, -n, add_special, True)
    return list(buf[:n])


class Vocab:
    """A model's vocabulary alone (llama.cpp loads it without the weights): tokenizing, the BOS and
    EOS texts. What the HTTP runtime needs to render and tokenize prompts as in-process does."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._ll = ll = _init_backend()
        params = ll.llama_model_default_params()
        params.vocab_only = True
        self._model = ll.llama_model_load_from_file(str(path).encode(), params)
        if not self._model:
            raise ModelError(f"llama.cpp could not read the vocabulary of {path}")
        self._vocab = ll.llama_model_get_vocab(self._model)
        self.add_bos = bool(ll.llama_vocab_get_add_bos(self._vocab))
        self.bos_text = self._piece(ll.llama_vocab_bos(self._vocab))
        self.eos_text = self._piece(ll.llama_vocab_eos(self._vocab))

    def _piece(self, token: int) -> str:
        buf = ctypes.create_string_buffer(256)
        n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, True)
        return buf.raw[:max(n, 0)].decode(errors="replace")

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return _tokenize(self._ll, self._vocab, text, add_special)

    def close(self) -> None:
        if self._model:
            self._ll.llama_model_free(self._model)
            self._model = None


def checked_adapter(path: str, expected_sha256: str | None) -> str:
    """The sha256 of the adapter file at ``path``; ModelError when it cannot be read or is not the
    content the store recorded (``expected_sha256``, when given)."""
    try:
        sha = sha256_file(path)
    except OSError as e:
        raise ModelError(f"cannot read the LoRA adapter {path}: {e.strerror or e}") from e
    if expected_sha256 is not None and sha != expected_sha256:
        raise ModelError(f"the LoRA adapter {path} changed since it was recorded "
                         f"(sha256 {sha[:12]}..., expected {expected_sha256[:12]}...)")
    return sha


def check_adapter_fits(path: str, architecture: str) -> None:
    """ModelError when the adapter at ``path`` is for another architecture than the model's."""
    info = check_gguf(path)
    if info.architecture != architecture:
        raise ModelError(f"adapter {path} is for {info.architecture}, the model is {architecture}")


class Completion:
    """Handle for a submitted request: iterate for text pieces, ``result()`` to wait."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self._pieces: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._future: Future[Result] = Future()
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def result(self, timeout: float | None = None) -> Result:
        return self._future.result(timeout)

    def done(self) -> bool:
        return self._future.done()

    def __iter__(self) -> Iterator[str]:
        while True:
            item = self._pieces.get()
            if item is _DONE:
                return
            assert isinstance(item, str)
            yield item

    # owner-thread side
    def _emit(self, text: str) -> None:
        if not text:
            return
        self._pieces.put(text)
        if self.request.on_text is not None:
            try:
                self.request.on_text(text)
            except Exception:  # a caller's callback must not kill the owner thread
                log.exception("on_text callback failed")

    def _finish(self, result: Result) -> None:
        if self._future.done():
            return
        self._pieces.put(_DONE)
        self._future.set_result(result)

    def _fail(self, error: BaseException) -> None:
        if self._future.done():
            return
        self._pieces.put(_DONE)
        self._future.set_exception(error)


class _Slot:
    """One sequence in the batch: its prompt, sampler and decoding state."""

    def __init__(self, comp: Completion, seq_id: int, tokens: list[int], sampler: Any, truncated: bool, n_ctx_seq: int) -> None:
        self.comp = comp
        self.seq_id = seq_id
        self.prompt = tokens
        self.fed = 0  # prompt tokens put in a batch
        self.ready = 0  # prompt tokens whose KV a finished llama_decode holds
        self.pos = 0
        self.sampler = sampler
        self.truncated = truncated
        self.n_ctx_seq = n_ctx_seq
        self.next_token: int | None = None  # sampled, not yet decoded
        self.share_from: _Slot | None = None  # copy this slot's KV for the first share_len tokens
        self.share_len = 0
        self.n_generated = 0
        self.text = ""
        self.emitted = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.started = time.perf_counter()
        s = comp.request.sampling
        self.stops = [x for x in s.stop if x]
        self.max_tokens = s.max_tokens


@dataclass(frozen=True)
class _Swap:
    """A queued adapter change: the file (None: the base model), its scale, the content it must
    have (sha256, when the caller knows it), and the caller's future."""

    path: str | None
    scale: float
    sha256: str | None
    fut: Future[None]


class Runtime:
    """A loaded GGUF model served to many concurrent requests from one owner thread.

    Raises ModelError on construction when the file is missing, not GGUF, truncated, or
    refused by llama.cpp.
    """

    _put = staticmethod(_put)  # the batch builder (one definition, shared with Logits)

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        n_ctx: int = 2048,
        n_parallel: int = 8,
        n_batch: int = 512,
        n_threads: int = 0,
        kv_unified: bool = False,
        prefix_cache: bool = False,
        gpu_layers: int = 0,
    ) -> None:
        path = resolve_model(str(model))
        self.info = check_gguf(path)
        self.path = path
        self._ll = ll = _init_backend()
        self.n_parallel = n_parallel
        self.n_ctx_seq = n_ctx
        self.n_batch = max(n_batch, n_parallel)
        # Prompts that start alike (same template, system prompt, task) share their KV cells:
        # one sequence decodes the prefix, the others copy it. Copies need one unified cache.
        self.prefix_cache = prefix_cache
        kv_unified = kv_unified or prefix_cache
        threads = n_threads or os.cpu_count() or 1

        mparams = model_params(ll)
        # Layers offloaded to a GPU (llama.cpp built with CUDA, Metal...); 0 on a CPU-only build.
        self.gpu_layers = gpu_layers if ll.llama_supports_gpu_offload() else 0
        mparams.n_gpu_layers = self.gpu_layers
        self._model = ll.llama_model_load_from_file(str(path).encode(), mparams)
        if not self._model:
            raise ModelError(f"llama.cpp could not load the model {path}")
        cparams = ll.llama_context_default_params()
        cparams.n_ctx = n_ctx * n_parallel
        cparams.n_batch = self.n_batch
        cparams.n_ubatch = self.n_batch
        cparams.n_seq_max = n_parallel
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.kv_unified = kv_unified
        cparams.no_perf = True
        self._ctx = ll.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            ll.llama_model_free(self._model)
            raise ModelError(f"llama.cpp could not create a context for {path} (n_ctx={n_ctx * n_parallel})")
        self._vocab = ll.llama_model_get_vocab(self._model)
        self._mem = ll.llama_get_memory(self._ctx)
        self._batch = ll.llama_batch_init(self.n_batch, 0, 1)
        self._piece_buf = ctypes.create_string_buffer(256)

        tmpl = ll.llama_model_chat_template(self._model, None)
        bos = self._piece(ll.llama_vocab_bos(self._vocab), special=True)
        eos = self._piece(ll.llama_vocab_eos(self._vocab), special=True)
        self.bos_text = bos
        self.chat = ChatTemplate(tmpl.decode() if tmpl else None, bos, eos)
        self._add_bos = bool(ll.llama_vocab_get_add_bos(self._vocab))

        self._adapters: dict[str, Any] = {}  # sha256 -> llama.cpp adapter handle
        self.adapter: str | None = None  # path of the adapter applied now (None: the base model)
        self.adapter_sha256: str | None = None
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        # _closed and _failure change under _gate; submit checks them under it too, so nothing
        # is queued after the owner thread stopped reading the inbox.
        self._gate = threading.Lock()
        self._closed = False
        self._failure: BaseException | None = None
        self.stats = {"steps": 0, "decoded_tokens": 0, "generated_tokens": 0, "decode_seconds": 0.0,
                      "shared_prompt_tokens": 0}
        self._thread = threading.Thread(target=self._run, name="swarm-llama", daemon=True)
        self._thread.start()

    # -- public API (any thread) ----------------------------------------------------------------

    def submit(self, request: Request) -> Completion:
        """Queue a request; returns at once. Raises RuntimeClosed once ``close`` has begun,
        RuntimeFailed after the owner thread failed."""
        return self.submit_many([request])[0]

    def submit_many(self, requests: Sequence[Request]) -> list[Completion]:
        """Queue requests as one piece: the owner sees all of them at once and admits them in
        this order, so the same requests are batched the same way on every run."""
        for r in requests:
            if r.prompt is None and r.messages is None:
                raise ValueError("a request needs messages or a prompt")
        comps = [Completion(r) for r in requests]
        with self._gate:
            self._check_open()
            if comps:
                self._inbox.put(("requests", comps))
        return comps

    def _check_open(self) -> None:
        if self._failure is not None:
            raise RuntimeFailed(f"the model runtime failed: {self._failure}") from self._failure
        if self._closed:
            raise RuntimeClosed("the runtime is closed")

    def generate(self, request: Request) -> Result:
        """Submit and wait."""
        return self.submit(request).result()

    def set_adapter(self, path: str | os.PathLike[str] | None, scale: float = 1.0,
                    sha256: str | None = None) -> Future[None]:
        """Switch to the LoRA adapter at ``path`` (None: the base model) between requests.

        The owner stops admitting new requests, lets the ones in flight finish, swaps, and
        clears the KV cache. The returned future raises ModelError for a bad adapter file, or
        one whose content is not ``sha256`` when that is given (the store's record of it).
        """
        fut: Future[None] = Future()
        item = _Swap(None if path is None else str(Path(path).resolve()), scale, sha256, fut)
        with self._gate:
            self._check_open()
            self._inbox.put(("adapter", item))
        return fut

    def serves(self, path: str | os.PathLike[str] | None) -> bool:
        """Whether the file at ``path`` (None: the base model) holds the adapter applied now:
        compared by content, so a new file at an old path is not taken for the old adapter."""
        if path is None:
            return self.adapter_sha256 is None
        return self.adapter_sha256 is not None and self.adapter_sha256 == adapter_key(path)

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        return _tokenize(self._ll, self._vocab, text, add_special)

    def render(self, request: Request) -> str:
        return render_request(self.chat, request)

    def close(self) -> None:
        """Finish in-flight requests as cancelled, stop the owner thread, free the model."""
        with self._gate:
            if self._closed:
                return
            self._closed = True
            self._inbox.put(("close", None))
        self._thread.join()
        ll = self._ll
        for adapter in self._adapters.values():
            ll.llama_adapter_lora_free(adapter)
        self._adapters.clear()
        ll.llama_batch_free(self._batch)
        ll.llama_free(self._ctx)
        ll.llama_model_free(self._model)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- owner thread --------------------------------------------------------------------------

    def _piece(self, token: int, special: bool = False) -> str:
        return self._piece_bytes(token, special).decode(errors="replace")

    def _piece_bytes(self, token: int, special: bool = False) -> bytes:
        buf = self._piece_buf
        n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._ll.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def _make_sampler(self, s: Sampling) -> Any:
        ll = self._ll
        chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
        grammar = s.grammar
        if grammar is None and s.json_schema is not None:
            import json

            from llama_cpp.llama_grammar import json_schema_to_gbnf

            grammar = json_schema_to_gbnf(json.dumps(s.json_schema))
        if grammar is not None:
            g = ll.llama_sampler_init_grammar(self._vocab, grammar.encode(), b"root")
            if not g:
                ll.llama_sampler_free(chain)
                raise EngineError("the request's grammar does not parse (GBNF)")
            ll.llama_sampler_chain_add(chain, g)
        if s.temperature <= 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_greedy())
            return chain
        if s.top_k > 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_k(s.top_k))
        if s.top_p < 1.0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_top_p(s.top_p, 1))
        if s.min_p > 0:
            ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_min_p(s.min_p, 1))
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_temp(s.temperature))
        ll.llama_sampler_chain_add(chain, ll.llama_sampler_init_dist(s.seed & 0xFFFFFFFF))
        return chain

    def _admit(self, comp: Completion, seq_id: int) -> _Slot | None:
        req = comp.request
        try:
            text = self.render(req)
            add_special = self._add_bos and not (self.bos_text and text.startswith(self.bos_text))
            tokens = self.tokenize(text, add_special=add_special)
            sampler = self._make_sampler(req.sampling)
        except Exception as e:  # a bad template, grammar or prompt fails this request only
            comp._finish(Result("", "error", 0, 0, 0.0, error=str(e)))
            return None
        tokens, truncated = fit_prompt(tokens, req.sampling.max_tokens, self.n_ctx_seq)
        if not tokens:
            tokens = [self._ll.llama_vocab_bos(self._vocab)]
        return _Slot(comp, seq_id, tokens, sampler, truncated, self.n_ctx_seq)

    def _finish(self, slot: _Slot, reason: str, error: str | None = None) -> None:
        ll = self._ll
        tail = slot.decoder.decode(b"", final=True)
        if tail:
            slot.text += tail
        if reason != "stop":  # a stop string already trimmed the text
            slot.comp._emit(slot.text[slot.emitted :])
        ll.llama_memory_seq_rm(self._mem, slot.seq_id, -1, -1)
        ll.llama_sampler_free(slot.sampler)
        slot.comp._finish(
            Result(
                text=slot.text,
                finish_reason=reason,
                prompt_tokens=len(slot.prompt),
                completion_tokens=slot.n_generated,
                seconds=time.perf_counter() - slot.started,
                truncated_prompt=slot.truncated,
                error=error,
            )
        )

    def _on_token(self, slot: _Slot, token: int) -> str | None:
        """Account for a sampled token; returns a finish reason or None to go on."""
        ll = self._ll
        if ll.llama_vocab_is_eog(self._vocab, token):
            return "eog"
        slot.n_generated += 1
        self.stats["generated_tokens"] += 1
        slot.text += slot.decoder.decode(self._piece_bytes(token))
        if slot.stops:
            start = max(0, slot.emitted - max(len(x) for x in slot.stops))
            hits = [i for i in (slot.text.find(x, start) for x in slot.stops) if i >= 0]
            if hits:
                cut = min(hits)
                slot.text = slot.text[:cut]
                slot.comp._emit(slot.text[slot.emitted :])
                slot.emitted = len(slot.text)
                return "stop"
            hold = 0  # keep back a tail that may be the start of a stop string
            for x in slot.stops:
                for k in range(min(len(x) - 1, len(slot.text)), 0, -1):
                    if slot.text.endswith(x[:k]):
                        hold = max(hold, k)
                        break
            safe = len(slot.text) - hold
        else:
            safe = len(slot.text)
        if safe > slot.emitted:
            slot.comp._emit(slot.text[slot.emitted : safe])
            slot.emitted = safe
        if slot.n_generated >= slot.max_tokens:
            return "length"
        if slot.pos + 1 >= slot.n_ctx_seq:
            return "context"
        slot.next_token = token
        return None

    def _apply_adapter(self, swap: _Swap) -> None:
        ll = self._ll
        path, scale, fut = swap.path, swap.scale, swap.fut
        try:
            sha = None
            if path is None:
                ll.llama_set_adapters_lora(self._ctx, None, 0, None)
            else:
                sha = checked_adapter(path, swap.sha256)
                adapter = self._adapters.get(sha)
                if adapter is None:
                    check_adapter_fits(path, self.info.architecture)
                    adapter = ll.llama_adapter_lora_init(self._model, path.encode())
                    if not adapter:
                        raise ModelError(f"llama.cpp refused the LoRA adapter {path}")
                    self._adapters[sha] = adapter
                arr = (ll.llama_adapter_lora_p_ctypes * 1)(adapter)
                scales = (ctypes.c_float * 1)(scale)
                if ll.llama_set_adapters_lora(self._ctx, arr, 1, scales) != 0:
                    raise ModelError(f"llama.cpp could not apply the LoRA adapter {path}")
            ll.llama_memory_clear(self._mem, True)
            self.adapter, self.adapter_sha256 = path, sha
            fut.set_result(None)
        except Exception as e:
            fut.set_exception(e if isinstance(e, EngineError) else ModelError(str(e)))

    def _run(self) -> None:
        slots: list[_Slot | None] = [None] * self.n_parallel
        # Requests and adapter swaps in arrival order: a swap is a barrier, so requests
        # submitted before it run on the old weights and those after it on the new ones.
        waiting: deque[Completion | _Swap] = deque()
        try:
            self._loop(slots, waiting)
        except BaseException as e:  # noqa: BLE001 - anything here must reach every caller
            log.exception("the llama.cpp owner thread failed")
            self._fail_all(e, slots, waiting)

    def _fail_all(self, error: BaseException, slots: list[_Slot | None],
                  waiting: deque[Completion | _Swap]) -> None:
        """Fail every request and swap in flight, waiting, or still in the inbox."""
        with self._gate:
            self._failure = error
            while True:
                try:
                    kind, payload = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if kind == "requests":
                    waiting.extend(payload)
                elif kind == "adapter":
                    waiting.append(payload)
        err = RuntimeFailed(f"the model runtime failed: {type(error).__name__}: {error}")
        for s in slots:
            if s is not None:
                s.comp._fail(err)
        for item in waiting:
            if isinstance(item, Completion):
                item._fail(err)
            elif not item.fut.done():
                item.fut.set_exception(err)

    def _loop(self, slots: list[_Slot | None], waiting: deque[Completion | _Swap]) -> None:
        ll = self._ll
        closing = False
        batch = self._batch
        while True:
            active = any(s is not None for s in slots)
            block = not active and not waiting
            try:
                while True:
                    kind, payload = self._inbox.get(block=block)
                    block = False
                    if kind == "close":
                        closing = True
                    elif kind == "requests":
                        waiting.extend(payload)
                    else:
                        waiting.append(payload)
            except queue.Empty:
                pass

            if closing:
                for s in slots:
                    if s is not None:
                        self._finish(s, "cancelled")
                for item in waiting:
                    if isinstance(item, Completion):
                        item._finish(Result("", "cancelled", 0, 0, 0.0))
                    else:
                        item.fut.set_exception(RuntimeClosed("the runtime closed"))
                return

            # Cancellation requested by callers.
            for i, s in enumerate(slots):
                if s is not None and s.comp.cancelled.is_set():
                    self._finish(s, "cancelled")
                    slots[i] = None
            for c in [c for c in waiting if isinstance(c, Completion) and c.cancelled.is_set()]:
                waiting.remove(c)
                c._finish(Result("", "cancelled", 0, 0, 0.0))

            # Admit requests up to the next swap; a swap waits until the batch drains. When the
            # batch has drained, start from an empty cache: where cells lie changes rounding
            # (a unified cache), and the same requests must give the same outputs.
            if not active and waiting and isinstance(waiting[0], Completion):
                ll.llama_memory_clear(self._mem, True)
            for i in range(self.n_parallel):
                if slots[i] is None and waiting and isinstance(waiting[0], Completion):
                    slots[i] = self._admit(waiting.popleft(), i)  # type: ignore[arg-type]
                    if self.prefix_cache and slots[i] is not None:
                        self._plan_share(slots[i], slots)  # type: ignore[arg-type]
            if waiting and not isinstance(waiting[0], Completion) and all(s is None for s in slots):
                swap = waiting.popleft()
                assert isinstance(swap, _Swap)
                self._apply_adapter(swap)
                continue

            # Build one batch: a next token per generating slot, then prompt chunks.
            n = 0
            owners: list[tuple[int, _Slot]] = []
            for s in slots:
                if s is not None and s.next_token is not None:
                    self._put(batch, n, s.next_token, s.pos, s.seq_id, True)
                    owners.append((n, s))
                    s.pos += 1
                    s.next_token = None
                    n += 1
            for s in slots:
                if s is None or s.fed >= len(s.prompt) or n >= self.n_batch:
                    continue
                if s.share_from is not None and not self._take_share(s, slots):
                    continue  # its prefix is being decoded by another sequence this step
                take = min(len(s.prompt) - s.fed, self.n_batch - n)
                for j in range(take):
                    last = s.fed + j == len(s.prompt) - 1
                    self._put(batch, n, s.prompt[s.fed + j], s.pos, s.seq_id, last)
                    if last:
                        owners.append((n, s))
                    s.pos += 1
                    n += 1
                s.fed += take
            if n == 0:
                continue
            batch.n_tokens = n
            t0 = time.perf_counter()
            rc = ll.llama_decode(self._ctx, batch)
            self.stats["decode_seconds"] += time.perf_counter() - t0
            self.stats["steps"] += 1
            self.stats["decoded_tokens"] += n
            if rc != 0:
                # rc 1: no KV room; <0: a hard error. Fail the sequences of this batch.
                for _, s in owners:
                    if slots[s.seq_id] is s:
                        self._finish(s, "error", f"llama_decode returned {rc}")
                        slots[s.seq_id] = None
                for i, s in enumerate(slots):
                    if s is not None and s.fed < len(s.prompt):
                        self._finish(s, "error", f"llama_decode returned {rc}")
                        slots[i] = None
                continue
            for s in slots:
                if s is not None:
                    s.ready = s.fed
            for idx, s in owners:
                token = ll.llama_sampler_sample(s.sampler, self._ctx, idx)
                reason = self._on_token(s, token)
                if reason is not None:
                    self._finish(s, reason)
                    slots[s.seq_id] = None

    def _plan_share(self, slot: _Slot, slots: list[_Slot | None]) -> None:
        """Pick the sequence whose prompt shares the longest prefix with ``slot``'s."""
        best, best_len = None, 0
        for other in slots:
            if other is None or other is slot:
                continue
            limit = min(len(slot.prompt) - 1, len(other.prompt))  # the last prompt token is always decoded
            k = 0
            a, b = slot.prompt, other.prompt
            while k < limit and a[k] == b[k]:
                k += 1
            if k > best_len:
                best, best_len = other, k
        if best is not None and best_len >= MIN_SHARED_PREFIX:
            slot.share_from, slot.share_len = best, best_len

    def _take_share(self, slot: _Slot, slots: list[_Slot | None]) -> bool:
        """Copy the planned prefix once its source has decoded it; False: wait a step."""
        src = slot.share_from
        assert src is not None
        if slots[src.seq_id] is not src:  # the source finished or was cancelled first: decode it all
            slot.share_from = None
            return True
        if src.ready < slot.share_len:
            return False
        self._ll.llama_memory_seq_cp(self._mem, src.seq_id, slot.seq_id, 0, slot.share_len)
        slot.fed = slot.pos = slot.share_len
        slot.share_from = None
        self.stats["shared_prompt_tokens"] += slot.share_len
        return True

