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
    # strings
    _Template("shout", "Write a function shout(s) that returns s in upper case followed by '{c}'.", "def shout(s):\n    return s.upper() + '{c}'", ["('',)", "('hi',)", "('Go now',)"], 1),
    _Template("first_char", "Write a function first_char(s) that returns the first character of s, or '{c}' if s is empty.", "def first_char(s):\n    return s[0] if s else '{c}'", ["('',)", "('xyz',)", "('Q',)"], 2),
    _Template("vowel_count", "Write a function vowel_count(s) that returns how many vowels (a, e, i, o, u, either case) are in s.", "def vowel_count(s):\n    return sum(1 for ch in s.lower() if ch in 'aeiou')", ["('',)", "('Education',)", "('rhythm',)"], 2),
    _Template("repeat_k", "Write a function repeat_k(s) that returns the string s repeated {k} times.", "def repeat_k(s):\n    return s * {k}", ["('',)", "('ab',)", "('x',)"], 1),
    _Template("capitalize_words", "Write a function capitalize_words(s) that returns s with the first letter of every space-separated word in upper case and the rest unchanged.", "def capitalize_words(s):\n    return ' '.join(w[:1].upper() + w[1:] for w in s.split(' '))", ["('',)", "('hello world',)", "('a bC',)"], 3),
    _Template("strip_char", "Write a function strip_char(s) that returns s with every '{c}' removed.", "def strip_char(s):\n    return s.replace('{c}', '')", ["('',)", "('{c}x{c}y',)", "('zzz',)"], 2),
    _Template("longest_word", "Write a function longest_word(s) that returns the longest space-separated word in s (the first one if several tie), or '' if there is none.", "def longest_word(s):\n    best = ''\n    for w in s.split():\n        if len(w) > len(best):\n            best = w\n    return best", ["('',)", "('a bb ccc dd',)", "('tie tie',)"], 3),
    _Template("caesar_k", "Write a function caesar_k(s) that shifts every lower-case letter a-z in s forward by {k} places in the alphabet, wrapping around after z, and leaves other characters unchanged.", "def caesar_k(s):\n    return ''.join(chr((ord(ch) - 97 + {k}) % 26 + 97) if 'a' <= ch <= 'z' else ch for ch in s)", ["('',)", "('abc xyz',)", "('Hi!',)"], 4),
    _Template("run_length", "Write a function run_length(s) that returns the run-length encoding of s: each run of a repeated character as the character followed by the run's length, e.g. 'aab' -> 'a2b1'.", "def run_length(s):\n    out = []\n    i = 0\n    while i < len(s):\n        j = i\n        while j < len(s) and s[j] == s[i]:\n            j += 1\n        out.append(s[i] + str(j - i))\n        i = j\n    return ''.join(out)", ["('',)", "('aab',)", "('abcccc',)"], 5),
    # lists
    _Template("max_or_k", "Write a function max_or_k(xs) that returns the largest number in the list xs, or {k} if xs is empty.", "def max_or_k(xs):\n    return max(xs) if xs else {k}", ["([],)", "([3, 9, 2],)", "([-5, -1],)"], 2),
    _Template("count_above", "Write a function count_above(xs) that returns how many numbers in the list xs are greater than {k}.", "def count_above(xs):\n    return sum(1 for x in xs if x > {k})", ["([],)", "([1, 100, 60, 2],)", "([-1, 0],)"], 2),
    _Template("scale_list", "Write a function scale_list(xs) that returns a new list with every number in xs multiplied by {k}.", "def scale_list(xs):\n    return [x * {k} for x in xs]", ["([],)", "([1, 2, 3],)", "([-4],)"], 1),
    _Template("second_largest", "Write a function second_largest(xs) that returns the second largest distinct number in the list xs, or None if there is none.", "def second_largest(xs):\n    vals = sorted(set(xs))\n    return vals[-2] if len(vals) >= 2 else None", ["([],)", "([5, 1, 5, 3],)", "([7, 7],)"], 4),
    _Template("chunk_k", "Write a function chunk_k(xs) that splits the list xs into consecutive lists of {k} items each (the last one may be shorter).", "def chunk_k(xs):\n    return [xs[i:i + {k}] for i in range(0, len(xs), {k})]", ["([],)", "([0, 1, 2, 3, 4, 5, 6],)", "([1],)"], 4),
    _Template("running_sum", "Write a function running_sum(xs) that returns the list of running totals of xs, e.g. [1, 2, 3] -> [1, 3, 6].", "def running_sum(xs):\n    out, total = [], 0\n    for x in xs:\n        total += x\n        out.append(total)\n    return out", ["([],)", "([1, 2, 3],)", "([5, -5, 2],)"], 3),
    _Template("flatten_once", "Write a function flatten_once(xss) that returns one list with the items of every list in xss, in order.", "def flatten_once(xss):\n    return [x for xs in xss for x in xs]", ["([],)", "([[1, 2], [], [3]],)", "([['a'], ['b', 'c']],)"], 3),
    _Template("rotate_left", "Write a function rotate_left(xs) that returns xs rotated left by {k} places (items from the front move to the back); an empty list stays empty.", "def rotate_left(xs):\n    if not xs:\n        return []\n    k = {k} % len(xs)\n    return xs[k:] + xs[:k]", ["([],)", "([1, 2, 3, 4, 5],)", "([9],)"], 4),
    _Template("merge_sorted", "Write a function merge_sorted(a, b) that merges two sorted lists of numbers into one sorted list.", "def merge_sorted(a, b):\n    out, i, j = [], 0, 0\n    while i < len(a) and j < len(b):\n        if a[i] <= b[j]:\n            out.append(a[i])\n            i += 1\n        else:\n            out.append(b[j])\n            j += 1\n    return out + a[i:] + b[j:]", ["([], [])", "([1, 4, 9], [2, 3, 10])", "([5], [])"], 5),
    # dicts
    _Template("word_freq", "Write a function word_freq(s) that returns a dict mapping each space-separated word of s to how many times it occurs.", "def word_freq(s):\n    out = {}\n    for w in s.split():\n        out[w] = out.get(w, 0) + 1\n    return out", ["('',)", "('a b a',)", "('x',)"], 3),
    _Template("invert_dict", "Write a function invert_dict(d) that returns a new dict with the keys and values of d swapped (the values of d are distinct).", "def invert_dict(d):\n    return {v: k for k, v in d.items()}", ["({},)", "({'a': 1, 'b': 2},)", "({1: 'x'},)"], 3),
    _Template("key_of_max", "Write a function key_of_max(d) that returns the key with the largest value in the dict d (the first such key in d's order if several tie), or None if d is empty.", "def key_of_max(d):\n    best = None\n    for k, v in d.items():\n        if best is None or v > d[best]:\n            best = k\n    return best", ["({},)", "({'a': 3, 'b': 7, 'c': 7},)", "({'z': -1},)"], 4),
    _Template("add_to_values", "Write a function add_to_values(d) that returns a new dict with the same keys as d and every value increased by {k}.", "def add_to_values(d):\n    return {key: value + {k} for key, value in d.items()}", ["({},)", "({'a': 1, 'b': -2},)", "({'x': 0},)"], 3),
    _Template("group_by_len", "Write a function group_by_len(words) that returns a dict mapping each word length to the list of words in words with that length, in their original order.", "def group_by_len(words):\n    out = {}\n    for w in words:\n        out.setdefault(len(w), []).append(w)\n    return out", ["([],)", "(['a', 'bb', 'c', 'dd', 'eee'],)", "([''],)"], 5),
    # math
    _Template("is_even", "Write a function is_even(n) that returns True if the integer n is even and False otherwise.", "def is_even(n):\n    return n % 2 == 0", ["(0,)", "(7,)", "(-4,)"], 1),
    _Template("mod_k", "Write a function mod_k(n) that returns the remainder of the non-negative integer n divided by {k}.", "def mod_k(n):\n    return n % {k}", ["(0,)", "(100,)", "(7,)"], 1),
    _Template("factorial", "Write a function factorial(n) that returns n! for a non-negative integer n, with factorial(0) == 1.", "def factorial(n):\n    return 1 if n < 2 else n * factorial(n - 1)", ["(0,)", "(1,)", "(6,)"], 3),
    _Template("gcd", "Write a function gcd(a, b) that returns the greatest common divisor of two non-negative integers, with gcd(0, 0) == 0.", "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a", ["(0, 0)", "(12, 18)", "(7, 0)", "(17, 5)"], 4),
    _Template("is_prime", "Write a function is_prime(n) that returns True if the integer n is a prime number and False otherwise.", "def is_prime(n):\n    if n < 2:\n        return False\n    d = 2\n    while d * d <= n:\n        if n % d == 0:\n            return False\n        d += 1\n    return True", ["(0,)", "(2,)", "(15,)", "(97,)"], 4),
    _Template("sum_multiples_k", "Write a function sum_multiples_k(n) that returns the sum of all positive multiples of {k} that are below n.", "def sum_multiples_k(n):\n    return sum(range({k}, n, {k})) if n > {k} else 0", ["(0,)", "(100,)", "(1000,)"], 3),
    # parsing
    _Template("parse_csv_ints", "Write a function parse_csv_ints(s) that returns the list of integers in the comma-separated string s, ignoring spaces; an empty string gives [].", "def parse_csv_ints(s):\n    return [int(p) for p in s.replace(' ', '').split(',') if p]", ["('',)", "('1, 2,3',)", "('-4,10',)"], 3),
    _Template("digits_only", "Write a function digits_only(s) that returns the string made of the decimal digits of s, in order.", "def digits_only(s):\n    return ''.join(ch for ch in s if ch.isdigit())", ["('',)", "('a1b22c',)", "('no digits',)"], 2),
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
        payload={"entry_point": entry_point, "test": test, "spec": spec, "source": source, "inputs": list(inputs)},
        behaviour=behaviour_key(inputs, outs),
    )


