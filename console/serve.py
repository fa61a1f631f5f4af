"""``swarm serve``: the console in a browser, through textual-serve, for a workstation reached
over an SSH tunnel (``ssh -L 8000:localhost:8000 host``).

Bound to localhost by default. Every request must carry the token printed at start, as
``?token=`` on the first page (which then sets an HttpOnly, SameSite=Strict cookie the page's
websocket and assets send back); anything else gets 401. Each browser tab runs its own console
process: the first holds the store, later ones are read-only views of it (as a second terminal
console would be).
"""

from __future__ import annotations

import hmac
import secrets
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

COOKIE = "swarm_token"


def console_command(home: Path, recipe: str | None, rounds: int) -> str:
    """The shell command each browser session runs: this Python's console on this data dir."""
    args = [sys.executable, "-m", "console.cli", "--home", str(home), "console", "--rounds", str(rounds)]
    if recipe:
        args.append(recipe)
    return shlex.join(args)


def make_server(command: str, host: str, port: int, token: str):  # type: ignore[no-untyped-def]
    """A textual-serve Server that refuses requests without ``token``."""
    from aiohttp import web
    from textual_serve.server import Server

    @web.middleware
    async def need_token(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise web.HTTPUnauthorized(text="swarm serve: open the address printed at start (it carries ?token=...)\n")
        response = await handler(request)
        if "token" in request.query and not response.prepared:
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    class TokenServer(Server):  # type: ignore[misc]
        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(need_token)
            return app

    return TokenServer(command, host=host, port=port, title="swarm")


def serve(home: Path, recipe: str | None, rounds: int, host: str, port: int, token: str | None) -> int:
    token = token or secrets.token_urlsafe(24)
    server = make_server(console_command(home, recipe, rounds), host, port, token)
    if host not in ("localhost", "127.0.0.1", "::1"):
        print(f"swarm serve: listening on {host}, not only this machine: anyone who can reach it and has the "
              "token can drive the swarm", file=sys.stderr)
    print(f"open http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/?token={token}", flush=True)
    server.serve()
    return 0
