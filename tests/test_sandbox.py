"""The sandbox contains hostile programs and reports what happened."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.sandbox import Limits, isolation_available, run_python

FAST = Limits(wall_seconds=3, cpu_seconds=2)


def run(code: str, limits: Limits = FAST):  # type: ignore[no-untyped-def]
    return run_python(textwrap.dedent(code), limits=limits)


def test_ok_and_output() -> None:
    r = run("print('hello')")
    assert (r.status, r.returncode, r.stdout) == ("ok", 0, "hello\n")


def test_assertion_is_failed_other_exception_is_error() -> None:
    assert run("assert 1 == 2, 'no'").status == "failed"
    r = run("1 / 0")
    assert r.status == "error" and "ZeroDivisionError" in r.detail


def test_infinite_loop_hits_cpu_limit() -> None:
    r = run("while True: pass")
    assert r.status == "timeout" and r.seconds < 6


def test_sleeping_past_wall_timeout() -> None:
    r = run("import time; time.sleep(60)")
    assert r.status == "timeout" and r.seconds < 6


def test_fork_bomb_is_contained() -> None:
    r = run("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    assert r.status in {"timeout", "killed"}
    assert _no_sandbox_processes()


def test_memory_bomb() -> None:
    r = run("x = bytearray(4 * 1024**3)")
    assert r.status == "memory"


def test_huge_output_is_truncated() -> None:
    r = run("import sys\nfor _ in range(200000): sys.stdout.write('x' * 1000)")
    assert r.truncated and len(r.stdout) <= FAST.output_bytes


def test_writing_outside_the_temp_dir(tmp_path: Path) -> None:
    target = tmp_path / "escape.txt"
    os.chmod(tmp_path, 0o777)
    r = run(f"""
        import os
        for p in [{str(target)!r}, '/tmp/swarm-escape.txt', os.path.expanduser('~root/escape.txt')]:
            try:
                open(p, 'w').write('x')
                print('wrote', p)
            except OSError as e:
                print('refused', p, type(e).__name__)
    """)
    assert r.status == "ok"
    assert not Path("/tmp/swarm-escape.txt").exists()
    if os.geteuid() == 0:  # the sandbox runs as an unprivileged uid: no write into root's dirs
        assert not target.exists() or "private" in r.isolation
    assert not Path(os.path.expanduser("~root/escape.txt")).exists()


def test_no_network() -> None:
    server = subprocess.Popen([sys.executable, "-c", (
        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "print(s.getsockname()[1], flush=True); s.settimeout(5)\n"
        "try: s.accept()\nexcept OSError: pass")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        r = run(f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); print('connected')")
        if "netns" in r.isolation:
            assert r.status == "error" and "connected" not in r.stdout
    finally:
        server.kill()
        server.wait()


def test_killing_the_parent_fails_and_host_survives() -> None:
    r = run("import os, signal; os.kill(os.getppid(), signal.SIGKILL); os.killpg(0, signal.SIGKILL); print('alive')")
    assert r.status in {"error", "killed"}
    assert run("print(1)").status == "ok"  # we are still here


def test_detached_daemon_dies() -> None:
    r = run("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(300)
            os._exit(0)
        print('parent done')
    """)
    assert r.status == "ok"
    assert _no_sandbox_processes()


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARM_SECRET", "hunter2")
    r = run("import os; print(sorted(os.environ))")
    assert "SWARM_SECRET" not in r.stdout and "hunter2" not in r.stdout


def test_temp_dir_is_removed() -> None:
    r = run("import os; print(os.getcwd())")
    assert r.status == "ok"
    leftovers = [p for p in Path("/tmp").glob("swarm-sbx-*")]
    assert not leftovers


def test_isolation_level_is_reported() -> None:
    level = isolation_available()
    assert "rlimits" in level


def _no_sandbox_processes() -> bool:
    if os.geteuid() != 0:
        return True
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
            state = next(line for line in status.splitlines() if line.startswith("State:")).split()[1]
            if 200_000 <= uid < 260_000 and state not in ("Z", "X"):
                return False
    return True
