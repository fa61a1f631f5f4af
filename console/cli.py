"""The ``swarm`` command.

``swarm`` alone opens the console; subcommands run headless. Every EngineError becomes one
line on stderr and exit status 1 (2 for usage errors, from argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.api import Engine


def _cmd_doctor(args: argparse.Namespace) -> int:
    from engine.doctor import run_checks

    from engine.recipes import load_recipe

    rec = load_recipe(args.recipe)[0]
    checks = run_checks(args.home, model=args.model or rec.model.path, deep=not args.quick, weights=rec.model.weights,
                        gpu_layers=rec.model.gpu_layers, spec=rec.model)
    for c in checks:
        mark = "ok " if c.ok else ("!! " if c.required else "-- ")
        print(f"{mark}{c.name:<17} {c.detail}")
    failed = [c for c in checks if c.required and not c.ok]
    if failed:
        print(f"\nthe loop cannot run: {', '.join(c.name for c in failed)}", file=sys.stderr)
        return 1
    print("\nthe loop can run")
    return 0


def _cmd_sql(args: argparse.Namespace) -> int:
    from console.render import render
    from engine.paths import home_dir, store_path
    from engine.store.share import open_shared
    from engine.store.store import check_read_only

    check_read_only(args.query)  # refuse writes before touching the file
    # With a run holding the store, the query goes to that process (read-only, a snapshot).
    with open_shared(store_path(home_dir(args.home))) as store:
        result = store.query(args.query)
    print(render(result.columns, result.rows, args.format))
    return 0


def _cmd_recipes(args: argparse.Namespace) -> int:
    from engine.recipes import bundled_recipes, load_recipe

    paths = args.files or [str(p) for p in bundled_recipes()]
    bad = 0
    for p in paths:
        try:
            recipe, path, _ = load_recipe(p)
        except EngineError as e:
            bad += 1
            print(f"invalid  {p}\n  " + str(e).replace("\n", "\n  "))
            continue
        roles = ", ".join(f"{a.name}({a.role})" for a in recipe.agents)
        print(f"ok       {path}  [{recipe.name}] {recipe.description}\n  domain={recipe.task.domain} agents: {roles}")
    return 1 if bad else 0


def _cmd_run(args: argparse.Namespace) -> int:
    import signal

    from console.progress import Progress
    from engine.api import Engine

    eng = Engine.open(args.home)
    try:
        if args.resume is not None:
            run_id = eng.latest_unfinished() if args.resume == "latest" else int(args.resume)
            if run_id is None:
                print("swarm: no unfinished run to resume", file=sys.stderr)
                return 1
        else:
            run_id = eng.create_run(args.recipe, rounds=args.rounds, train=False if args.no_train else None, seed=args.seed)
        eng.subscribe(Progress())

        def on_sigint(signum: int, frame: object) -> None:
            print("\nswarm: stopping at a safe point (Ctrl-C again to abort)...", file=sys.stderr)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            eng.stop()

        signal.signal(signal.SIGINT, on_sigint)
        status = eng.play(run_id, rounds=args.rounds if args.resume is not None and args.rounds_given else None)
        if status == "stopped":
            print(f"swarm: run {run_id} stopped; continue it with: swarm run --resume {run_id}", file=sys.stderr)
        return 0
    finally:
        eng.close()


def _run_or_latest(eng: Engine, run_id: int | None) -> int:
    """The run asked for, else the latest one; EngineError when the store has none."""
    if run_id is None:
        run_id = eng.latest_run()
    if run_id is None:
        raise EngineError("no runs yet; start one with: swarm run")
    return run_id


def _cmd_eval(args: argparse.Namespace) -> int:
    from console.render import render
    from engine.api import Engine

    eng = Engine.open(args.home)
    try:
        run_id = _run_or_latest(eng, args.run)
        adapter = args.adapter if args.adapter in ("in-use", "base") else int(args.adapter)
        scores = eng.evaluate(run_id, adapter, levels=args.level or None, sets=args.set or None, debate=args.debate)
    finally:
        eng.close()
    who = "base model" if not scores or scores[0].adapter_id is None else f"adapter {scores[0].adapter_id}"
    head = ["set", "what", "n", "correct", "accuracy", "95% CI"]
    rows = [[s.set, s.meaning, s.score.n, s.score.correct, round(s.score.accuracy, 4),
             f"[{s.score.ci_low:.1%}, {s.score.ci_high:.1%}]"] for s in scores]
    if args.debate:
        head += ["after debate", "gain", "right->wrong", "wrong->right", "judge bal. acc."]

        def cell(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        for row, s in zip(rows, scores):
            d = s.debate
            row += [None] * 5 if d is None else [cell(d.final_accuracy), cell(d.gain), cell(d.right_to_wrong_rate),
                                                 cell(d.wrong_to_right_rate), cell(d.judge_balanced_accuracy)]
    if args.format == "table":
        print(f"run {run_id}, {who}, test sets (never read by the loop); greedy pass@1 with 95% bootstrap intervals")
        if args.debate:
            print("debate: the first answer critiqued, revised and judged, greedy; the verifier only scores it "
                  "(gain in accuracy, flips as shares of right / wrong first answers, judge balanced accuracy)")
    print(render(head, rows, args.format))
    return 0


def _cmd_skills(args: argparse.Namespace) -> int:
    from console.render import render
    from engine.api import Engine

    eng = Engine.open(args.home, read_only_ok=True)
    try:
        run_id = _run_or_latest(eng, args.run)
        plans, skills = eng.curriculum(run_id), eng.skills(run_id)
    finally:
        eng.close()

    if args.format == "json":
        import dataclasses
        import json

        print(json.dumps({"run": run_id, "curriculum": [dict(zip(("round", "level", "mix", "why", "dev_score"), p))
                                                        for p in plans],
                          "skills": [dataclasses.asdict(k) for k in skills]}, indent=1))
        return 0

    table = args.format == "table"

    def pct(v: float | None, signed: bool = False) -> str | None:
        if v is None:
            return "-" if table else None  # csv: an empty cell
        return f"{100 * v:+.0f}" if signed else f"{100 * v:.0f}%"

    if table:
        print(f"run {run_id}: the curriculum, round by round")
    print(render(["round", "level", "mix", "dev after", "why"],
                 [[r, lvl, " ".join(f"L{k}:{v}" for k, v in mix.items()), pct(dev), why] for r, lvl, mix, why, dev in plans],
                 args.format, max_width=200))  # the reason is the point: not cut
    if table:
        print("\nskills, weakest first: dev = the adapter in use on the dev sets after the latest gate; "
              "round = the latest round's first answers; change in points since the round before")
    print(render(["skill", "what", "dev", "change", "n", "round", "change", "n"],
                 [[k.skill, k.words, pct(k.dev), pct(k.dev_change, True), k.dev_n, pct(k.round),
                   pct(k.round_change, True), k.round_n] for k in skills], args.format))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from console.report import draw
    from engine.api import Engine

    eng = Engine.open(args.home, read_only_ok=True)
    try:
        run_id = _run_or_latest(eng, args.run)
        curves = eng.curves(run_id)
    finally:
        eng.close()
    if curves.empty():
        raise EngineError(f"run {run_id} has nothing to plot yet (no training, scores or round statistics)")
    out = Path(args.output or f"swarm-run-{run_id}.{args.format}")
    if out.suffix.lstrip(".") not in ("png", "svg"):
        out = out.with_suffix(f".{args.format}")
    print(f"wrote {draw(curves, out)}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from console.render import render
    from engine.api import Engine
    from engine.compare import as_json
    from engine.protocol import trace_lines

    if (args.round is None) == (args.set is None and not args.task):
        print("swarm: replay a ROUND, or --set NAME, or --task ID", file=sys.stderr)
        return 2
    eng = Engine.open(args.home)
    try:
        run_id = _run_or_latest(eng, args.run)
        adapter = args.adapter if args.adapter in ("in-use", "base") else int(args.adapter)
        against = args.against if args.against in ("played", "base") else int(args.against)
        r = eng.replay(run_id, args.round, set=args.set, tasks=args.task or None, adapter=adapter, against=against)
    finally:
        eng.close()
    if args.format == "json":
        import json

        print(json.dumps(as_json(r), indent=1))
        return 0

    def mark(ok: bool) -> str:
        return "right" if ok else "wrong"

    rows = [[c.task.id, c.task.task.prompt.replace("\n", " ")[:60], c.task.task.reference[:20], mark(c.before[0]),
             mark(c.before[1]), mark(c.after[0]), mark(c.after[1]), c.change] for c in r.changes()]
    head = ["task", "prompt", "reference", "before first", "before debate", "after first", "after debate", "change"]
    if args.format == "table":
        b, a = r.before, r.after
        print(f"run {run_id}, {r.what}: {len(r.tasks)} task(s) replayed with the debate protocol (greedy; the verifier "
              f"scores afterwards)")
        for label, s in (("before", b), ("after", a)):
            d = s.score
            judge = "-" if d.judge_balanced_accuracy is None else f"{d.judge_balanced_accuracy:.0%}"
            print(f"  {label:<6} {s.name:<12} first {d.first}/{d.n} right, after debate {d.final}/{d.n}, "
                  f"judge balanced accuracy {judge}")
        print("  " + ", ".join(f"{k}: {v}" for k, v in r.counts().items()))
    print(render(head, rows, args.format))
    if args.format == "table" and args.show:
        for c in r.changes():
            if not c.change:
                continue
            print(f"\n== task {c.task.id} ({c.change}): {c.task.task.prompt.strip()}  [reference {c.task.task.reference}]")
            for label, s in (("before", r.before), ("after", r.after)):
                t = s.score.traces[c.task.id]
                print(f"-- {label}, {s.name}")
                for line in trace_lines(t, mark):
                    print(f"   {line}")
    return 0


def _adapter_arg(value: str) -> str:
    if value in ("in-use", "base") or value.isdigit():
        return value
    raise argparse.ArgumentTypeError("expected in-use, base or an adapter id")


def _against_arg(value: str) -> str:
    if value in ("played", "base") or value.isdigit():
        return value
    raise argparse.ArgumentTypeError("expected played, base or an adapter id")


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.sandbox import Limits, run_python

    try:
        code = Path(args.file).read_text()
    except OSError as e:
        print(f"swarm: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 1
    limits = Limits(wall_seconds=args.timeout, cpu_seconds=max(1, int(args.timeout)))
    print(run_python(code, limits=limits).to_json())
    return 0


def _cmd_llama_server_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from engine.runtime.server import build_server, find_server

    found = find_server()
    if found is not None and not args.force:
        print(f"llama-server is already built: {found} (--force builds it again)")
        return 0
    try:
        build_server(Path(args.source).expanduser() if args.source else None, args.jobs,
                     log=lambda text: print(f"llama-server: {text}", flush=True))
    except EngineError as e:
        print(f"swarm: {e}", file=sys.stderr)
        return 1
    return 0


def _cmd_llama_server_path(args: argparse.Namespace) -> int:
    from engine.runtime.server import find_server, server_dir

    found = find_server()
    if found is None:
        print(f"swarm: no llama-server (looked in {server_dir()}; run `swarm llama-server build`)", file=sys.stderr)
        return 1
    print(found)
    return 0


def _cmd_tasks_import(args: argparse.Namespace) -> int:
    from engine.api import Engine
    from engine.task_sets import import_jsonl

    eng = Engine.open(args.home)
    try:
        name, n, skipped = import_jsonl(eng.store, args.file, args.name)
    finally:
        eng.close()
    print(f"imported {n} task(s) into set {name!r}" + (f", skipped {skipped} already present" if skipped else ""))
    return 0


def _cmd_tasks_check(args: argparse.Namespace) -> int:
    from engine.api import Engine
    from engine.task_sets import check_set

    eng = Engine.open(args.home)
    try:
        results = check_set(eng.store, args.set)
    finally:
        eng.close()
    if not results:
        print("swarm: no imported tasks" + (f" in set {args.set!r}" if args.set else ""), file=sys.stderr)
        return 1
    passed = 0
    for r in results:
        passed += r.ok
        print(f"{'pass' if r.ok else 'FAIL'}  {r.set}/{r.task_id}" + ("" if r.ok else f"  ({r.status}: {r.detail})"))
    print(f"{passed}/{len(results)} canonical solutions pass")
    return 0 if passed == len(results) else 1


def _cmd_export(args: argparse.Namespace) -> int:
    from engine.api import Engine
    from engine.train.dataset import export_rows

    eng = Engine.open(args.home, read_only_ok=True)
    try:
        cols, rows = export_rows(eng.store, args.run, args.role)
        out = args.output or f"examples.{args.format}"
        if args.format == "jsonl":
            import json

            with open(out, "w") as fh:
                for r in rows:
                    rec = dict(zip(cols, r))
                    rec["messages"] = json.loads(rec["messages"])
                    fh.write(json.dumps(rec, default=str) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist([dict(zip(cols, r)) for r in rows]) if rows else
                           pa.table({c: pa.array([], pa.string()) for c in cols}), out)
    finally:
        eng.close()
    print(f"wrote {len(rows)} example(s) to {out}")
    return 0


BENCHMARKS = ("generation", "weights", "swap", "store", "responsiveness", "training", "formats", "round", "improve",
              "endpoints")


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    names = BENCHMARKS if args.name == "all" else (args.name,)
    if (args.seeds or args.rounds or args.recipe or args.measure_every != 1 or args.test_only or args.keep) \
            and args.name != "improve":
        print("swarm: --seeds, --rounds, --recipe, --measure-every, --test-only and --keep are options of "
              "'swarm bench improve'", file=sys.stderr)
        return 2
    if args.measure_every < 1:
        print(f"swarm: --measure-every must be at least 1 (got {args.measure_every})", file=sys.stderr)
        return 2
    if args.out:
        import os

        from benchmarks.common import OUT_ENV

        os.environ[OUT_ENV] = args.out
    for name in names:
        print(f"== {name}{' (quick)' if args.quick else ''}")
        extra: dict[str, object] = {}
        if name == "improve":
            extra = {"seeds": args.seeds, "rounds": args.rounds, "measure_every": args.measure_every,
                     "test_only": args.test_only, "keep": args.keep,
                     **({"recipe": args.recipe} if args.recipe else {})}
        importlib.import_module(f"benchmarks.{name}").run(quick=args.quick, **extra)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from console.serve import serve
    from engine.paths import home_dir

    return serve(home_dir(args.home), args.recipe, args.rounds, args.host, args.port, args.token)


def _cmd_console(args: argparse.Namespace) -> int:
    from console.app import run_console

    return run_console(recipe=getattr(args, "recipe", None), home=args.home, rounds=getattr(args, "rounds", 3))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swarm", description="A self-improving swarm of local LLM agents.")
    p.add_argument("--home", help="data dir holding the store and adapters (default: $SWARM_HOME or the user data dir)")
    p.set_defaults(func=_cmd_console)
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    d = sub.add_parser("doctor", help="report model, llama.cpp, training stack, data dir and store")
    d.add_argument("--recipe", default=None, help="recipe whose model, weights and GPU settings to check (default: default)")
    d.add_argument("--model", default=None, help="model to check instead of the recipe's (path or builtin:NAME)")
    d.add_argument("--quick", action="store_true", help="do not import torch to look for CUDA")
    d.set_defaults(func=_cmd_doctor)

    s = sub.add_parser("serve", help="the console in a browser (textual-serve), localhost only by default, with a token")
    s.add_argument("recipe", nargs="?")
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--token", help="the access token (default: a new random one, printed with the address)")
    s.set_defaults(func=_cmd_serve)

    s = sub.add_parser("replay", help="the same tasks under two adapters, side by side: what training changed")
    s.add_argument("run", nargs="?", type=int, help="run id (default: the latest)")
    s.add_argument("round", nargs="?", type=int, help="the round whose tasks to replay")
    s.add_argument("--set", help="replay a test set instead (e.g. test-2, imported:NAME)")
    s.add_argument("--task", type=int, action="append", help="replay this task (repeatable)")
    s.add_argument("--adapter", type=_adapter_arg, default="in-use", help="in-use (default), base or an adapter id")
    s.add_argument("--against", type=_against_arg, default="played",
                   help="played (default: the adapter the round played with; for a test set: base), base or an id")
    s.add_argument("--show", action="store_true", help="print the debate of every task that changed")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.set_defaults(func=_cmd_replay)

    s = sub.add_parser("report", help="a run's curves as one PNG or SVG figure")
    s.add_argument("run", nargs="?", type=int, help="run id (default: the latest)")
    s.add_argument("--format", choices=["png", "svg"], default="png")
    s.add_argument("-o", "--output", help="file to write (default: swarm-run-N.FORMAT)")
    s.set_defaults(func=_cmd_report)

    s = sub.add_parser("sql", help="run read-only SQL on the store")
    s.add_argument("query")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.set_defaults(func=_cmd_sql)

    r = sub.add_parser("recipes", help="list and validate recipes")
    r.add_argument("files", nargs="*", help="recipe files (default: the bundled ones)")
    r.set_defaults(func=_cmd_recipes)

    run = sub.add_parser("run", help="play rounds headless")
    run.add_argument("recipe", nargs="?", help="recipe name or path (default: default)")
    run.add_argument("--rounds", type=int, default=None, help="rounds to play (default 1)")
    run.add_argument("--no-train", action="store_true", help="do not train between rounds")
    run.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    run.add_argument("--resume", nargs="?", const="latest", default=None, metavar="RUN_ID",
                     help="continue a stopped or crashed run (default: the latest unfinished)")
    run.set_defaults(func=_cmd_run)

    ev = sub.add_parser("eval", help="score an adapter (or the base) on a run's test sets")
    ev.add_argument("run", nargs="?", type=int, help="run id (default: the latest run)")
    ev.add_argument("--adapter", type=_adapter_arg, default="in-use",
                    help="in-use (default: the run's promoted adapter), base, or an adapter id")
    ev.add_argument("--level", type=int, action="append", help="only this level's test set (repeatable)")
    ev.add_argument("--set", action="append", help="only this set, e.g. test-2 or imported:NAME (repeatable)")
    ev.add_argument("--debate", action="store_true",
                    help="also play the debate on each set (critique, revision, judge) and score what it changed")
    ev.add_argument("--format", choices=["table", "csv", "json"], default="table")
    ev.set_defaults(func=_cmd_eval)

    sk = sub.add_parser("skills", help="a run's curriculum per round and its skills, weakest first")
    sk.add_argument("run", nargs="?", type=int, help="run id (default: the latest run)")
    sk.add_argument("--format", choices=["table", "csv", "json"], default="table",
                    help="csv prints the two tables one after the other; json one object")
    sk.set_defaults(func=_cmd_skills)

    sb = sub.add_parser("sandbox", help="run code in the sandbox")
    sbsub = sb.add_subparsers(title="sandbox commands", metavar="ACTION", required=True)
    sbr = sbsub.add_parser("run", help="run FILE.py in the sandbox and print the result as JSON")
    sbr.add_argument("file")
    sbr.add_argument("--timeout", type=float, default=10.0, help="wall seconds (CPU seconds too)")
    sbr.set_defaults(func=_cmd_sandbox)

    ls = sub.add_parser("llama-server", help="llama.cpp's server for the openai backend: build it offline, or say where it is")
    lssub = ls.add_subparsers(title="llama-server commands", metavar="ACTION", required=True)
    lsb = lssub.add_parser("build", help="compile llama-server from the llama.cpp sources llama-cpp-python vendors, "
                           "linked to its libraries, into the user cache dir (once per machine and version)")
    lsb.add_argument("--source", help="a llama-cpp-python sdist (.tar.gz) or llama.cpp source tree (default: fetch "
                     "the installed version's sdist from the package index)")
    lsb.add_argument("--jobs", type=int, help="parallel compile jobs (default: every core)")
    lsb.add_argument("--force", action="store_true", help="build again even if one is there")
    lsb.set_defaults(func=_cmd_llama_server_build)
    lsp = lssub.add_parser("path", help="print the llama-server binary swarm runs (exit 1 if there is none)")
    lsp.set_defaults(func=_cmd_llama_server_path)

    tk = sub.add_parser("tasks", help="import and check external task sets")
    tksub = tk.add_subparsers(title="tasks commands", metavar="ACTION", required=True)
    ti = tksub.add_parser("import", help="import HumanEval-style JSONL into the python domain")
    ti.add_argument("file")
    ti.add_argument("--name", help="set name (default: the file's stem)")
    ti.set_defaults(func=_cmd_tasks_import)
    tc = tksub.add_parser("check", help="run every canonical solution through the verifier")
    tc.add_argument("set", nargs="?")
    tc.set_defaults(func=_cmd_tasks_check)

    ex = sub.add_parser("export", help="export data from the store")
    exsub = ex.add_subparsers(title="what", metavar="WHAT", required=True)
    exe = exsub.add_parser("examples", help="the training set: every role's verifier-labelled examples and replay")
    exe.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    exe.add_argument("--run", type=int, help="only this run")
    exe.add_argument("--role", action="append", choices=["solver", "reviser", "critic", "judge"],
                     help="only this role's examples (repeat for several; replay has no role)")
    exe.add_argument("-o", "--output", help="file to write (default: examples.FORMAT)")
    exe.set_defaults(func=_cmd_export)

    b = sub.add_parser("bench", help="run a benchmark; results go to benchmarks/results/NAME.json in a source "
                       "checkout, else to bench/ in the data dir")
    b.add_argument("name", choices=[*BENCHMARKS, "all"])
    b.add_argument("--quick", action="store_true", help="a smaller run with the same structure")
    b.add_argument("--seeds", type=lambda v: [int(x) for x in v.split(",")], metavar="S1,S2,...",
                   help="improve: the seeds to run (default: the recipe's seed and the next two)")
    b.add_argument("--rounds", type=int, help="improve: rounds per seed (default 8, --quick 2)")
    b.add_argument("--recipe", help="improve: the recipe to measure (default: default)")
    b.add_argument("--measure-every", type=int, default=1, metavar="K",
                   help="improve: measure the test sets after every K-th round and the last (default 1: every round; "
                   "measuring costs about as much as a round)")
    b.add_argument("--test-only", action="store_true",
                   help="improve: measure the test sets and facts alone, no dev sets and no debate (about a third "
                   "of the measuring time)")
    b.add_argument("--keep", metavar="DIR",
                   help="improve: keep each seed's data dir (store and adapters) in DIR/seed-S, to open with "
                   "'swarm --home DIR/seed-S' (default: a temporary one, removed)")
    b.add_argument("--out", metavar="DIR", help="write NAME.json here instead")
    b.set_defaults(func=_cmd_bench)

    c = sub.add_parser("console", help="open the console on a recipe")
    c.add_argument("recipe", nargs="?")
    c.add_argument("--rounds", type=int, default=3, help="rounds for a new run (default 3)")
    c.set_defaults(func=_cmd_console)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "func", None) is _cmd_run:
        args.rounds_given = args.rounds is not None
        if args.rounds is None:
            args.rounds = 1
        if args.rounds < 1:
            print("swarm: --rounds must be at least 1", file=sys.stderr)
            return 2
    try:
        return int(args.func(args) or 0)
    except EngineError as e:
        print(f"swarm: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("swarm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