def make_task(spec: str, entry_point: str, reference: str, inputs: list[str], difficulty: int, source: str) -> Task | str:
    outs = reference_outputs(reference, entry_point, inputs)
    if isinstance(outs, str):
        return outs
    return _task_from(spec, entry_point, reference, inputs, outs, difficulty, source)


_STR_METHODS = {"split", "join", "lower", "upper", "replace", "strip", "count", "startswith", "endswith", "find",
                "isdigit", "isalpha", "title", "capitalize", "format"}
_COLLECTIONS = ((ast.List, "list"), (ast.ListComp, "list"), (ast.Dict, "dict"), (ast.DictComp, "dict"),
                (ast.Set, "set"), (ast.SetComp, "set"))


def code_skills(reference: str, inputs: list[str] | tuple[str, ...] = ()) -> list[str]:
    r"""The concepts a reference solution exercises, read from its syntax tree (loops, branches,
    strings, lists, dicts, sets, recursion, arithmetic), and ``edge:empty`` when an input is empty.

    >>> code_skills("def f(xs):\n    return sum(x for x in xs if x % 2 == 0)", ["([],)"])
    ['arithmetic', 'branch', 'edge:empty', 'loop']
    >>> code_skills("def f(n):\n    return 1 if n < 2 else n * f(n - 1)")
    ['arithmetic', 'branch', 'recursion']
    >>> code_skills("def f(s):\n    return ' '.join(reversed(s.split()))")
    ['string']
    """
    try:
        tree = ast.parse(reference)
    except SyntaxError:
        return []
    found: set[str] = set()
    names = {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.While, ast.comprehension)):
            found.add("loop")
        elif isinstance(node, (ast.If, ast.IfExp)):
            found.add("branch")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) or isinstance(node, ast.JoinedStr):
            found.add("string")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)):
            if not any(isinstance(side, ast.Constant) and isinstance(side.value, str) for side in (node.left, node.right)):
                found.add("arithmetic")  # 'a' + s is string work, not arithmetic
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in names:
                found.add("recursion")
            elif isinstance(f, ast.Attribute) and f.attr in _STR_METHODS:
                found.add("string")
            elif isinstance(f, ast.Attribute) and f.attr in ("items", "keys", "values", "get", "setdefault"):
                found.add("dict")
            elif isinstance(f, ast.Name) and f.id in ("list", "dict", "set", "sorted"):
                found.add({"sorted": "list"}.get(f.id, f.id))
            elif isinstance(f, ast.Name) and f.id in ("min", "max", "abs", "round", "divmod", "pow"):
                found.add("arithmetic")
        for kind, tag in _COLLECTIONS:
            if isinstance(node, kind):
                found.add(tag)
        if isinstance(node, ast.comprehension) and node.ifs:  # a filter in a comprehension is a branch
            found.add("branch")
    if any(i.replace(" ", "") in ("([],)", "('',)", '("",)', "({},)") for i in inputs):
        found.add("edge:empty")
    return sorted(found)


