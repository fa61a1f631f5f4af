"""Console responsiveness while agents stream: token-to-screen latency and event-loop lag.

Runs the real console (headless, Textual's test driver) on the default recipe and, while a
round's agents stream, samples (a) how long the oldest token waited between the engine emitting
it and the pane showing it, and (b) how late a 20 ms UI timer fires (the loop's lag). Baseline:
the same timer with the console idle, before the run starts.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from benchmarks.common import table, versions, write_results


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


async def _measure(seconds: float) -> dict[str, Any]:
    from console.app import SwarmApp

    app = SwarmApp(recipe="default", rounds=1)
    lags: dict[str, list[float]] = {"idle": [], "streaming": []}
    mode = ["idle"]
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        lags[mode[0]].append(max(0.0, now - last[0] - 0.02))
        last[0] = now

    async with app.run_test(size=(132, 40)) as pilot:
        await pilot.pause()
        app.set_interval(0.02, tick)
        await pilot.pause(2.0)
        mode[0] = "streaming"
        await pilot.press("s")
        await pilot.pause(seconds)
        await pilot.press("x")
        for w in list(app.workers):
            if w.group == "run":
                await w.wait()
        waits = list(app.token_waits)
    return {"lag": lags, "token_wait": waits}


def run(quick: bool = False) -> dict[str, Any]:
    seconds = 20.0 if quick else 60.0
    data = asyncio.run(_measure(seconds))
    rows = []
    for name in ("idle", "streaming"):
        xs = data["lag"][name]
        rows.append([f"UI timer lag, {name} (ms)", 1000 * statistics.median(xs), 1000 * _pct(xs, 0.99), 1000 * max(xs)])
    w = data["token_wait"]
    rows.append(["token to screen (ms)", 1000 * statistics.median(w), 1000 * _pct(w, 0.99), 1000 * max(w)])
    print(table(["measure", "p50", "p99", "max"], rows))
    ratios = {"streaming_vs_idle_lag_p99": _pct(data["lag"]["streaming"], 0.99) / max(_pct(data["lag"]["idle"], 0.99), 1e-6)}
    path = write_results("responsiveness", {"quick": quick, "seconds": seconds, "rows": rows, "ratios": ratios,
                                            "versions": versions("textual")})
    print(f"wrote {path}")
    return {"ratios": ratios}


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
