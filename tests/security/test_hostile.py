"""Hostile programs through the sandbox: each is contained, recorded with the right status,
and leaves the host as it was (no process left, no file outside its temp dir, store intact)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from engine.sandbox import Limits, run_python
from engine.store import Store
from tests.test_sandbox import _no_sandbox_processes

LIMITS = Limits(wall_seconds=3, cpu_seconds=2, memory_bytes=256 * 2**20)
ANY_FAIL = {"error", "failed", "killed", "timeout", "memory"}

# name -> (program, statuses it may end with, text that must NOT appear in its stdout)
HOSTILE: dict[str, tuple[str, set[str], str | None]] = {
    "infinite loop": ("while True: pass", {"timeout"}, None),
    "busy threads": ("import threading\ndef f():\n    while True: pass\n[threading.Thread(target=f).start() for _ in range(8)]\nf()", {"timeout"}, None),
    "sleep past timeout": ("import time; time.sleep(30)", {"timeout"}, None),
    "fork bomb": ("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass", {"timeout", "killed"}, None),
    "process spawn bomb": ("import subprocess\nwhile True:\n    try: subprocess.Popen(['sleep', '100'])\n    except OSError: pass", {"timeout", "killed", "error"}, None),
    "memory bomb": ("x = bytearray(3 * 2**30)", {"memory"}, None),
    "memory creep": ("x = []\nwhile True: x.append(' ' * 2**20)", {"memory", "killed"}, None),
    "huge stdout": ("import sys\nwhile True: sys.stdout.write('x' * 65536)", {"timeout", "ok", "error"}, None),
    "huge stderr": ("import sys\nfor _ in range(10**5): sys.stderr.write('e' * 4096)", {"ok", "timeout", "error"}, None),
    "deep recursion": ("import sys\nsys.setrecursionlimit(10**7)\ndef f(n): return f(n + 1)\nf(0)", {"error", "killed", "memory", "timeout"}, None),
    "huge file": ("with open('big', 'wb') as f:\n    while True: f.write(b'0' * 2**20)", {"error", "killed"}, None),
    "write to home": ("import os\nopen(os.path.expanduser('~root/.swarm-pwned'), 'w').write('x')\nprint('WROTE')", ANY_FAIL, "WROTE"),
    "write to /tmp": ("open('/tmp/swarm-pwned', 'w').write('x')\nprint('ok')", {"ok", "error"}, None),
    "write to /var/tmp": ("open('/var/tmp/swarm-pwned', 'w').write('x')", {"ok", "error"}, None),
    "write the store": ("open(STORE, 'ab').write(b'garbage')\nprint('WROTE')", ANY_FAIL, "WROTE"),
    "delete the store": ("import os; os.remove(STORE); print('DELETED')", ANY_FAIL, "DELETED"),
    "read the store": ("print(open(STORE, 'rb').read(16))", ANY_FAIL, "DUCK"),
    "read root's files": ("print(open('/root/.bashrc').read())", ANY_FAIL, None),
    "read environment": ("import os; print(os.environ)", {"ok"}, "SWARM_CANARY"),
    "read parent's environment": ("print(open(f'/proc/{__import__(\"os\").getppid()}/environ').read())", ANY_FAIL, "SWARM_CANARY"),
    "connect to loopback": ("import socket; socket.create_connection(('127.0.0.1', 22), timeout=2); print('CONNECTED')", ANY_FAIL, "CONNECTED"),
    "resolve a host": ("import socket; print(socket.gethostbyname('example.com'))", ANY_FAIL, None),
    "spawn a shell": ("import subprocess; print(subprocess.run(['sh', '-c', 'id -u'], capture_output=True, text=True).stdout)", {"ok", "error"}, None),
    "setsid daemon": ("import os, time\nif os.fork() == 0:\n    os.setsid(); time.sleep(100)\nprint('parent')", {"ok"}, None),
    "double fork orphan": ("import os, time\nif os.fork() == 0:\n    if os.fork() == 0:\n        time.sleep(100)\n    os._exit(0)\nos.wait(); print('parent')", {"ok"}, None),
    "ignore SIGTERM": ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(30)", {"timeout"}, None),
    "kill the parent": ("import os, signal; os.kill(os.getppid(), signal.SIGKILL)", ANY_FAIL, None),
    "kill the process group": ("import os, signal; os.killpg(os.getpgid(0), signal.SIGKILL)", {"killed"}, None),
    # kill(-1) reaches only what the sandbox uid may signal, which is nothing but the run itself
    "kill every process": ("import os, signal; os.kill(-1, signal.SIGKILL)", ANY_FAIL | {"ok"}, None),
    "ctypes segfault": ("import ctypes; ctypes.string_at(0)", {"killed"}, None),
    "os.abort": ("import os; os.abort()", {"killed"}, None),
    "exit non-zero": ("import sys; sys.exit(3)", {"error"}, None),
    "close stdout": ("import os; os.close(1); os.close(2); import time; time.sleep(30)", {"timeout"}, None),
    "read stdin": ("import sys; print(repr(sys.stdin.read()))", {"ok"}, None),
    "change rlimits": ("import resource; resource.setrlimit(resource.RLIMIT_AS, (-1, -1))", ANY_FAIL, None),
}


@pytest.fixture(scope="module")
def store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("store")
    os.chmod(d, 0o755)
    path = d / "swarm.duckdb"
    with Store.open(path) as s:
        s.execute("insert into runs (recipe_name, recipe_toml, model_path, seed, rounds_planned, settings, status) "
                  "values ('x', '', '', 0, 1, '{}', 'finished')")
    os.chmod(path, 0o644)  # world-readable on purpose: only the sandbox's uid must stop a reader
    return path


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_is_contained(name: str, store_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARM_CANARY", "secret-canary")
    code, statuses, forbidden = HOSTILE[name]
    before = store_file.read_bytes()
    leftovers = {p for p in ("/tmp/swarm-pwned", "/var/tmp/swarm-pwned", os.path.expanduser("~root/.swarm-pwned"))
                 if os.path.exists(p)}
    res = run_python(f"STORE = {str(store_file)!r}\n" + textwrap.dedent(code), limits=LIMITS)
    assert res.status in statuses, (res.status, res.detail, res.stderr[-300:])
    if forbidden:
        assert forbidden not in res.stdout
    assert res.seconds < LIMITS.wall_seconds + 5
    assert len(res.stdout) <= LIMITS.output_bytes and len(res.stderr) <= LIMITS.output_bytes
    assert _no_sandbox_processes()
    for p in ("/tmp/swarm-pwned", "/var/tmp/swarm-pwned", os.path.expanduser("~root/.swarm-pwned")):
        assert p in leftovers or not os.path.exists(p), f"{name} wrote {p}"
    assert store_file.read_bytes() == before
    with Store.open(store_file, read_only=True) as s:
        assert s.execute("select count(*) from runs")[0][0] == 1


def test_at_least_thirty_programs() -> None:
    assert len(HOSTILE) >= 30
