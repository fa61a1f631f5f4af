"""Smoke test: the real console in a real terminal (tmux): it opens, panes show, q quits."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_for(session: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(session)
        if text in screen:
            return screen
        time.sleep(0.2)  # polling a real terminal: there is nothing to await
    raise AssertionError(f"{text!r} never appeared; screen:\n{screen}")


def test_console_in_tmux(tmp_path: Path, tiny_recipe: Path, swarm_home: Path) -> None:
    session = f"swarm-smoke-{tmp_path.name}"[:40]
    cmd = f"{sys.executable} -m console.cli --home {swarm_home} console {tiny_recipe} --rounds 1"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True)
    try:
        screen = wait_for(session, "solver-a")
        for name in ("proposer", "solver-b", "critic", "judge"):
            assert name in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "s"], check=True)
        wait_for(session, "finished", timeout=180)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            alive = subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0
            if not alive:
                break
            time.sleep(0.2)
        assert not alive, capture(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
