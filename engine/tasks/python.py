"""Python: write a function that passes tests, checked by running it in the sandbox.

A task has a spec (the prompt), an entry point and a test program defining ``check(candidate)``
(HumanEval's shape, so imported sets and generated ones verify the same way). Answers are
checked by ``engine.tasks.harness``: the tests call the answer across a process boundary and
only a run that reaches its end with the run's secret token counts, so an early exit, a patched
``check`` or an object equal to everything cannot pass. Generated tasks come from a seeded bank
of small function templates whose expected outputs come from running the reference in the
sandbox. Proposed tasks are a spec, a reference implementation and test inputs written by the
proposer; the reference must run, finish, and give the same outputs in two fresh processes.
A task's canonical forms are its normalised spec and its behaviour (the reference's outputs
on its inputs), so a restated task is still a duplicate.

>>> extract_code("Sure:\\n```python\\ndef f(x):\\n    return x\\n```\\nDone.")
'def f(x):\\n    return x'
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import re
import textwrap
from dataclasses import dataclass

from engine.tasks.common import Accept, Task, Verdict
from engine.tasks.harness import LIMITS, Checked, outputs_many
from engine.tasks.harness import check_candidate
_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S)


def extract_code(text: str) -> str:
    """The first fenced code block, else the whole text."""
    m = _FENCE.search(text)
    return (m.group(1) if m else text).strip("\n").rstrip()


def fingerprint(spec: str, entry_point: str) -> str:
    norm = re.sub(r"\s+", " ", spec.strip().lower())
    return "py:" + entry_point + ":" + hashlib.sha256(norm.encode()).hexdigest()[:16]


def candidate_source(candidate: str, entry_point: str, prompt: str = "") -> str:
    """The code to load. A candidate lacking the function gets the prompt first (HumanEval
    completions continue the prompt's signature)."""
    if not re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", candidate, re.M) and prompt:
        return prompt + candidate
    return candidate


def tests_from_io(entry_point: str, cases: list[tuple[str, str]]) -> str:
    """A ``check`` function from (args repr, expected repr) pairs."""
    lines = ["def check(candidate):"]
    for args, expected in cases:
        lines.append(f"    assert candidate(*{args}) == {expected}, {f'{entry_point}{args}'!r}")
    if len(lines) == 1:
        lines.append("    pass")
    return "\n".join(lines) + "\n"


def behaviour_key(inputs: list[str], outputs: list[str]) -> str:
    """What a function does on its inputs, whatever it is called or however it is specified."""
    pairs = sorted(zip(inputs, outputs))
    return "pyb:" + hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


def _outputs_or_reason(checked: Checked) -> list[str] | str:
    if checked.status == "nondeterministic":
        return "non-deterministic: two runs of the reference gave different outputs"
    if checked.status != "ok" or checked.outputs is None:
        return f"reference {checked.status}: {checked.detail}"
    for out in checked.outputs:
        try:
            ast.literal_eval(out)
        except (ValueError, SyntaxError):
            return f"output is not a plain value: {out[:60]}"
    return checked.outputs


def reference_outputs(reference: str, entry_point: str, inputs: list[str]) -> list[str] | str:
    """Run the reference on each args tuple in the sandbox, twice; the outputs' reprs, or why not."""
    return _outputs_or_reason(outputs_many([(reference, entry_point, inputs)], limits=LIMITS)[0])


@dataclass(frozen=True)
class _Template:
    entry_point: str
    spec: str  # may use {k}
    reference: str  # may use {k}
    inputs: list[str]
    level: int


_BANK = [
    _Template("add_k", "Write a function add_k(x) that returns x plus {k}.", "def add_k(x):\n    return x + {k}", ["(0,)", "(5,)", "(-3,)", "(100,)"], 1),
    _Template("times_k", "Write a function times_k(x) that returns x multiplied by {k}.", "def times_k(x):\n    return x * {k}", ["(0,)", "(7,)", "(-2,)"], 1),
    _Template("sum_evens", "Write a function sum_evens(xs) that returns the sum of the even numbers in the list xs.", "def sum_evens(xs):\n    return sum(x for x in xs if x % 2 == 0)", ["([],)", "([1, 2, 3, 4],)", "([5, 7],)", "([-2, 10, 3],)"], 2),
    _Template("count_char", "Write a function count_char(s) that returns how many times the letter '{c}' occurs in the string s.", "def count_char(s):\n    return s.count('{c}')", ["('',)", "('banana',)", "('{c}{c}x{c}',)"], 2),
    _Template("clip", "Write a function clip(x) that returns x limited to the range 0 to {k} (inclusive).", "def clip(x):\n    return max(0, min({k}, x))", ["(-5,)", "(3,)", "(1000,)"], 3),
    _Template("reverse_words", "Write a function reverse_words(s) that returns the words of s in reverse order, joined by single spaces.", "def reverse_words(s):\n    return ' '.join(reversed(s.split()))", ["('a b c',)", "('hello',)", "('',)", "('  x   y ',)"], 3),
    _Template("nth_fib", "Write a function nth_fib(n) that returns the n-th Fibonacci number, with nth_fib(0) == 0 and nth_fib(1) == 1.", "def nth_fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a", ["(0,)", "(1,)", "(10,)", "(20,)"], 4),
    _Template("dedupe", "Write a function dedupe(xs) that returns the list xs without repeated items, keeping the first occurrence of each.", "def dedupe(xs):\n    seen = set()\n    out = []\n    for x in xs:\n        if x not in seen:\n            seen.add(x)\n            out.append(x)\n    return out", ["([],)", "([1, 1, 2, 1, 3],)", "(['a', 'b', 'a'],)"], 4),
    _Template("is_palindrome", "Write a function is_palindrome(s) that returns True if s reads the same backwards, ignoring case and spaces.", "def is_palindrome(s):\n    t = s.replace(' ', '').lower()\n    return t == t[::-1]", ["('',)", "('Never odd or even',)", "('abc',)"], 5),
    _Template("digit_sum_k", "Write a function digit_sum_k(n) that returns the sum of the decimal digits of n, times {k}.", "def digit_sum_k(n):\n    return {k} * sum(int(d) for d in str(abs(n)))", ["(0,)", "(123,)", "(-45,)", "(9999,)"], 5),
]


def _render(t: _Template, rng: random.Random) -> tuple[str, str, list[str]]:
    k = rng.randint(2, 50)
    c = rng.choice("abcdefghij")
    fill = {"k": str(k), "c": c}

    def sub(s: str) -> str:
        return re.sub(r"\{(k|c)\}", lambda m: fill[m.group(1)], s)

    return sub(t.spec), sub(t.reference), [sub(i) for i in t.inputs]


def _task_from(spec: str, entry_point: str, reference: str, inputs: list[str], outs: list[str], difficulty: int,
               source: str) -> Task:
    test = tests_from_io(entry_point, list(zip(inputs, outs)))
    return Task(
        domain="python",
        prompt=f"{spec}\nReply with the Python function in a ```python code block.",
        reference=reference,
        difficulty=difficulty,
        fingerprint=fingerprint(spec, entry_point),
        payload={"entry_point": entry_point, "test": test, "spec": spec, "source": source},
        behaviour=behaviour_key(inputs, outs),
    )


def make_task(spec: str, entry_point: str, reference: str, inputs: list[str], difficulty: int, source: str) -> Task | str:
    outs = reference_outputs(reference, entry_point, inputs)
    if isinstance(outs, str):
        return outs
    return _task_from(spec, entry_point, reference, inputs, outs, difficulty, source)


class Python:
    name = "python"

    def generate(self, rng: random.Random, difficulty: int, n: int, accept: Accept | None = None) -> list[Task]:
        """Up to ``n`` distinct tasks from the template bank; their expected outputs come from
        running the references, all in one sandbox run."""
        pool = [t for t in _BANK if t.level <= difficulty] or _BANK[:2]
        drafts: dict[str, tuple[str, str, str, list[str]]] = {}
        tries = 0
        while len(drafts) < n and tries < max(50, n * 50):
            tries += 1
            spec, ref, inputs = _render(rng.choice(pool), rng)
            entry = re.search(r"def (\w+)", ref).group(1)  # type: ignore[union-attr]
            key = fingerprint(spec, entry)
            if key in drafts or (accept is not None and not accept(key)):
                continue
            drafts[key] = (spec, entry, ref, inputs)
        checked = outputs_many([(ref, entry, inputs) for spec, entry, ref, inputs in drafts.values()], limits=LIMITS)
        tasks = []
        for (spec, entry, ref, inputs), c in zip(drafts.values(), checked):
            outs = _outputs_or_reason(c)
            if not isinstance(outs, str):
                tasks.append(_task_from(spec, entry, ref, inputs, outs, difficulty, "generated"))
        return tasks

    def level_name(self, level: int) -> str:
        names = [t.entry_point for t in _BANK if t.level <= level] or [t.entry_point for t in _BANK[:2]]
        return f"python level {level} ({len(names)} families)"

    def verify(self, task: Task, text: str) -> Verdict:
        code = extract_code(text)
        if not code:
            return Verdict(False, "unparsable", None, "no code in the answer")
        entry = str(task.payload["entry_point"])
        prompt = str(task.payload.get("prompt_code", ""))
        res = check_candidate(candidate_source(code, entry, prompt), entry, str(task.payload["test"]), prompt)
        return Verdict(res.status == "ok", res.status, code, res.detail[:300])

    def parse_proposal(self, text: str, difficulty: int) -> Task | str:
        """Expect a spec line, a fenced reference implementation and an INPUTS line."""
        code = extract_code(text)
        m = re.search(r"^\s*def\s+(\w+)\s*\(", code, re.M)
        if not m:
            return "no function definition in the proposal"
        entry = m.group(1)
        spec_m = re.search(r"(?:SPEC|Spec|Task)\s*:\s*(.+)", text)
        spec = spec_m.group(1).strip() if spec_m else ""
        if len(spec) < 10:
            return "no SPEC: line describing the function"
        inp_m = re.search(r"INPUTS\s*:\s*(.+)", text)
        if not inp_m:
            return "no INPUTS: line"
        try:
            raw = ast.literal_eval(inp_m.group(1).strip())
        except (ValueError, SyntaxError):
            return "INPUTS is not a Python literal list"
        if not isinstance(raw, list) or not raw:
            return "INPUTS must be a non-empty list"
        inputs = [repr(a if isinstance(a, tuple) else (a,)) for a in raw[:10]]
        return make_task(spec, entry, code, inputs, difficulty, "proposed")


def humaneval_task(record: dict[str, object], set_name: str) -> Task:
    """A HumanEval-style record (task_id, prompt, entry_point, test, canonical_solution?)."""
    for key in ("task_id", "prompt", "entry_point", "test"):
        if not isinstance(record.get(key), str) or not str(record.get(key)).strip():
            raise ValueError(f"missing or empty field {key!r}")
    prompt = str(record["prompt"])
    entry = str(record["entry_point"])
    return Task(
        domain="python",
        prompt=f"Complete this Python function:\n```python\n{prompt}```",
        reference=str(record.get("canonical_solution") or ""),
        difficulty=0,
        fingerprint=fingerprint(prompt, entry),
        payload={
            "entry_point": entry,
            "test": textwrap.dedent(str(record["test"])),
            "prompt_code": prompt,
            "task_id": record["task_id"],
            "set": set_name,
        },
    )


PYTHON = Python()
