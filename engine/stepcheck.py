"""The step critic (``round.critique = "steps"``): a critique that locates the slip.

A worked answer writes out its small computations ("398+958: 8+8=16, 9+5+1=15, 3+9+1=17, so
1756"). The critic takes each one apart into single operations and asks each alone, as a task of
its own, left to right ("What is 3 + 9?", then "What is 12 + 1?"), and each sum or product in its
swapped form too ("What is 9 + 3?"); where both forms reach the same value, that is the checked
value, else the step is left unchecked. The first step whose checked value differs from the one
written is the slip: the critique names it ("3+9+1=17 is wrong: 3+9+1 is 13."), and the reviser
continues the answer from that step with the checked value in place (the answer's text up to it,
as the start of the reply to the task). An answer with no slip found is kept as it is.

With round.step_plan the critic also reads the answer's order of work against the task's (the
domain's ``next_step``; arith: products before sums, left to right): an answer that takes another
operation than the one due ("74*74: ..." for 2 + 4 * 74), or stops before the last ("43*2: ...,
so 86" for 69 + 43 * 2), has a gap there (``Gap``); where it comes before the first slip it is
the fault, and the answer is continued with the operation due in place ("...so 86; 69+86"),
written with the values the answer wrote; a continued answer that still stops short goes on again
(``finish``). The order is read from the task's text, as a reader would; no value is computed for
it. Measured on seed 7's adapters (README, the plan check): the debate's gain on the last one
-1.6 points without the spaced and plan checks, +2.6 with the spaced one, +4.2 with both.

With round.step_columns the critic also reads each worked step's columns against the layout of
the operation its head names (the domain's ``column_fault``): each column's digits the ones above
it, its carry read off the total written before it, no column left out, the result read off the
totals. A column with another carry ("9+9=18" after "2+8=10"), a column left out, or a result
misread from right columns ("8+7+1=16, so 158" for 893+765) is a ``Misstep``: where it comes before
the first slip it is the fault, and the answer goes on with what is due in place ("...9+9+1",
"...so 1658"). Again nothing is computed: digits are read off the answer's own head and totals.
Measured on the last adapters of seeds 7 and 8 (README, the column check): with the spaced and
plan checks, the debate's gain +9.9 and +4.8 points against +4.2 and +0.0 without it.

Every check is a greedy solver answer: the model checks its long computations with the short
ones it is good at (a factored check, as in chain-of-verification); no verifier is read. Measured
before this module on one adapter (seed 8, round 4; test levels 1, 2, 3 and mixed, 312 tasks): the
continuation alone +1.6 points (12 right answers turned wrong, 17 wrong ones right); taken only where
the swapped computing judge reaches the continuation's value, +2.2 (1 and 8).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.agents import fill, request
from engine.recipes import AgentSpec, Recipe
from engine.runtime import Request, Result, Runtime
from engine.tasks.arith import operations

#: An inline check's value: the number its reply starts with.
_LEADING = re.compile(r"\s*(-?\d+)")

#: The critique of an answer in which no slip was found.
NO_SLIP = "Every step checks out."


@dataclass(frozen=True)
class Slip:
    """The first step of an answer whose checked value differs from the one written."""

    at: int  # where the written value starts in the answer
    computation: str  # "3+9+1"
    written: str
    checked: str

    def critique(self) -> str:
        """
        >>> Slip(33, "3+9+1", "17", "13").critique()
        '3+9+1=17 is wrong: 3+9+1 is 13.'
        """
        return f"{self.computation}={self.written} is wrong: {self.computation} is {self.checked}."

    def prefix(self, answer: str) -> str:
        """The answer up to the slip, the checked value in place: where the reviser goes on.

        >>> Slip(33, "3+9+1", "17", "13").prefix("398+958: 8+8=16, 9+5+1=15, 3+9+1=17, so 1756")
        '398+958: 8+8=16, 9+5+1=15, 3+9+1=13'
        """
        return answer[:self.at] + self.checked


@dataclass(frozen=True)
class Gap:
    """Where an answer leaves the order of the task's operations (round.step_plan, the domain's
    ``next_step``): it takes another operation than the one due, or stops before the last."""

    at: int  # where the operation due should start in the answer (its end, when it stopped short)
    head: str  # the operation due, with the values the answer wrote before it: "69+86"
    short: bool  # the answer stopped before it (else it took another there)

    def critique(self) -> str:
        """
        >>> Gap(25, "69+86", True).critique(), Gap(0, "4*74", False).critique()
        ('The answer stops too soon: 69+86 is still to do.', 'The step to take there is 4*74.')
        """
        if self.short:
            return f"The answer stops too soon: {self.head} is still to do."
        return f"The step to take there is {self.head}."

    def prefix(self, answer: str) -> str:
        """The answer up to the gap, the operation due in place: where the reviser goes on.

        >>> Gap(25, "69+86", True).prefix("43*2: 3*2=6, 4*2=8, so 86")
        '43*2: 3*2=6, 4*2=8, so 86; 69+86'
        >>> Gap(0, "4*74", False).prefix("74*74: 4*7=24, so 424")
        '4*74'
        """
        if self.short:
            return f"{answer[:self.at].rstrip()}; {self.head}"
        return answer[:self.at] + self.head


@dataclass(frozen=True)
class Misstep:
    """Where an answer's columns leave the layout of the operation they work (round.step_columns,
    the domain's ``column_fault``): a column with other digits or another carry than the ones due,
    a column left out, or a result that is not the one its columns give."""

    at: int  # where what is due belongs in the answer
    due: str  # "9+9+1", ", 7+1+1" (a column left out), "1658" (the result the columns give)
    why: str  # the critique: "The column there is 9+9+1, not 9+9."

    def critique(self) -> str:
        return self.why

    def prefix(self, answer: str) -> str:
        """The answer up to the misstep, what is due in place: where the reviser goes on.

        >>> Misstep(24, "9+9+1", "").prefix("922+987: 2+7=9, 2+8=10, 9+9=18, so 1809")
        '922+987: 2+7=9, 2+8=10, 9+9+1'
        """
        return answer[:self.at] + self.due


#: What a step critic finds first in an answer: a slip in a value, a gap in the order of the work,
#: or a misstep in the layout of its columns.
Fault = Slip | Gap | Misstep


def gap_in(recipe: Recipe, domain: Any, task: Any, answer: str) -> Gap | None:
    """Where ``answer`` leaves the order of ``task``'s operations, with round.step_plan in a domain
    whose answers take operations in an order (its ``next_step``); else None."""
    plan_of = getattr(domain, "next_step", None)
    found = plan_of(task, answer) if recipe.round.step_plan and plan_of is not None else None
    return None if found is None else Gap(*found)


def misstep_in(recipe: Recipe, domain: Any, answer: str) -> Misstep | None:
    """Where ``answer``'s columns leave their layout, with round.step_columns in a domain whose
    answers work in columns (its ``column_fault``); else None."""
    read = getattr(domain, "column_fault", None)
    found = read(answer) if recipe.round.step_columns and read is not None else None
    return None if found is None else Misstep(*found)


def critique_of(slip: Fault | None) -> str:
    return NO_SLIP if slip is None else slip.critique()


def number(text: str | None) -> str | None:
    """A value as the step critic compares it: an integer without leading zeros or commas (None:
    not one).

    >>> number("08"), number("-1,204"), number("-0"), number("x"), number(None)
    ('8', '-1204', '0', None, None)
    """
    try:
        return str(int((text or "").replace(",", "")))
    except ValueError:
        return None


def checked_order(parts: list[str]) -> list[str]:
    """The order a step critic with round.step_operands = "digits" checks a computation in: a sum's
    numbers smallest first, so that a column's sum with its carry stays one-digit as long as it
    can; anything else as written.

    >>> checked_order(["6", "+", "5", "+", "1"]), checked_order(["9", "*", "2", "+", "1"])
    (['1', '+', '5', '+', '6'], ['9', '*', '2', '+', '1'])
    """
    if set(parts[1::2]) != {"+"}:
        return parts
    nums = sorted(parts[::2], key=int)
    return [t for n in nums for t in ("+", n)][1:]


def _one_digit(text: str | None) -> bool:
    n = number(text)
    return n is not None and -10 < int(n) < 10


def find_slips(runtime: Runtime, recipe: Recipe, domain: Any, solver: AgentSpec, answers: Sequence[str],
               seed: int = 0, before: Callable[[], None] | None = None,
               known: dict[str, str | None] | None = None,
               tasks: Sequence[Any] | None = None) -> list[Fault | None]:
    """Each answer's first slip (None: none found), every check a greedy request of ``solver``
    (``before()`` runs first, e.g. to serve its adapter). All answers' checks go out together, one
    operation deep at a time. ``known``: computations already checked under the same adapter (a
    later debate turn's), not asked again; the new ones are added to it. ``tasks``: the task each
    answer answers; with round.step_plan, where an answer leaves the order of the task's
    operations before its first slip, that gap is its fault instead (``Gap``; no request asked);
    with round.step_columns, so is a misstep in its columns' layout that comes first (``Misstep``)."""
    known = {} if known is None else known
    digits = recipe.round.step_operands == "digits"
    claims = [domain.claims(a) for a in answers]
    parts = {c: checked_order(operations(c)) if digits else operations(c)
             for cs in claims for _at, c, _v in cs if c not in known}
    value: dict[str, str | None] = {c: number(p[0]) for c, p in parts.items()}
    greedy = solver.model_copy(update={"temperature": 0.0})

    inline = recipe.round.step_check == "inline"

    spaced = inline and recipe.round.step_spaced

    def ask(a: str, op: str, b: str, as_spaced: bool = False) -> tuple[Any, Any] | None:
        try:
            task = domain.step_task(a, op, b)
        except ValueError:  # not an operation the domain can pose (too large, say): left unchecked
            return None
        return task, request(greedy, fill(recipe.prompts.solve, {"task": task.prompt}), seed, greedy=True,
                             prefix=domain.step_prefix(a, op, b, spaced=as_spaced) if inline else "")

    def value_of(task: Any, text: str) -> str | None:
        if inline:  # the value the reply starts with, as a step is written ("7+9=" then "16")
            m = _LEADING.match(text)
            return number(m.group(1)) if m else None
        return number(domain.verify(task, text).answer)

    if before is not None and parts:
        before()
    k = 1
    while True:
        todo = [c for c, p in parts.items() if len(p) > k and value[c] is not None]
        if digits:  # an operation with a longer number is left unchecked
            for c in [c for c in todo if not (_one_digit(value[c]) and _one_digit(parts[c][k + 1]))]:
                value[c] = None
                todo.remove(c)
        if not todo:
            break
        asked: list[list[tuple[Any, Any]]] = []
        for c in todo:
            a, op, b = str(value[c]), parts[c][k], str(number(parts[c][k + 1]))
            qs = [ask(a, op, b)] + ([ask(b, op, a)] if op in "+*" and a != b else []) + \
                ([ask(a, op, b, as_spaced=True)] if spaced else [])
            asked.append([q for q in qs if q is not None] if all(q is not None for q in qs) else [])
        comps = iter(runtime.submit_many([r for qs in asked for _t, r in qs]))
        for c, qs in zip(todo, asked):
            got = {value_of(t, next(comps).result().text) for t, _r in qs}
            value[c] = got.pop() if len(got) == 1 else None  # the two forms disagree (or none was asked): unchecked
        k += 2
    known.update(value)
    out: list[Fault | None] = []
    for cs in claims:
        slip = None
        for at, c, written in cs:
            checked = known[c]  # a claim has an operator (arith._CLAIM), so this is a worked value or None
            if checked is not None and checked != number(written):
                slip = Slip(at, c, written, checked)
                break
        out.append(slip)
    for i, answer in enumerate(answers):
        read = [gap_in(recipe, domain, tasks[i], answer) if tasks else None, misstep_in(recipe, domain, answer)]
        out[i] = min((f for f in [out[i], *read] if f is not None), key=lambda f: f.at, default=None)
    return out


#: How many more times a continued answer that stops short is continued in the same turn
#: (round.step_plan): a task of arith's levels has at most three terms, two operations.
FINISH_PASSES = 2


def finish(recipe: Recipe, domain: Any, tasks: Sequence[Any], continued: Sequence[tuple[int, str]],
           go_on: Callable[[int, str], Request],
           submit: Callable[[list[Request]], list[Result]]) -> dict[int, tuple[str, int]]:
    """With round.step_plan, each text the turn continued (index, text) that still stops before the
    task's last operation (``tasks[index]``; a ``Gap`` that is short) goes on again with the
    operation due in place, by ``go_on(index, prefix)``'s request, up to ``FINISH_PASSES`` times: a
    continuation written from a slip or a gap often stops after the operation it was given. Each
    text as finished, with the tokens that cost (without step_plan: as it was, 0)."""
    out = {i: (t, 0) for i, t in continued}
    for _pass in range(FINISH_PASSES):
        due = [(i, gap.prefix(text)) for i, (text, _n) in out.items()
               if (gap := gap_in(recipe, domain, tasks[i], text)) is not None and gap.short]
        if not due:
            break
        for (i, pre), r in zip(due, submit([go_on(i, pre) for i, pre in due])):
            out[i] = (pre + r.text, out[i][1] + r.completion_tokens)
    return out


def mend(runtime: Runtime, recipe: Recipe, domain: Any, checker: AgentSpec, texts: Sequence[str],
         go_on: Callable[[int, str], Request], *, turns: int = 1, seed: int = 0,
         before_check: Callable[[], None] | None = None, before_go_on: Callable[[], None] | None = None,
         known: dict[str, str | None] | None = None,
         on_slips: Callable[[list[int], list[Fault | None]], None] | None = None,
         tasks: Sequence[Any] | None = None) -> list[tuple[str, int]]:
    """``texts`` with their slips mended: each one's first slip found (``find_slips``, ``checker``'s
    greedy requests) and the text continued from it by ``go_on(i, prefix)``'s request, for up to
    ``turns`` turns, each turn checking only the texts the last one continued (``on_slips(indices,
    slips)`` is told each turn's findings), a continued text that stops short continued again
    (``finish``). Each text as mended, with the tokens its continuations
    cost (0: it stood as written). ``tasks``: the task each text answers, for the plan check
    (round.step_plan; ``find_slips``). How the debate protocol's step critic mends answers, and a
    computing judge its own work (round.judge_check = "steps")."""
    out = [(t, 0) for t in texts]
    known = {} if known is None else known
    todo = list(range(len(texts)))
    for _turn in range(turns):
        if not todo:
            break
        slips = find_slips(runtime, recipe, domain, checker, [out[i][0] for i in todo], seed=seed,
                           before=before_check, known=known,
                           tasks=None if tasks is None else [tasks[i] for i in todo])
        if on_slips is not None:
            on_slips(todo, slips)
        cont = [(i, s.prefix(out[i][0])) for i, s in zip(todo, slips) if s is not None]
        if cont and before_go_on is not None:
            before_go_on()
        comps = runtime.submit_many([go_on(i, pre) for i, pre in cont])
        for (i, pre), c in zip(cont, comps):
            r = c.result()
            out[i] = (pre + r.text, out[i][1] + r.completion_tokens)
        if tasks is not None:
            done = finish(recipe, domain, tasks, [(i, out[i][0]) for i, _pre in cont], go_on,
                          lambda reqs: [c.result() for c in runtime.submit_many(reqs)])
            for i, (text, n) in done.items():
                out[i] = (text, out[i][1] + n)
        todo = [i for i, _pre in cont]
    return out
