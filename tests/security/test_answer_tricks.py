"""Answers that try to pass without being right: every one fails, with the status recorded here.

The task is ``add(a, b)``; its tests call the answer with a few pairs. Each trick below is an
answer a solver (or a reward-hacking model) could write; the verifier must not call any of them
correct. The status each gets is part of the record: a change of status is a change of
behaviour worth a look, so it is asserted exactly.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from engine.sandbox import Limits
from engine.tasks.harness import check_candidate
from engine.tasks.python import PYTHON, humaneval_task

TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
WRONG = "def add(a, b):\n    return 0\n"
LIMITS = Limits(wall_seconds=3, cpu_seconds=1)

# name -> (answer, the status it gets)
TRICKS: dict[str, tuple[str, str]] = {
    "sys.exit(0) at import": ("import sys\nsys.exit(0)\n" + WRONG, "error"),
    "sys.exit(0) in the function": ("import sys\ndef add(a, b):\n    sys.exit(0)\n", "error"),
    "raise SystemExit in the function": ("def add(a, b):\n    raise SystemExit(0)\n", "error"),
    "os._exit(0) at import": ("import os\nos._exit(0)\n", "error"),
    "os._exit(0) in the function": ("import os\ndef add(a, b):\n    os._exit(0)\n", "error"),
    "kill itself": ("import os, signal\ndef add(a, b):\n    os.kill(os.getpid(), signal.SIGKILL)\n", "killed"),
    "kill the checker": ("import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return a + b\n",
                         "killed"),
    "kill the whole process group": ("import os, signal\nos.killpg(os.getpgid(0), signal.SIGKILL)\n", "killed"),
    "stop the checker": ("import os, signal\ndef add(a, b):\n    os.kill(os.getppid(), signal.SIGSTOP)\n    return a + b\n",
                         "timeout"),
    "redefine AssertionError": ("import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n" + WRONG,
                                "failed"),
    "define its own check": ("def check(candidate):\n    pass\n" + WRONG, "failed"),
    "patch every check found by gc": (
        "import gc\nfor f in gc.get_objects():\n    if getattr(f, '__name__', '') == 'check':\n"
        "        f.__code__ = (lambda c: None).__code__\n" + WRONG, "failed"),
    "print a result line, then exit": (
        "import json, os, sys\nsys.stdout.write(json.dumps({'token': '0' * 32, 'results': [{'status': 'ok'}]}) + '\\n')\n"
        "sys.stdout.flush()\nos._exit(0)\n", "error"),
    "read the token from stdin": ("import sys, os\nprint(sys.stdin.read())\nos._exit(0)\n", "error"),
    "atexit prints ok": ("import atexit, sys\natexit.register(lambda: print('ok'))\nsys.exit(0)\n", "error"),
    "object equal to everything": ("class E:\n    def __eq__(self, o):\n        return True\n"
                                   "def add(a, b):\n    return E()\n", "error"),
    "int subclass equal to everything": ("class I(int):\n    def __eq__(self, o):\n        return True\n"
                                         "    __hash__ = int.__hash__\ndef add(a, b):\n    return I(0)\n", "error"),
    "read the checker's memory": ("import os\ndef add(a, b):\n    open(f'/proc/{os.getppid()}/mem', 'rb').read(1)\n"
                                  "    return 0\n", "error"),
    "write to the checker's stdout": (
        "import os\nos.write(os.open(f'/proc/{os.getppid()}/fd/1', os.O_WRONLY), b'ok\\n')\n" + WRONG, "error"),
    "look for the tests on disk": (
        "import os\nseen = [open(n).read() for n in os.listdir('.') if os.path.isfile(n)]\n"
        "def add(a, b):\n    return 5 if any('candidate(2, 3) == 5' in s for s in seen) else -99\n", "failed"),
    "silence output and return garbage": ("import sys, builtins\nbuiltins.print = lambda *a, **k: None\n"
                                          "sys.stdout = None\n" + WRONG, "failed"),
    "raise AssertionError itself": ("def add(a, b):\n    raise AssertionError('fine')\n", "error"),
    "not a number": ("def add(a, b):\n    return float('nan')\n", "failed"),
    "loop forever": ("def add(a, b):\n    while True:\n        pass\n", "timeout"),
    "ignore the CPU signal and loop": ("import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
                                       "def add(a, b):\n    while True:\n        pass\n", "timeout"),
    "segfault": ("import ctypes\ndef add(a, b):\n    return ctypes.string_at(0)\n", "killed"),
    "eat memory": ("def add(a, b):\n    x = bytearray(2**40)\n", "memory"),
}


def test_there_are_enough_tricks() -> None:
    assert len(TRICKS) >= 15


@pytest.mark.parametrize("name", sorted(TRICKS))
def test_trick_fails(name: str) -> None:
    answer, status = TRICKS[name]
    got = check_candidate(answer, "add", TEST, limits=LIMITS)
    assert got.status == status, (name, got)


@pytest.mark.parametrize(
    ("answer", "test"),
    [
        ("def add(a, b):\n    return a + b\n", TEST),
        ("def f(xs):\n    return sorted(set(xs)), {x: x * 2 for x in xs}, (len(xs),), 0.5, None, True, b'x', 1j, frozenset(xs)\n",
         "def check(c):\n    s, d, t, h, n, b, by, z, fs = c([2, 1, 2])\n    assert s == [1, 2] and d == {1: 2, 2: 4} and t == (3,)\n"
         "    assert h == 0.5 and n is None and b is True and by == b'x' and z == 1j and fs == frozenset({1, 2})\n"),
        ("def f(x):\n    raise ValueError('no')\n",
         "def check(c):\n    try:\n        c(1)\n    except Exception:\n        return\n    assert False\n"),
        ("def f(x, *, k=1):\n    print('talking a lot' * 1000)\n    return x * k\n",
         "def check(c):\n    assert c(3, k=2) == 6\n"),
    ],
)
def test_real_answers_pass(answer: str, test: str) -> None:
    entry = "add" if answer.startswith("def add") else "f"
    assert check_candidate(answer, entry, test).status == "ok"


def test_tests_may_call_helpers_from_the_task_prompt() -> None:
    prompt = textwrap.dedent('''\
        def encode(s: str) -> str:
            return s[::-1]


        def decode(s: str) -> str:
            """Undo encode."""
        ''')
    test = "def check(candidate):\n    assert candidate(encode('abc')) == 'abc'\n"
    task = humaneval_task({"task_id": "t/1", "prompt": prompt, "entry_point": "decode", "test": test}, "x")
    assert PYTHON.verify(task, "```python\n    return s[::-1]\n```").correct
    assert not PYTHON.verify(task, "```python\n    return s\n```").correct


def test_a_record_whose_prompt_or_solution_exits_is_reported_failing(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    base = {"entry_point": "add", "test": TEST}
    records = [
        dict(base, task_id="x/exit-in-body", prompt="def add(a, b):\n", canonical_solution="    import sys; sys.exit(0)\n"),
        dict(base, task_id="x/exit-in-prompt", prompt="import sys\nsys.exit(0)\ndef add(a, b):\n",
             canonical_solution="    return a + b\n"),
        dict(base, task_id="x/fine", prompt="def add(a, b):\n", canonical_solution="    return a + b\n"),
    ]
    f = tmp_path / "tricks.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["tasks", "import", str(f)]) == 0
    capsys.readouterr()
    assert main(["tasks", "check", "tricks"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  tricks/x/exit-in-body" in out and "FAIL  tricks/x/exit-in-prompt" in out
    assert "pass  tricks/x/fine" in out and "1/3 canonical solutions pass" in out
