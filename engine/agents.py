"""Agents: a recipe's roles turned into runtime requests.

Prompts live in the recipe; this module only fills their placeholders ({task}, {answer},
{critique}, {examples}, {difficulty}) by plain substitution, so braces in model-written text
or code can never break formatting, and builds the chat messages and sampling settings.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import replace

from engine.recipes import AgentSpec, Recipe
from engine.runtime import Request, Sampling
from engine.tasks import Domain, Task

#: The judge answers ``{"correct": true}`` or ``{"correct": false}``. The reply is started for it
#: (JUDGE_PREFIX) and the grammar allows only the rest, so a verdict costs two grammar-checked
#: steps: a grammar is checked against the whole vocabulary at every step it is active.
JUDGE_PREFIX = '{"correct": '
JUDGE_GRAMMAR = r'''root ::= ("true" | "false") "}"'''


#: A computing judge (round.judging = "compute") replies with a number and nothing else; with a
#: worked answer format (task.answer_format other than plain and value) it works the task out in
#: that format, unconstrained, and its result is the final answer the domain's checker reads.
RESULT_GRAMMAR = r'''root ::= "-"? [0-9]{1,15}'''
_RESULT = re.compile(r"\s*(-?\d+)\s*")


def works_out(recipe: Recipe) -> bool:
    """Whether a computing judge writes its result worked in the recipe's answer format (and so
    trains on the task worked in it) rather than as a bare number."""
    return recipe.round.judging == "compute" and recipe.task.worked


def judge_request(recipe: Recipe, judge: AgentSpec, task_prompt: str, answer: str, seed: int, *,
                  greedy: bool, task: int | None = None) -> Request:
    """The judge's request on ``answer`` to ``task_prompt``: with round.judging = "verdict" it reads
    both and writes its verdict; with "compute" it sees the task only and writes its result (the
    same request for every answer of a task)."""
    if recipe.round.judging == "compute":
        return request(judge, fill(recipe.prompts.judge_compute, {"task": task_prompt}), seed,
                       grammar=None if works_out(recipe) else RESULT_GRAMMAR, greedy=greedy, task=task)
    return request(judge, fill(recipe.prompts.judge, {"task": task_prompt, "answer": answer}), seed,
                   grammar=JUDGE_GRAMMAR, prefix=JUDGE_PREFIX, greedy=greedy, task=task)


def judge_text(recipe: Recipe, reply: str) -> str:
    """The judge's whole reply as recorded (a verdict's JSON starts in the request's prefix)."""
    return reply.strip() if recipe.round.judging == "compute" else JUDGE_PREFIX + reply


def judge_verdict(recipe: Recipe, domain: Domain, task: Task, answer: str, text: str) -> bool | None:
    """The judge's verdict on ``answer`` from its recorded reply ``text`` (judge_text), or None when
    the reply is unusable. A computing judge's verdict: ``answer`` is right when the domain's checker,
    given the judge's result as the reference, passes it.

    >>> from engine.recipes import load_recipe
    >>> from engine.tasks import ARITH, Task
    >>> r = load_recipe("default")[0]
    >>> c = r.model_copy(update={"round": r.round.model_copy(update={"judging": "compute"})})
    >>> t = Task("arith", "What is 40 + 41?", "81", 2, "fp", {"expression": "40 + 41"})
    >>> [judge_verdict(c, ARITH, t, a, "80") for a in ("80", "The answer is 80.", "81", "")]
    [True, True, False, False]
    >>> judge_verdict(c, ARITH, t, "81", "eighty") is None, judge_verdict(r, ARITH, t, "81", '{"correct": true}')
    (True, True)
    >>> w = c.model_copy(update={"task": c.task.model_copy(update={"answer_format": "columns"})})
    >>> [judge_verdict(w, ARITH, t, a, "40+41: 0+1=1, 4+4=8, so 81") for a in ("81", "80")]
    [True, False]
    >>> judge_verdict(w, ARITH, t, "81", "40+41: 0+1=1, 4+") is True, judge_verdict(w, ARITH, t, "81", "so") is None
    (False, True)
    """
    if recipe.round.judging != "compute":
        return parse_judgement(text)
    m = _RESULT.fullmatch(text)
    if m is not None:
        result: str | None = str(int(m.group(1)))
    else:
        result = domain.verify(task, text).answer if works_out(recipe) else None
    if result is None:
        return None
    return domain.verify(replace(task, reference=result), answer).correct


def parse_judgement(text: str) -> bool | None:
    """The judge's boolean, or None if its output is unusable (cut off by max_tokens).

    >>> parse_judgement('{"correct": true, "reason": "fine"}')
    True
    >>> parse_judgement('{"correct": fal') is None
    True
    """
    try:
        value = json.loads(text).get("correct")
    except (ValueError, AttributeError):
        head = text.lstrip()[:20]
        if head.startswith('{"correct": true'):
            return True
        if head.startswith('{"correct": false'):
            return False
        return None
    return value if isinstance(value, bool) else None


def fill(template: str, values: Mapping[str, object]) -> str:
    """Replace ``{name}`` for the given names only.

    >>> fill("Q: {task} {other}", {"task": "1+1 {x}"})
    'Q: 1+1 {x} {other}'
    """
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", str(value))
    return out


def seed_for(*parts: object) -> int:
    """A stable 32-bit seed from the request's identity (run seed, round, task, agent, ...).
    Name tasks by their canonical form, never by a row id: ids depend on what else the store
    holds, and the same seed must give the same run in any store."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def request(agent: AgentSpec, user: str, seed: int, *, grammar: str | None = None, greedy: bool = False,
            prefix: str = "", task: int | None = None) -> Request:
    messages = []
    if agent.system:
        messages.append({"role": "system", "content": agent.system})
    messages.append({"role": "user", "content": user})
    sampling = Sampling(
        temperature=0.0 if greedy else agent.temperature,
        top_k=agent.top_k,
        top_p=agent.top_p,
        min_p=agent.min_p,
        seed=seed,
        max_tokens=agent.max_tokens,
        grammar=grammar,
    )
    return Request(messages=messages, sampling=sampling, tag=agent.name, assistant_prefix=prefix,  # type: ignore[arg-type]
                   task=task, role=agent.role)