class Python:
    name = "python"
    valued = False  # an answer is code, judged by running it
    formats = ("plain",)
    views = ("asked",)

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

    def skills(self, task: Task) -> list[str]:
        """The task's family (generated tasks: the template's function name) and the concepts
        its reference exercises."""
        family = [f"family:{task.payload['entry_point']}"] if task.payload.get("source") == "generated" else []
        return family + code_skills(task.reference, task.payload.get("inputs", ()))

    def describe_skill(self, skill: str) -> str:
        kind, _, value = skill.partition(":")
        return {"family": f"tasks like {value}()", "edge": f"{value} inputs"}.get(kind, skill)

    def level_name(self, level: int) -> str:
        names = [t.entry_point for t in _BANK if t.level <= level] or [t.entry_point for t in _BANK[:2]]
        return f"python level {level} ({len(names)} families)"

    def worked(self, task: Task, fmt: str) -> str:
        raise ValueError(f"python answers are code: no answer format but plain (asked for {fmt!r})")

    def reference_answer(self, reference: str) -> str:
        r"""A task's reference implementation written as a solver answers: what ``train.unsolved =
        "worked"`` trains for a task no answer got right (the tests were made from its outputs).

        >>> PYTHON.reference_answer("def f(x):\n    return x + 1\n")
        '```python\ndef f(x):\n    return x + 1\n```'
        """
        return f"```python\n{reference.strip()}\n```"

    def view(self, task: Task, name: str) -> Task:
        if name != "asked":
            raise ValueError(f"python tasks are put only as asked (asked for {name!r})")
        return task

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
