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


def judge_task(recipe: Recipe, domain: Domain, task: Task) -> Task:
    """``task`` as the judge is asked it: as the solver was, or, for a computing judge, in the view
    round.judge_view names (arith's swapped: ``26 * 48`` for ``48 * 26``), with the same reference.

    >>> from engine.recipes import load_recipe
    >>> from engine.tasks import ARITH, Task
    >>> r = load_recipe("plain")[0]
    >>> c = r.model_copy(update={"round": r.round.model_copy(update={"judging": "compute", "judge_view": "swapped"})})
    >>> t = Task("arith", "What is 48 * 26?", "1248", 7, "*(26,48)", {"expression": "48 * 26"})
    >>> judge_task(r, ARITH, t).prompt, judge_task(c, ARITH, t).prompt, judge_task(c, ARITH, t).reference
    ('What is 48 * 26?', 'What is 26 * 48?', '1248')
    """
    return task if recipe.round.judge_view == "asked" else domain.view(task, recipe.round.judge_view)


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


def judge_requests(recipe: Recipe, judge: AgentSpec, task_prompt: str, answer: str, seed: int, *,
                   greedy: bool, task: int | None = None) -> list[Request]:
    """The judge's requests on ``answer``: ``judge_request``'s, then, for a computing judge with
    round.judge_votes above 1, one more per vote, sampled at round.vote_temperature with its own
    seed. ``join_votes`` records the replies as one, and ``judge_verdict`` counts them."""
    first = judge_request(recipe, judge, task_prompt, answer, seed, greedy=greedy, task=task)
    votes = recipe.round.judge_votes if recipe.round.judging == "compute" else 1
    if votes == 1:
        return [first]
    hot = judge.model_copy(update={"temperature": recipe.round.vote_temperature})
    return [first, *(judge_request(recipe, hot, task_prompt, answer, seed_for(seed, "vote", k), greedy=False, task=task)
                     for k in range(1, votes))]


#: Between a computing judge's votes in its recorded reply (round.judge_votes above 1).
VOTE_SEPARATOR = "\n--- vote ---\n"


def join_votes(texts: list[str]) -> str:
    """A computing judge's replies (``judge_requests``, as ``judge_text`` records them) as one
    recorded reply: each vote's text, in the order asked; ``judge_verdict`` counts them."""
    return VOTE_SEPARATOR.join(texts)


def split_votes(text: str) -> list[str]:
    """A recorded reply's votes, in the order asked (one, without votes): ``join_votes`` undone."""
    return text.split(VOTE_SEPARATOR)


def judge_text(recipe: Recipe, reply: str) -> str:
    """The judge's whole reply as recorded (a verdict's JSON starts in the request's prefix)."""
    return reply.strip() if recipe.round.judging == "compute" else JUDGE_PREFIX + reply


def judge_verdict(recipe: Recipe, domain: Domain, task: Task, answer: str, text: str) -> bool | None:
    """The judge's verdict on ``answer`` from its recorded reply ``text`` (judge_text), or None when
    the reply is unusable. A computing judge's verdict: ``answer`` is right when the domain's checker,
    given the judge's result as the reference, passes it; with votes (round.judge_votes, the replies
    joined by ``join_votes``), when it passes with at least round.judge_agree of the results as the
    reference (or with all of them, when fewer replies have a result).

    >>> from engine.recipes import load_recipe
    >>> from engine.tasks import ARITH, Task
    >>> r = load_recipe("plain")[0]
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
    >>> v = c.model_copy(update={"round": c.round.model_copy(update={"judge_votes": 3, "judge_agree": 2})})
    >>> said = join_votes(["81", "81", "80"])
    >>> judge_verdict(v, ARITH, t, "81", said), judge_verdict(v, ARITH, t, "80", said)
    (True, False)
    >>> judge_verdict(v, ARITH, t, "81", join_votes(["x", "81", "y"])), judge_verdict(v, ARITH, t, "81", "x")
    (True, None)
    """
    if recipe.round.judging != "compute":
        return parse_judgement(text)
    results = [r for r in (judge_result(recipe, domain, task, t) for t in split_votes(text)) if r is not None]
    if not results:
        return None
    agree = sum(domain.verify(replace(task, reference=r), answer).correct for r in results)
    return agree >= min(recipe.round.judge_agree, len(results))


def judge_consensus(recipe: Recipe, domain: Domain, task: Task, text: str) -> str | None:
    """A computing judge's result on the whole, from its recorded reply ``text``: the one value at
    least round.judge_agree of its votes' results reach (all of them, when fewer have a result), or
    None when no value does (or two do) or no vote has a result. Without votes: its one result.

    >>> from engine.recipes import load_recipe
    >>> from engine.tasks import ARITH, Task
    >>> r = load_recipe("plain")[0]
    >>> c = r.model_copy(update={"round": r.round.model_copy(update={"judging": "compute"})})
    >>> t = Task("arith", "What is 40 + 41?", "81", 2, "fp", {"expression": "40 + 41"})
    >>> v = c.model_copy(update={"round": c.round.model_copy(update={"judge_votes": 3, "judge_agree": 2})})
    >>> judge_consensus(v, ARITH, t, join_votes(["80", "81", "81"])), judge_consensus(v, ARITH, t, join_votes(["80", "81", "82"]))
    ('81', None)
    >>> judge_consensus(c, ARITH, t, "80"), judge_consensus(v, ARITH, t, join_votes(["x", "y", "79"])), judge_consensus(c, ARITH, t, "x")
    ('80', '79', None)
    """
    results = [r for r in (judge_result(recipe, domain, task, t) for t in split_votes(text)) if r is not None]
    need = min(recipe.round.judge_agree, len(results))
    reached = [v for v in dict.fromkeys(results) if results.count(v) >= need]
    return reached[0] if results and len(reached) == 1 else None


def judge_result(recipe: Recipe, domain: Domain, task: Task, text: str) -> str | None:
    """A computing judge's result in one reply ``text``: the number it gave, or, worked in the
    answer format, the final number the domain's checker reads; None when it has none."""
    m = _RESULT.fullmatch(text)
    if m is not None:
        return str(int(m.group(1)))
    return domain.verify(task, text).answer if works_out(recipe) else None


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
