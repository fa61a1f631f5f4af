"""Arithmetic: the domain where a 135M model can measurably improve.

Difficulty levels widen numbers, add terms and operators. Answers are free text; the final
answer is the last integer in it (small models often repeat the question first).

>>> import random
>>> t = ARITH.generate(random.Random(0), 2, 1)[0]
>>> t.prompt.startswith("What is ")
True
>>> ARITH.verify(t, f"The answer is {t.reference}.").correct
True
>>> ARITH.verify(t, "I do not know").status
'unparsable'
"""

from __future__ import annotations

import ast
import operator
import random
import re
from collections.abc import Callable
from dataclasses import replace

from engine.tasks.common import Accept, Task, Verdict

#: level -> (digits per operand, number of terms, operators); a pair ``(lo, hi)`` draws each task's
#: number of terms, and each operand's number of digits, uniformly from lo to hi. Level 9 is the
#: mixed set as issue 13 defines it (+, -, x; up to 3 terms; up to 2 digits); until 2026-12-06 it
#: was its hardest corner alone (3 terms, every operand of 2 digits), a set on which no format or
#: setting measured here passed 24%.
LEVELS: dict[int, tuple[int | tuple[int, int], int | tuple[int, int], str]] = {
    1: (1, 2, "+"),
    2: (2, 2, "+"),
    3: (3, 2, "+"),
    4: (2, 2, "+-"),
    5: (3, 2, "+-"),
    6: (2, 3, "+-"),
    7: (2, 2, "*"),
    8: (3, 3, "+-"),
    9: ((1, 2), (2, 3), "+-*"),
    10: (3, 3, "+-*"),
}

_NUMBER = re.compile(r"-?\d[\d,]*")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}
_MAX_ABS = 10**12


def extract_answer(text: str) -> str | None:
    """The last integer in ``text``, commas removed.

    >>> extract_answer("23 + 45 = 68")
    '68'
    >>> extract_answer("It is -1,204.")
    '-1204'
    >>> extract_answer("no digits") is None
    True
    """
    found = _NUMBER.findall(text)
    if not found:
        return None
    return found[-1].replace(",", "")


def evaluate(expr: str, on_step: Callable[[int, str, int, int], None] | None = None) -> int:
    """Evaluate an integer expression of + - * and parentheses, nothing else; ``on_step(a, op, b,
    value)`` hears each operation as it is done, in precedence order.

    >>> evaluate("2 + 3 * (4 - 1)")
    11
    >>> steps = []; evaluate("2 + 3 * (4 - 1)", lambda *s: steps.append(s)); steps
    11
    [(4, '-', 1, 3), (3, '*', 3, 9), (2, '+', 9, 11)]
    >>> evaluate("__import__('os')")
    Traceback (most recent call last):
    ValueError: only integers and + - * are allowed
    """
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not an expression: {e.msg}") from None

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            a, b = walk(node.left), walk(node.right)
            value = _OPS[type(node.op)](a, b)
            if abs(value) > _MAX_ABS:
                raise ValueError("number too large")
            if on_step is not None:
                on_step(a, _SYMBOLS[type(node.op)], b, value)
            return value
        raise ValueError("only integers and + - * are allowed")

    return walk(tree)


LEVEL_NAMES: dict[int, str] = {
    1: "1-digit addition", 2: "2-digit addition", 3: "3-digit addition", 4: "2-digit add/subtract",
    5: "3-digit add/subtract", 6: "2-digit, 3 terms, +-", 7: "2-digit multiplication", 8: "3-digit, 3 terms, +-",
    9: "mixed: up to 2 digits, 2-3 terms, +-*", 10: "mixed: 3-digit, 3 terms, +-*",
}


