"""What every benchmark records beside its figures: the machine and the versions."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The repository's committed results; written only from a source checkout.
RESULTS = Path(__file__).resolve().parent / "results"
#: Where results go when set (``swarm bench --out DIR``, or ``$SWARM_BENCH_OUT``).
OUT_ENV = "SWARM_BENCH_OUT"


def results_dir() -> Path:
    """Where a benchmark writes: ``$SWARM_BENCH_OUT`` when set; else the repository's
    ``benchmarks/results`` when this is a writable source checkout (a ``.git`` beside it); else
    ``bench/`` in the data dir, so an installed package is never written into."""
    if os.environ.get(OUT_ENV):
        return Path(os.environ[OUT_ENV]).expanduser()
    repo = RESULTS.parent.parent
    if (repo / ".git").exists() and os.access(RESULTS if RESULTS.exists() else RESULTS.parent, os.W_OK):
        return RESULTS
    from engine.paths import home_dir

    return home_dir() / "bench"


#: The CPU features that change what a benchmark measures: the vector width llama.cpp's kernels
#: use, and whether training can run in bfloat16 (unsloth's CPU backend trains in float32 without
#: it). Hosts named alike ("AMD EPYC") differ in them from one session to the next.
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx_vnni", "amx_bf16")


def machine() -> dict[str, Any]:
    from engine.paths import cpu_flags, cpu_name

    have = cpu_flags()
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "vector": [f for f in VECTOR_FLAGS if f in have],
            "platform": platform.platform(), "python": platform.python_version()}


def served_weights(store: Any, run_id: int) -> dict[str, Any] | None:
    """The weight type a run served and why (``runs.settings``, recorded when its model first
    loads): ``model.weights = "auto"`` measures each machine and may pick another type on another
    host (BF16 on one, Q8_0, a second quantization of the shipped Q4_1, on another), and greedy
    scores move with it, so a result says what it was played with. None before the model loaded."""
    row = store.execute("select settings->'weights'->>'type', settings->'weights'->>'reason' from runs where id = ?",
                        [run_id])
    if not row or row[0][0] is None:
        return None
    return {"type": row[0][0], "reason": row[0][1]}


def versions(*dists: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for d in dists:
        try:
            out[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            out[d] = None
    return out


def write_results(name: str, data: dict[str, Any]) -> Path:
    out = results_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    payload = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **data}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[f"{c:.2f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    out = [" | ".join(h.ljust(w) for h, w in zip(headers, widths)), "-|-".join("-" * w for w in widths)]
    out += [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(out)


def toml_dumps(data: dict[str, Any]) -> str:
    """TOML for a recipe-shaped dict: scalars, lists of scalars, tables, arrays of tables.

    >>> import tomllib
    >>> d = {"name": "x", "seed": 1, "model": {"prefix_cache": True}, "agents": [{"name": "a", "t": 0.5}],
    ...      "prompts": {"solve": 'say "hi"\\n{task}'}}
    >>> tomllib.loads(toml_dumps(d)) == d
    True
    """
    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)  # a JSON string is a TOML basic string
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    def is_table_list(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)

    lines = [f"{k} = {scalar(v)}" for k, v in data.items() if not isinstance(v, dict) and not is_table_list(v)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {scalar(vv)}" for kk, vv in v.items()]
        elif is_table_list(v):
            for item in v:
                lines += ["", f"[[{k}]]"] + [f"{kk} = {scalar(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


def recipe_variant(name: str, out_dir: Path, overrides: dict[str, dict[str, Any]]) -> Path:
    """The recipe ``name`` with some of its tables' keys changed, written to ``out_dir``; a table
    name ``agents.ROLE`` changes those keys of every agent with that role."""
    import tomllib

    from engine.recipes import load_recipe

    _, path, text = load_recipe(name)
    data = tomllib.loads(text)
    for table_name, keys in overrides.items():
        if table_name.startswith("agents."):
            role = table_name.removeprefix("agents.")
            agents = [a for a in data.get("agents", []) if a.get("role") == role]
            if not agents:
                raise ValueError(f"recipe {name!r} has no agent with role {role!r}")
            for a in agents:
                a.update(keys)
            continue
        data.setdefault(table_name, {}).update(keys)
    out = out_dir / f"{Path(path).stem}-variant.toml"
    out.write_text(toml_dumps(data))
    load_recipe(str(out))  # fail here, naming the key, if an override is out of range
    return out


def default_run_sets(home: Path, levels: dict[str, tuple[int, ...]], cut: int | None = None) -> tuple[Any, dict[str, Any]]:
    """A default run (seed 7) made in the data dir ``home``: its recipe and the sets a benchmark
    scores on, by name: each pool's levels in ``levels`` (``{"test": (1, 2), "dev": (1,)}``), at
    most ``cut`` tasks each, then the general facts of the test pool."""
    from engine.api import Engine
    from engine.pools import FACT_SETS, fact_set, pool_tasks, set_name

    eng = Engine.open(home)
    try:
        run_id = eng.create_run("default", rounds=1, seed=7)
        sets = {set_name(pool, lvl): pool_tasks(eng.store, run_id, pool, lvl)[:cut]
                for pool, lvls in levels.items() for lvl in lvls}
        sets[FACT_SETS["test"]] = fact_set(eng.store, run_id, "test")
        return eng.run_info(run_id).recipe, sets
    finally:
        eng.close()


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its largest waited-for child (Linux: KiB)."""
    import resource

    return {"process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def shared_cache_env() -> dict[str, str]:
    """Environment for a benchmark's temporary data dir that still shares the dequantized base
    weights of the user's own data dir (so training does not redo that one-time step)."""
    from engine.paths import cache_root, home_dir

    return {"SWARM_CACHE": str(cache_root(home_dir()))}


@contextlib.contextmanager
def shared_cache() -> Iterator[None]:
    """``shared_cache_env`` set in this process for the block, then the environment as it was."""
    env = shared_cache_env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
