"""swarm serve: the console over HTTP (textual-serve), refused without the token."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, cookie: str | None = None) -> tuple[int, str, str]:
    req = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(), r.headers.get("Set-Cookie", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), ""


async def console_output(url: str, seconds: float = 60.0) -> bytes:
    """What the console sends a browser over the websocket until it shows its first screen."""
    import aiohttp

    seen = b""
    async with aiohttp.ClientSession(cookies={"swarm_token": "s3cret"}) as session:
        async with session.ws_connect(url) as ws:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and b"solver-a" not in seen:
                try:
                    msg = await ws.receive(timeout=deadline - time.monotonic())
                except asyncio.TimeoutError:
                    break
                if msg.type == aiohttp.WSMsgType.BINARY:
                    seen += msg.data
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    seen += msg.data.encode()
                else:
                    break
    return seen


def test_serve_needs_the_token_and_serves_the_console_page(swarm_home: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "--home", str(swarm_home), "serve", "default",
                             "--port", str(port), "--token", "s3cret"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == f"open http://localhost:{port}/?token=s3cret"
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        status, body, _ = get(base + "/")
        assert status == 401 and "token" in body
        assert get(base + "/?token=wrong")[0] == 401
        assert get(base + "/static/js/textual.js")[0] == 401  # assets too
        status, body, cookie = get(base + "/?token=s3cret")
        assert status == 200 and "/ws" in body  # the page that opens the console's websocket
        assert "swarm_token=s3cret" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert get(base + "/static/js/textual.js", cookie="swarm_token=s3cret")[0] == 200
        assert b"solver-a" in asyncio.run(console_output(f"ws://127.0.0.1:{port}/ws?width=100&height=30"))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_console_command_runs_this_python_on_this_data_dir(tmp_path: Path) -> None:
    from console.serve import console_command

    cmd = console_command(tmp_path / "my home", "arith", 4)
    assert cmd.startswith(sys.executable) and f"--home '{tmp_path / 'my home'}'" in cmd
    assert cmd.endswith("console --rounds 4 arith")
