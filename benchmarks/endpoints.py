"""The same generation workload in-process, through one local llama-server, and through two.

N agents (1 and 8) answer the generation benchmark's prompts (same sampling, same seeds), on the
same weight file: in-process (engine.runtime.Runtime, n_parallel 8), through one llama-server that
swarm launches (8 slots, every core), and through two (4 slots each, half the cores each), both
with engine.runtime.HttpRuntime, which renders and tokenizes locally and streams over HTTP. Each
configuration is measured ``repeats`` times, the best kept; tokens/s is generated tokens over
wall time. The ratio http/in-process is what the HTTP path costs on one machine (on one machine
two servers only split the same cores: their row shows the cost of spreading, not a gain).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import table, versions, write_results
from benchmarks.generation import _requests
from engine.models import DEFAULT_MODEL, resolve_model
from engine.runtime import Runtime
from engine.runtime.http import Endpoint, HttpRuntime
from engine.runtime.server import LlamaServer, find_server


def _measure(rt: Runtime | HttpRuntime, n: int, max_tokens: int, repeats: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        results = [c.result() for c in rt.submit_many(_requests(n, max_tokens))]
        secs = time.perf_counter() - t0
        toks = sum(r.completion_tokens for r in results)
        if not best or toks / secs > best["tokens_per_second"]:
            best = {"agents": n, "tokens": toks, "seconds": secs, "tokens_per_second": toks / secs}
    return best


def run(quick: bool = False, model: str = DEFAULT_MODEL) -> dict[str, Any]:
    binary = find_server()
    if binary is None:
        raise SystemExit("endpoints: no llama-server; build it with `swarm llama-server build`")
    path = resolve_model(model)
    max_tokens, repeats = (64, 2) if quick else (128, 3)
    cores = os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    with Runtime(path, n_ctx=512, n_parallel=8) as rt:
        rt.generate(_requests(1, 8)[0])  # warm up
        rows.append({"config": "in-process", **{f"n{n}": _measure(rt, n, max_tokens, repeats) for n in (1, 8)}})
    with tempfile.TemporaryDirectory() as tmp:
        for servers in (1, 2):
            slots, threads = 8 // servers, max(1, cores // servers)
            eps = [Endpoint(url="", slots=slots, launched=LlamaServer(
                path, slots=slots, n_ctx=512, threads=threads, log_file=Path(tmp) / f"s{servers}-{i}.log", binary=binary))
                for i in range(servers)]
            t0 = time.perf_counter()
            with HttpRuntime(path, eps, n_ctx=512) as rt:
                started = time.perf_counter() - t0  # what a new adapter costs a launched server: a restart
                rt.generate(_requests(1, 8)[0])
                row = {"config": f"{servers} llama-server" + ("s" if servers > 1 else ""), "start_seconds": started,
                       **{f"n{n}": _measure(rt, n, max_tokens, repeats) for n in (1, 8)}}
                row["served"] = [e.served for e in eps]
            rows.append(row)
    base = rows[0]
    for r in rows:
        for n in (1, 8):
            r[f"vs_inprocess_{n}"] = r[f"n{n}"]["tokens_per_second"] / base[f"n{n}"]["tokens_per_second"]
    ratios = {"http_vs_inprocess_8": rows[1]["vs_inprocess_8"], "http_vs_inprocess_1": rows[1]["vs_inprocess_1"],
              "two_servers_vs_inprocess_8": rows[2]["vs_inprocess_8"]}
    print(table(["configuration", "1 agent tok/s", "x in-process", "8 agents tok/s", "x in-process"],
                [[r["config"], r["n1"]["tokens_per_second"], r["vs_inprocess_1"], r["n8"]["tokens_per_second"],
                  r["vs_inprocess_8"]] for r in rows]))
    print(f"HTTP overhead at 8 agents: {1 - ratios['http_vs_inprocess_8']:.1%} of in-process tokens/s; "
          f"a launched server starts (or restarts with a new adapter) in {rows[1]['start_seconds']:.1f} s")
    out = write_results("endpoints", {"quick": quick, "model": model, "max_tokens": max_tokens, "repeats": repeats,
                                      "server": str(binary), "rows": rows, "ratios": ratios,
                                      "versions": versions("llama-cpp-python")})
    print(f"wrote {out}")
    return {"rows": rows, "ratios": ratios}


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