def canonical(expr: str) -> str:
    """The expression up to commutativity and associativity of + and *: sums and products are
    flattened and their terms sorted, subtraction is adding a negated term.

    >>> canonical("19 + 72") == canonical("72 + 19")
    True
    >>> canonical("(1 + 2) + 3") == canonical("3 + (2 + 1)") == canonical("1 + 2 + 3")
    True
    >>> canonical("5 - 3 + 2") == canonical("2 + 5 - 3"), canonical("5 - 3") == canonical("3 - 5")
    (True, False)
    >>> canonical("2 * 3 * 4") == canonical("4 * (3 * 2)"), canonical("2 * (3 + 4)") == canonical("2 * 3 + 4")
    (True, False)
    >>> canonical("12 + 7")
    '+(12,7)'
    """
    tree = ast.parse(expr.strip(), mode="eval").body

    def signed(node: ast.AST, neg: bool, out: list[tuple[str, bool]]) -> None:
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            signed(node.left, neg, out)
            signed(node.right, neg != isinstance(node.op, ast.Sub), out)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            signed(node.operand, not neg, out)
        else:
            form, flip = product(node)
            out.append((form, neg != flip))

    def factors(node: ast.AST, out: list[str]) -> bool:
        """Collect a product's factors; returns whether an odd number of them were negated."""
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return factors(node.left, out) != factors(node.right, out)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return not factors(node.operand, out)
        out.append(form_of(node))
        return False

    def product(node: ast.AST) -> tuple[str, bool]:
        fs: list[str] = []
        neg = factors(node, fs)
        return (fs[0] if len(fs) == 1 else "*(" + ",".join(sorted(fs)) + ")"), neg

    def form_of(node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            form, neg = product(node)
            return ("-" if neg else "") + form
        terms: list[tuple[str, bool]] = []
        signed(node, False, terms)
        if len(terms) == 1:
            return ("-" if terms[0][1] else "") + terms[0][0]
        return "+(" + ",".join(sorted(("-" if n else "") + f for f, n in terms)) + ")"

    return form_of(tree)


def _column_carries(numbers: list[int]) -> int:
    """Columns whose sum carries into the next one when ``numbers`` (non-negative) are added.

    >>> _column_carries([19, 72]), _column_carries([11, 22]), _column_carries([999, 1]), _column_carries([5, 5, 5])
    (1, 0, 3, 1)
    """
    carries, carry = 0, 0
    width = max(len(str(n)) for n in numbers)
    for col in range(width):
        total = carry + sum(n // 10**col % 10 for n in numbers)
        carry = total // 10
        carries += carry > 0
    return carries


def _column_borrows(big: int, small: int) -> int:
    """Columns that borrow when ``small`` is taken from ``big`` (``big >= small >= 0``).

    >>> _column_borrows(52, 17), _column_borrows(59, 17), _column_borrows(1000, 1)
    (1, 0, 3)
    """
    borrows, borrow = 0, 0
    for col in range(len(str(big))):
        d = big // 10**col % 10 - borrow - small // 10**col % 10
        borrow = int(d < 0)
        borrows += borrow
    return borrows


def skills(expr: str) -> list[str]:
    """What an expression exercises: operand width, terms, each operator, for sums and
    differences of two numbers the carries or borrows, capped at 3 (``carries:3+``), numbers of
    different lengths (``unequal``) and a negative result.

    >>> skills("19 + 72")
    ['digits:2', 'terms:2', 'op:+', 'carries:1']
    >>> skills("52 - 17")
    ['digits:2', 'terms:2', 'op:-', 'borrows:1']
    >>> skills("17 - 52")
    ['digits:2', 'terms:2', 'op:-', 'borrows:1', 'negative']
    >>> skills("3 * 4 + 5")
    ['digits:1', 'terms:3', 'op:+', 'op:*']
    >>> skills("36 + 4")
    ['digits:2', 'terms:2', 'op:+', 'carries:1', 'unequal']
    """
    tree = ast.parse(expr.strip(), mode="eval")
    numbers = [abs(n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) is int]
    ops = sorted({_SYMBOLS[type(node.op)] for node in ast.walk(tree) if isinstance(node, ast.BinOp)
                  and type(node.op) in _SYMBOLS}, key="+-*".index)
    out = [f"digits:{max(len(str(n)) for n in numbers)}", f"terms:{len(numbers)}", *(f"op:{o}" for o in ops)]
    negated = any(isinstance(n, ast.UnaryOp) for n in ast.walk(tree))
    count = None
    if ops == ["+"] and not negated:
        kind, count = "carries", _column_carries(numbers)
    elif ops == ["-"] and len(numbers) == 2 and not negated:
        kind, count = "borrows", _column_borrows(max(numbers), min(numbers))
    if count is not None:
        out.append(f"{kind}:{count}" if count < 3 else f"{kind}:3+")
    if len({len(str(n)) for n in numbers}) > 1:
        out.append("unequal")
    if evaluate(expr) < 0:
        out.append("negative")
    return out


#: How skills read in a proposer's prompt and on the console.
SKILL_WORDS = {"digits": "{}-digit numbers", "terms": "{} terms", "op": "the {} operator", "carries": "{} carries",
               "borrows": "{} borrows", "negative": "negative results",
               "unequal": "numbers of different lengths"}


def describe_skill(skill: str) -> str:
    """Words for a skill tag.

    >>> describe_skill("carries:2"), describe_skill("carries:1"), describe_skill("borrows:0"), describe_skill("op:*")
    ('2 carries', '1 carry', 'no borrows', 'the * operator')
    """
    kind, _, value = skill.partition(":")
    if kind not in SKILL_WORDS:
        return skill
    if kind in ("carries", "borrows") and value in ("0", "1"):
        return f"no {kind}" if value == "0" else {"carries": "1 carry", "borrows": "1 borrow"}[kind]
    return SKILL_WORDS[kind].format(value)


#: How a verified answer is written in the solver's training examples (recipe ``task.answer_format``):
#: ``plain``, the solver's own words; ``value``, the verified result alone (the formats screen's
#: row for it was labelled plain before 2026-12-02: it has no solver's words); ``columns``, the expression reduced one
#: operation at a time (in precedence order), each sum of two numbers worked column by column from the right with its
#: carry, each difference with its borrows (signed operands: the sum or difference of their sizes,
#: then the sign), each product of a number of two digits or more as partial products worked in columns
#: and then added (products were one step, ``46*41=1924``, before 2026-12-03); ``reversed``, each step's result written digit by digit least-significant first,
#: then as a number; ``digits``, columns with the two numbers first spelled out digit by digit, padded
#: to one width, so each column's digits are the ones above it. The final integer of each is the
#: answer, as the checker reads it.
FORMATS = ("plain", "value", "columns", "reversed", "digits", "split")


def _column_text(top: str, op: str, bottom: str, carry: int) -> str:
    """A column as ``worked`` writes it, without its total: the top digit (a difference's with the
    ten it borrows, if it does), the bottom one, the carry after (a difference's: the one it pays back).

    >>> _column_text("9", "+", "9", 1), _column_text("12", "-", "7", 0), _column_text("6", "*", "9", 6)
    ('9+9+1', '12-7', '6*9+6')
    """
    tail = "" if not carry else (f"-{carry}" if op == "-" else f"+{carry}")
    return f"{top}{op}{bottom}{tail}"


def _column_sum(a: int, b: int) -> str:
    """``a + b`` worked column by column from the right (``+1``: the carry).

    >>> _column_sum(19, 72), _column_sum(5, 123)
    ('9+2=11, 1+7+1=9', '5+3=8, 0+2=2, 0+1=1')
    """
    cols, carry = [], 0
    for col in range(max(len(str(a)), len(str(b)))):
        x, y = a // 10**col % 10, b // 10**col % 10
        total = x + y + carry
        cols.append(f"{_column_text(str(x), '+', str(y), carry)}={total}")
        carry = total // 10
    return ", ".join(cols)


def _column_diff(big: int, small: int) -> str:
    """``big - small`` (``big >= small >= 0``) worked column by column from the right: a column
    that borrows is written with the ten it borrows (``12-7``), the next pays it back (``-1``).

    >>> _column_diff(52, 17), _column_diff(100, 1), _column_diff(59, 17)
    ('12-7=5, 5-1-1=3', '10-1=9, 10-0-1=9, 1-0-1=0', '9-7=2, 5-1=4')
    """
    cols, borrow = [], 0
    for col in range(len(str(big))):
        x, y = big // 10**col % 10, small // 10**col % 10
        need = x - y - borrow < 0
        cols.append(f"{_column_text(str(x + 10 if need else x), '-', str(y), borrow)}={x + 10 * need - y - borrow}")
        borrow = int(need)
    return ", ".join(cols)


def _column_product(big: int, d: int) -> str:
    """``big * d`` (``d`` one digit) worked column by column from the right (``+6``: the carry);
    the last column writes its whole total.

    >>> _column_product(67, 9), _column_product(85, 5)
    ('7*9=63, 6*9+6=60', '5*5=25, 8*5+2=42')
    """
    cols, carry = [], 0
    for ch in reversed(str(big)):
        x = int(ch)
        total = x * d + carry
        cols.append(f"{_column_text(str(x), '*', str(d), carry)}={total}")
        carry = total // 10
    return ", ".join(cols)


def _partials(a: int, b: int) -> tuple[int, int, list[int]]:
    """How ``_worked_product`` splits ``a * b``: the longer size, the shorter, and the shorter's
    nonzero digits in place (its partial products' factors), right to left.

    >>> _partials(67, 39), _partials(7, -45), _partials(85, 50), _partials(12, 0)
    ((67, 39, [9, 30]), (45, 7, [7]), (85, 50, [50]), (12, 0, []))
    """
    x, y = abs(a), abs(b)
    big, small = (x, y) if len(str(x)) >= len(str(y)) else (y, x)
    return big, small, [int(ch) * 10**p for p, ch in enumerate(reversed(str(small))) if ch != "0"]


def _worked_product(a: int, b: int, value: int) -> str:
    """``a * b`` (one of them two digits or more) as the longer size times each digit of the
    shorter, each partial product worked in columns, the partials then added in columns; a
    negative product says so first and last.

    >>> _worked_product(67, 39, 2613)
    '67*39: 67*9: 7*9=63, 6*9+6=60, so 603; 67*30: 7*3=21, 6*3+2=20, so 2010; 603+2010: 3+0=3, 0+1=1, 6+0=6, 0+2=2, so 2613'
    >>> _worked_product(7, 45, 315), _worked_product(85, 50, 4250)
    ('7*45 = 45*7: 5*7=35, 4*7+3=31, so 315', '85*50: 5*5=25, 8*5+2=42, so 4250')
    >>> _worked_product(-12, 3, -36), _worked_product(12, 0, 0)
    ('-12*3 = -(12*3): 2*3=6, 1*3=3, so 36; so -36', '12*0=0')
    """
    big, small, partials = _partials(a, b)
    head = f"{a}*{b}"
    if small == 0:
        return f"{head}=0"
    if (big, small) != (a, b):
        head += f" = -({big}*{small})" if value < 0 else f" = {big}*{small}"
    if partials == [small]:  # one digit that is not zero: one partial product, the answer
        parts = [f"{head}: {_column_product(big, int(str(small)[0]))}, so {big * small}"]
    else:
        parts = [f"{big}*{m}: {_column_product(big, int(str(m)[0]))}, so {big * m}" for m in partials]
        parts[0] = f"{head}: {parts[0]}"
        acc = big * partials[0]
        for m in partials[1:]:
            parts.append(f"{acc}+{big * m}: {_column_sum(acc, big * m)}, so {acc + big * m}")
            acc += big * m
    if value < 0:
        parts.append(f"so {value}")
    return "; ".join(parts)


def _signed_sum(a: int, sym: str, b: int) -> tuple[int, str, int, bool]:
    """``a + b`` or ``a - b`` as the sum or difference of two sizes, larger first for a
    difference: ``(big, "+" or "-", small, negated)``, so that the value is ``big op small``,
    negated when ``negated``.

    >>> _signed_sum(52, "-", 17), _signed_sum(17, "-", 52), _signed_sum(-17, "+", 30), _signed_sum(-17, "-", 30)
    ((52, '-', 17, False), (52, '-', 17, True), (30, '-', 17, False), (17, '+', 30, True))
    """
    s1, s2 = a < 0, (b < 0) != (sym == "-")  # each term's sign: True for minus
    x, y = abs(a), abs(b)
    if s1 == s2:
        return x, "+", y, s1
    big, small = (x, y) if x >= y else (y, x)
    return big, "-", small, (s1 if x >= y else s2)


def worked(expr: str, fmt: str) -> str:
    """The answer to ``expr`` written in ``fmt`` (one of FORMATS; plain and value: the value
    alone, since a worked answer has no solver's words).

    >>> worked("19 + 72", "columns")
    '19+72: 9+2=11, 1+7+1=9, so 91'
    >>> worked("45 + 12 * 3", "columns")
    '12*3: 2*3=6, 1*3=3, so 36; 45+36: 5+6=11, 4+3+1=8, so 81'
    >>> worked("3 + 4", "columns"), worked("52 - 17", "columns"), worked("19 + 72", "value")
    ('3+4=7', '52-17: 12-7=5, 5-1-1=3, so 35', '91')
    >>> worked("17 - 52", "columns"), worked("-7 + 12", "columns")
    ('17-52 = -(52-17): 12-7=5, 5-1-1=3, so -35', '-7+12 = 12-7: 12-7=5, 1-0-1=0, so 5')
    >>> worked("45 - 12 - 50", "columns")
    '45-12: 5-2=3, 4-1=3, so 33; 33-50 = -(50-33): 10-3=7, 5-3-1=1, so -17'
    >>> worked("52 - 17", "digits")
    '52-17: 5 2 - 1 7: 12-7=5, 5-1-1=3, so 35'
    >>> worked("130 + 71", "digits")
    '130+71: 1 3 0 + 0 7 1: 0+1=1, 3+7=10, 1+0+1=2, so 201'
    >>> worked("45 - 12 - 50", "split")
    '45-12: 5-2=3, 4-1=3, so 33; 33-50 = -(50-33): 10-3=7, 5-3=2, 2-1=1, so -17'
    >>> worked("19 + 72", "reversed"), worked("45 - 12 - 50", "reversed")
    ('19+72 from the right: 1 9, so 91', '45-12 from the right: 3 3, so 33; 33-50 from the right: 7 1 minus, so -17')
    >>> exprs = ("999 + 1", "7 * 8 - 60", "-(3 + 4)", "-12 - 30", "5 - 91 + 40", "-(45 - 7)")
    >>> all(extract_answer(worked(e, f)) == str(evaluate(e)) for e in exprs for f in FORMATS)
    True
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown answer format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt in ("plain", "value"):
        return str(evaluate(expr))
    steps: list[str] = []

    def step(a: int, sym: str, b: int, value: int) -> None:
        head = f"{a}{sym}{b}"
        if fmt == "reversed":
            digits = " ".join(reversed(str(abs(value)))) + (" minus" if value < 0 else "")
            steps.append(f"{head} from the right: {digits}, so {value}")
        elif sym in "+-" and max(abs(a), abs(b)) >= 10:
            big, op, small, negated = _signed_sum(a, sym, b)
            width = len(str(max(big, small)))
            if (big, op, small, negated) != (a, sym, b, False):  # signs or order changed: say the sum done
                head += f" = -({big}{op}{small})" if negated else f" = {big}{op}{small}"
            spelled = "" if fmt in ("columns", "split") else (
                f" {op} ".join(" ".join(str(x).zfill(width)) for x in (big, small)) + ": ")
            work = _column_sum(big, small) if op == "+" else _column_diff(big, small)
            steps.append(f"{head}: {spelled}{work}, so {value}")
        elif sym == "*" and max(abs(a), abs(b)) >= 10:
            steps.append(_worked_product(a, b, value))
        else:
            steps.append(f"{head}={value}")

    value = evaluate(expr, step)
    if not steps or extract_answer(steps[-1]) != str(value):  # a bare or negated number: say it
        steps.append(f"so {value}")
    return _split_carries("; ".join(steps)) if fmt == "split" else "; ".join(steps)


#: A column that takes a carry or pays a borrow back, as ``columns`` writes it ("8+7+1=16",
#: "5-1-1=3", "6*9+6=60"): its first operation, the carry's, and the total.
_CARRIED = re.compile(r"(?<![\d)(])(\d+[+\-*]\d+)([+\-]\d+)=(-?\d+)")


def _split_carries(text: str) -> str:
    """A ``columns`` answer with each column that takes a carry (or pays a borrow back) written as
    two steps, its first operation and then the carry's (the ``split`` format): every step one
    operation of two numbers.

    >>> _split_carries("19+72: 9+2=11, 1+7+1=9, so 91"), _split_carries("52-17: 12-7=5, 5-1-1=3, so 35")
    ('19+72: 9+2=11, 1+7=8, 8+1=9, so 91', '52-17: 12-7=5, 5-1=4, 4-1=3, so 35')
    >>> _split_carries("67*9: 7*9=63, 6*9+6=60, so 603")
    '67*9: 7*9=63, 6*9=54, 54+6=60, so 603'
    """
    def split(m: re.Match[str]) -> str:
        first = evaluate(m.group(1))
        return f"{m.group(1)}={first}, {first}{m.group(2)}={m.group(3)}"

    return _CARRIED.sub(split, text)


#: One worked step's computation and the value written for it: digits and operators, no spaces
#: ("3+9+1=13", "15-5=10", "9*2+1=19"); a head such as "60-49 = -(49-60)" is not one.
_CLAIM = re.compile(r"(?<![\d)(])(\d+(?:[+\-*]\d+)+)=(-?\d+)")


def claims(text: str) -> list[tuple[int, str, str]]:
    """The computations a worked answer writes out, in order: (where the written value starts,
    the computation, the value written).

    >>> claims("398+958: 8+8=16, 9+5+1=15, 3+9+1=17, so 1756")
    [(13, '8+8', '16'), (23, '9+5+1', '15'), (33, '3+9+1', '17')]
    >>> claims("60-49 = -(49-60): 9-0=9, 4-6=2, so -29"), claims("91")
    ([(22, '9-0', '9'), (29, '4-6', '2')], [])
    """
    return [(m.start(2), m.group(1), m.group(2)) for m in _CLAIM.finditer(text)]


def step_kind(computation: str) -> str:
    """A written step's kind: its operators, each number as ``d`` (one digit) or ``n`` (more); a
    column sum with its carry is ``d+d+d``, a column that borrows ``n-d``, a product's column with
    its carry ``d*d+d``.

    >>> step_kind("8+7+1"), step_kind("12-7"), step_kind("7*2+1"), step_kind("45*7")
    ('d+d+d', 'n-d', 'd*d+d', 'n*d')
    """
    return "".join(x if not x.isdigit() else ("d" if len(x) == 1 else "n") for x in operations(computation))


def step_kinds(text: str) -> list[tuple[str, bool]]:
    """Each step a worked answer writes out (``claims``): its kind (``step_kind``) and whether the
    value written is the step's value.

    >>> step_kinds("893+765: 3+5=8, 9+6=15, 8+7+1=15, so 1558")
    [('d+d', True), ('d+d', True), ('d+d+d', False)]
    >>> step_kinds("62-3: 12-3=9, 6-0-1=5, so 59"), step_kinds("91"), step_kinds("102-30: 02-0=2")
    ([('n-d', True), ('d-d-d', True)], [], [('n-d', True)])
    """
    return [(step_kind(c), step_value(c) == int(v)) for _at, c, v in claims(text)]


def step_value(computation: str) -> int:
    """A written step's exact value, its numbers read as a reader reads them (``02`` is 2).

    >>> step_value("8+7+1"), step_value("02-0"), step_value("7*2+1")
    (16, 2, 15)
    """
    return evaluate(re.sub(r"\b0+(?=\d)", "", computation))


def operations(computation: str) -> list[str]:
    """A claim's computation as its numbers and operators, left to right.

    >>> operations("9*2+1"), operations("15-5")
    (['9', '*', '2', '+', '1'], ['15', '-', '5'])
    """
    return re.findall(r"\d+|[+\-*]", computation)


#: The start of a worked step: the operation it does, as the answer writes it ("69+86", "-7+12").
_HEAD = re.compile(r"\s*(-?\d+)([+\-*])(-?\d+)")


def plan(expr: str) -> list[tuple[tuple[str, int], str, tuple[str, int]]] | None:
    """The operations ``expr`` takes, in the order a worked answer does them (``worked``): each as
    (left, operator, right), an operand ``("n", number)`` or ``("step", k)``, the value of the k-th
    operation. None: an expression with a bracketed negation, which the plan does not follow.

    >>> plan("69 + 43 * 2")
    [(('n', 43), '*', ('n', 2)), (('n', 69), '+', ('step', 0))]
    >>> plan("-7 + 12"), plan("5"), plan("-(3 + 4)")
    ([(('n', -7), '+', ('n', 12))], [], None)
    """
    steps: list[tuple[tuple[str, int], str, tuple[str, int]]] = []

    def walk(node: ast.AST) -> tuple[str, int]:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return ("n", node.value)
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
                and type(node.operand.value) is int):
            return ("n", -node.operand.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _SYMBOLS:
            left, right = walk(node.left), walk(node.right)
            steps.append((left, _SYMBOLS[type(node.op)], right))
            return ("step", len(steps) - 1)
        raise ValueError("not a plain expression")

    try:
        walk(ast.parse(expr.strip(), mode="eval").body)
    except (SyntaxError, ValueError):
        return None
    return steps


def _parts_of(a: int, op: str, b: int) -> int:
    """How many "; "-separated parts ``worked`` writes for one operation: a product with a number
    of two digits or more one per partial product and one per partial sum, and one more for a
    negative one's sign; any other operation one.

    >>> _parts_of(67, "*", 39), _parts_of(-12, "*", 3), _parts_of(85, "*", 50), _parts_of(52, "-", 17)
    (3, 2, 1, 1)
    """
    if op != "*" or max(abs(a), abs(b)) < 10:
        return 1
    _big, small, partials = _partials(a, b)
    if small == 0:
        return 1
    return 2 * len(partials) - 1 + ((a < 0) != (b < 0))


def next_step(expr: str, text: str) -> tuple[int, str, bool] | None:
    """Where a worked answer to ``expr`` leaves the order of its operations (``plan``): (where in
    ``text``, the operation it should take there, written with the values the answer wrote before,
    whether the answer stopped short rather than took another); None: it takes them in order to
    the end (a sum's or product's numbers either way round; its values may still be wrong: the
    step checks look at those), or it cannot be read that far.

    >>> next_step("69 + 43 * 2", "43*2: 3*2=6, 4*2=8, so 86")
    (25, '69+86', True)
    >>> next_step("2 + 4 * 74", "74*74: 4*7=24, 7*7+2=42, so 424")
    (0, '4*74', False)
    >>> next_step("70 - 4 + 9", "70-4: 0-4=0, 7-4=1, so 10; 10+9: 0+9=9, 1+0=1, so 19")
    >>> next_step("18 - 8 * 51", "8*51 = 51*8: 1*8=8, 5*8=40, so 408; 408-18: 8-8=0, so 390")
    (36, '18-408', False)
    >>> next_step("69 + 43 * 2", "43*2: 3*2=6, 4*2=8, so 86; 86+69: 6+9=15, 8+6+1=15, so 155")
    >>> next_step("45 + 12 * 3", worked("45 + 12 * 3", "columns")), next_step("67 * 39 - 5", worked("67 * 39 - 5", "columns"))
    (None, None)
    """
    steps = plan(expr)
    if not steps:
        return None
    parts, at = [], 0
    for piece in text.split("; "):
        parts.append((at, piece))
        at += len(piece) + 2
    values: list[int] = []
    i = 0
    for left, op, right in steps:
        a, b = (v if kind == "n" else values[v] for kind, v in (left, right))
        head = f"{a}{op}{b}"
        if i >= len(parts):
            return len(text.rstrip()), head, True
        start, piece = parts[i]
        m = _HEAD.match(piece)
        if m is None or m.group(0).strip() not in (head, f"{b}{op}{a}" if op in "+*" else head):
            return start, head, False
        n = _parts_of(a, op, b)
        if i + n > len(parts):  # stopped inside a long product: not read further
            return None
        value = extract_answer(parts[i + n - 1][1])
        if value is None:
            return None
        values.append(int(value))
        i += n
    return None


#: The operation a worked step's columns work, at the end of its head ("893+765", "45*7" in "7*45 =
#: 45*7", "52-17" in "17-52 = -(52-17)", "67*9" in "67*39: 67*9").
_WORKED_OP = re.compile(r"(-?\d+)([+\-*])(\d+)\)?\s*:?\s*$")


def _columns_due(a: int, op: str, b: int) -> tuple[list[tuple[str, str]], int] | None:
    """The columns ``worked`` writes for ``a op b`` as (top digit, bottom digit) pairs, right to
    left (a product's: each digit of the longer number and the shorter's one digit), and the zeros a partial product's result ends with; None: not an operation worked in
    columns (a negative number, a product of two numbers of two digits or more, a difference of
    a smaller number).

    >>> _columns_due(893, "+", 65), _columns_due(67, "*", 30), _columns_due(8, "+", 45)
    (([('3', '5'), ('9', '6'), ('8', '0')], 0), ([('7', '3'), ('6', '3')], 1), ([('8', '5'), ('0', '4')], 0))
    """
    if a < 0 or b < 0:
        return None
    if op == "*":
        big, m, _parts = _partials(a, b)
        d = str(m).rstrip("0")
        if len(d) != 1:
            return None
        return [(x, d) for x in reversed(str(big))], len(str(m)) - 1
    if op == "-" and a < b:
        return None
    width = max(len(str(a)), len(str(b)))
    return list(zip(reversed(str(a).zfill(width)), reversed(str(b).zfill(width)))), 0


def column_fault(text: str) -> tuple[int, str, str] | None:
    """Where a worked answer's columns leave the layout of the operation they work (its head's,
    as ``worked`` lays it out): (where in ``text``, what belongs there, the critique); None: none
    found, or the answer cannot be read that far. Each column's digits are the ones above it (a
    sum's or product's either way round; a difference's top digit may carry the ten it borrows),
    its carry is read off the total written before it (a sum's or product's: the total without
    its last digit; a difference's: the ten the column before borrowed), and the result is read
    off the totals (the last one whole, then each earlier one's last digit). Every value is the
    answer's; nothing is computed but the reading.

    >>> column_fault("922+987: 2+7=9, 2+8=10, 9+9=18, so 1809")
    (24, '9+9+1', 'The column there is 9+9+1, not 9+9.')
    >>> column_fault("777+179: 7+9=16, 7+7+1=15, so 156")
    (25, ', 7+1+1', 'A column is left out: 7+1+1.')
    >>> column_fault("893+765: 3+5=8, 9+6=15, 8+7+1=16, so 158")
    (37, '1658', 'The columns give 1658, not 158.')
    >>> column_fault("85+4: 5+4=9, 8+4=12, so 129"), column_fault("6*72: 6*2=12, 6*7=42, so 422")
    ((13, '8+0', 'The column there is 8+0, not 8+4.'), (14, '7*6+1', 'The column there is 7*6+1, not 6*7.'))
    >>> column_fault("5-25 = -(25-5): 5-5=0, 2-0=2, so -2")
    (33, '-20', 'The columns give -20, not -2.')
    >>> column_fault("8*3=24; 45+24: 5+4=9, 4+2=6, so 96")
    (32, '69', 'The columns give 69, not 96.')
    >>> exprs = ("893 + 765", "67 * 39 - 5", "52 - 17", "17 - 52", "8 + 45", "-7 + 12", "7 * 45", "1000 - 1")
    >>> [column_fault(worked(e, "columns")) for e in exprs] == [None] * len(exprs)
    True
    """
    at = 0
    for piece in text.split("; "):
        cols = claims(piece)
        if cols:
            first = cols[0][0] - len(cols[0][1]) - 1
            if not piece[:first].strip():  # a step of one-digit numbers ("8*3=24"): no columns
                at += len(piece) + 2
                continue
            m = _WORKED_OP.search(piece[:first])
            due = _columns_due(int(m.group(1)), m.group(2), int(m.group(3))) if m else None
            if due is None:
                return None
            op = m.group(2)
            pairs, zeros = due
            carry, totals = 0, []
            for k, (top, bottom) in enumerate(pairs):
                if k >= len(cols):  # stopped before the last column
                    end = cols[-1][0] + len(cols[-1][2])
                    col = _column_text(top, op, bottom, carry)
                    return at + end, f", {col}", f"A column is left out: {col}."
                pos, comp, value = cols[k]
                parts = operations(comp)
                want = _column_text(top, op, bottom, carry)
                if not _column_fits(parts, top, op, bottom, carry):
                    start = pos - len(comp) - 1
                    return at + start, want, f"The column there is {want}, not {comp}."
                v = (value or "0").lstrip("-")
                totals.append(v)
                if op == "-":
                    carry = int(int(parts[0]) >= 10)
                else:
                    carry = int(v[:-1] or 0)
            if len(cols) > len(pairs):  # more columns than the numbers have: not read further
                return None
            so = re.search(r"so (-?\d+)\s*$", piece[cols[-1][0]:])
            if so is not None:
                digits = totals[-1] + "".join(t[-1] for t in reversed(totals[:-1])) + "0" * zeros
                given = int(digits) * (-1 if re.search(r"=\s*-\(", piece[:first]) else 1)
                if int(so.group(1)) != given:
                    return (at + cols[-1][0] + so.start(1), str(given),
                            f"The columns give {given}, not {so.group(1)}.")
        at += len(piece) + 2
    return None


def _column_fits(parts: list[str], top: str, op: str, bottom: str, carry: int) -> bool:
    """Whether a written column (its numbers and operators) has the digits and carry due: a sum's
    or product's two digits either way round, a difference's top digit with or without the ten
    it borrows.

    >>> _column_fits(["8", "+", "9", "+", "1"], "9", "+", "8", 1), _column_fits(["12", "-", "7"], "2", "-", "7", 0)
    (True, True)
    >>> _column_fits(["9", "+", "8"], "9", "+", "8", 1), _column_fits(["2", "-", "7", "-", "1"], "2", "-", "7", 0)
    (False, False)
    """
    forms = ((top, bottom), (str(int(top) + 10), bottom)) if op == "-" else ((top, bottom), (bottom, top))
    return any(parts == operations(_column_text(x, op, y, carry)) for x, y in forms)


def swapped(expr: str) -> str:
    """``expr`` with its commutative operands swapped where that keeps its value: each product's
    two numbers (``c * d`` -> ``d * c``) and a leading sum's (``a + b`` -> ``b + a``, unless ``b``
    is a product's). Another view of the same task, for a computing judge (round.judge_view): a
    slip the solver makes on one order of the digits it need not make on the other. An expression
    with brackets, or one the swap would change, is returned as it is.

    >>> swapped("48 * 26"), swapped("12 + 7 * 3"), swapped("12 + 7 - 3"), swapped("5 - 3 * 4 + 2")
    ('26 * 48', '12 + 3 * 7', '7 + 12 - 3', '5 - 4 * 3 + 2')
    >>> swapped("(2 + 3) * 4"), swapped("7 - 3")
    ('(2 + 3) * 4', '7 - 3')
    """
    t = expr.split()
    if not all(re.fullmatch(r"-?\d+|[+\-*]", tok) for tok in t):
        return expr
    for i, tok in enumerate(t):
        if tok == "*" and 0 < i < len(t) - 1:
            t[i - 1], t[i + 1] = t[i + 1], t[i - 1]
    if len(t) >= 3 and t[1] == "+" and (len(t) == 3 or t[3] != "*"):
        t[0], t[2] = t[2], t[0]
    out = " ".join(t)
    try:
        return out if evaluate(out) == evaluate(expr) else expr
    except ValueError:
        return expr


def _prompt(expr: str) -> str:
    return f"What is {expr}?"


def _task(expr: str, difficulty: int, source_note: str = "") -> Task:
    expr = re.sub(r"\s+", " ", expr.strip())
    value = evaluate(expr)
    return Task(
        domain="arith",
        prompt=_prompt(expr),
        reference=str(value),
        difficulty=difficulty,
        fingerprint=canonical(expr),
        payload={"expression": expr, **({"note": source_note} if source_note else {})},
    )


def _drawn(rng: random.Random, span: int | tuple[int, int]) -> int:
    """A level's count: fixed (no draw, so a fixed level's tasks stay what they were), or drawn
    uniformly from a pair's range."""
    return span if isinstance(span, int) else rng.randint(*span)


def _operand(rng: random.Random, digits: int | tuple[int, int]) -> str:
    """A number of ``digits`` digits (``0`` to ``9`` for one digit), or of a width drawn from a range."""
    d = _drawn(rng, digits)
    return str(rng.randint(0 if d == 1 else 10 ** (d - 1), 10**d - 1))


class Arith:
    name = "arith"
    #: An answer is a value: one is right when it equals the reference (what a computing judge
    #: needs, round.judging = "compute").
    valued = True
    #: Its generator draws numbers of a shorter width on request (``generate(shorter=...)``, recipe
    #: ``task.shorter``).
    draws_shorter = True

    def generate(self, rng: random.Random, difficulty: int, n: int, accept: Accept | None = None,
                 shorter: float = 0.0) -> list[Task]:
        """Up to ``n`` distinct tasks (fewer when a small level, e.g. 1-digit sums, runs out).
        ``shorter`` (recipe ``task.shorter``): at a level of one width above one digit, that share of
        the tasks keeps one number, at a random place, at the level's width and draws the others
        shorter (``36 + 4``, ``7 + 512``).

        >>> [t.payload["expression"] for t in ARITH.generate(random.Random(2), 3, 4, shorter=0.5)]
        ['969 + 193', '357 + 87', '753 + 75', '657 + 614']
        """
        digits, terms, ops = LEVELS[max(1, min(difficulty, max(LEVELS)))]
        tasks: dict[str, Task] = {}
        tries = 0
        while len(tasks) < n and tries < max(200, 50 * n):
            tries += 1
            if shorter and isinstance(digits, int) and digits > 1 and rng.random() < shorter:
                k = _drawn(rng, terms)
                full = rng.randrange(k)
                widths = [digits if i == full else rng.randint(1, digits - 1) for i in range(k)]
                parts = [_operand(rng, widths[0])]
                for w in widths[1:]:
                    parts += [rng.choice(ops), _operand(rng, w)]
            else:
                parts = [_operand(rng, digits)]
                for _ in range(_drawn(rng, terms) - 1):
                    parts += [rng.choice(ops), _operand(rng, digits)]
            t = _task(" ".join(parts), difficulty)
            if t.fingerprint not in tasks and (accept is None or accept(t.fingerprint)):
                tasks[t.fingerprint] = t
        return list(tasks.values())

    def level_name(self, level: int) -> str:
        return LEVEL_NAMES.get(level, f"level {level}")

    def skills(self, task: Task) -> list[str]:
        return skills(task.payload["expression"])

    def describe_skill(self, skill: str) -> str:
        return describe_skill(skill)

    formats = FORMATS

    def worked(self, task: Task, fmt: str) -> str:
        return worked(task.payload["expression"], fmt)

    views = ("asked", "swapped")

    def view(self, task: Task, name: str) -> Task:
        """``task`` as ``name`` puts it (one of ``views``): swapped, its expression's commutative
        operands swapped (``swapped``), with the same reference, level and fingerprint."""
        if name == "asked":
            return task
        if name != "swapped":
            raise ValueError(f"arith has no view {name!r} (known: {', '.join(self.views)})")
        asked = task.payload.get("expression")
        expr = swapped(asked) if asked else None
        if expr is None or expr == asked:
            return task
        return replace(task, prompt=_prompt(expr), payload={**task.payload, "expression": expr})

    def claims(self, text: str) -> list[tuple[int, str, str]]:
        """The computations a worked answer writes out (``claims``): what a step critic checks."""
        return claims(text)

    def next_step(self, task: Task, text: str) -> tuple[int, str, bool] | None:
        """Where a worked answer leaves the order of the task's operations (``next_step``): what
        the step critic's plan check reads (round.step_plan)."""
        expr = task.payload.get("expression")
        return next_step(expr, text) if expr else None

    def step_kinds(self, text: str) -> list[tuple[str, bool]]:
        """Each step a worked answer writes out, its kind and whether its value is right
        (``step_kinds``): what train.focus_steps leans the training toward."""
        return step_kinds(text)

    def column_fault(self, text: str) -> tuple[int, str, str] | None:
        """Where a worked answer's columns leave the layout of the operation they work
        (``column_fault``): what the step critic's column check reads (round.step_columns)."""
        return column_fault(text)

    def step_task(self, a: str, op: str, b: str) -> Task:
        """One operation of a claim as a task of its own (``a op b``, each number as an integer is
        written: ``05`` as ``5``), asked as any task is."""
        return _task(f"{int(a)} {op} {int(b)}", 1)

    def step_prefix(self, a: str, op: str, b: str, spaced: bool = False) -> str:
        """How a worked answer writes that operation before its value (``7+9=``): the start of an
        inline check's reply (round.step_check = "inline"); ``spaced``: written with spaces
        (``7 + 9 = ``), a second form of the same check (round.step_spaced).

        >>> ARITH.step_prefix("07", "+", "9"), ARITH.step_prefix("7", "*", "9", spaced=True)
        ('7+9=', '7 * 9 = ')
        """
        return f"{int(a)} {op} {int(b)} = " if spaced else f"{int(a)}{op}{int(b)}="

    def verify(self, task: Task, text: str) -> Verdict:
        answer = extract_answer(text)
        if answer is None:
            return Verdict(False, "unparsable", None, "no integer in the answer")
        ok = answer == task.reference
        return Verdict(ok, "ok" if ok else "wrong", answer)

    def parse_proposal(self, text: str, difficulty: int) -> Task | str:
        """Take the first line that looks like an expression, e.g. ``12 + 7 * 3``."""
        for line in text.splitlines():
            cand = line.strip().strip("`").split("=")[0]
            cand = re.sub(r"^(expression|task|question)\s*[:\-]\s*", "", cand, flags=re.I)
            cand = cand.replace("×", "*").replace("x", "*").rstrip("?. ")
            if not re.fullmatch(r"[\d\s+\-*()]+", cand) or not re.search(r"\d\s*[+\-*]\s*\d", cand):
                continue
            try:
                return _task(cand, difficulty, "proposed")
            except ValueError as e:
                return f"bad expression: {e}"
        return "no arithmetic expression found"


ARITH = Arith()
