"""Agents: a recipe's roles turned into runtime requests.

Prompts live in the recipe; this module only fills their placeholders ({task}, {answer},
{critique}, {examples}, {difficulty}) by plain substitution, so braces in model-written text
or code can never break formatting, and builds the chat messages and sampling settings.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping

from engine.recipes import AgentSpec
from engine.runtime import Request, Sampling

#: The judge answers ``{"correct": true}`` or ``{"correct": false}``. The reply is started for it
#: (JUDGE_PREFIX) and the grammar allows only the rest, so a verdict costs two grammar-checked
#: steps: a grammar is checked against the whole vocabulary at every step it is active.
JUDGE_PREFIX = '{"correct": '
JUDGE_GRAMMAR = r'''root ::= ("true" | "false") "}"'''


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
