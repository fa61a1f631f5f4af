"""The ``swarm`` command.

``swarm`` alone opens the console; subcommands run headless. Every EngineError becomes one
line on stderr and exit status 1 (2 for usage errors, from argparse).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine.errors import EngineError


def _cmd_doctor(args: argparse.Namespace) -> int:
    from engine.doctor import run_checks

    checks = run_checks(args.home, model=args.model, deep=not args.quick)
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
    from engine.store import Store
    from engine.store.store import check_read_only

    check_read_only(args.query)  # refuse writes before touching the file
    with Store.open(store_path(home_dir(args.home))) as store:
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


def _cmd_console(args: argparse.Namespace) -> int:
    from console.app import run_console

    return run_console(recipe=getattr(args, "recipe", None), home=args.home)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swarm", description="A self-improving swarm of local LLM agents.")
    p.add_argument("--home", help="data dir holding the store and adapters (default: $SWARM_HOME or the user data dir)")
    p.set_defaults(func=_cmd_console)
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    d = sub.add_parser("doctor", help="report model, llama.cpp, training stack, data dir and store")
    d.add_argument("--model", default="builtin:smollm2-135m", help="model to check (path or builtin:NAME)")
    d.add_argument("--quick", action="store_true", help="do not import torch to look for CUDA")
    d.set_defaults(func=_cmd_doctor)

    s = sub.add_parser("sql", help="run read-only SQL on the store")
    s.add_argument("query")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.set_defaults(func=_cmd_sql)

    r = sub.add_parser("recipes", help="list and validate recipes")
    r.add_argument("files", nargs="*", help="recipe files (default: the bundled ones)")
    r.set_defaults(func=_cmd_recipes)

    c = sub.add_parser("console", help="open the console on a recipe")
    c.add_argument("recipe", nargs="?")
    c.set_defaults(func=_cmd_console)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
