"""General facts the base model knows: a check that training on one skill did not erase others.

Thirty-two short questions with an answer a pattern can check, each answered right by the
default model (SmolLM2-135M-Instruct, greedy, its own chat template, no system prompt) when
this set was chosen, so a fact answered wrong later was forgotten. They are split in two like
the task pools: the gate reads the dev half (it drops an adapter that forgets more of them
than ``eval.facts_lost_max`` allows); the benchmarks report the test half, which nothing in the
loop reads. Asked as plain questions, never trained on (replay uses other prompts).

>>> FACTS.verify(fact_tasks("dev")[0], "The capital of Japan is Tokyo.").correct
True
>>> FACTS.verify(fact_tasks("dev")[0], "It is Kyoto.").status
'wrong'
"""

from __future__ import annotations

import re

from engine.tasks.common import Task, Verdict

#: (question, pattern the lower-cased answer must contain), alternating into dev and test.
_ALL: tuple[tuple[str, str], ...] = (
    ("What is the capital of Japan?", r"\btokyo\b"),
    ("What is the capital of Germany?", r"\bberlin\b"),
    ("Who wrote Romeo and Juliet?", r"shakespeare"),
    ("Who wrote Hamlet?", r"shakespeare"),
    ("Who developed the theory of relativity?", r"einstein"),
    ("Who discovered penicillin?", r"fleming"),
    ("What is the chemical symbol for water?", r"\bh2o\b"),
    ("What is the chemical symbol for gold?", r"\bau\b"),
    ("What gas do plants absorb from the air for photosynthesis?", r"carbon dioxide|\bco2\b"),
    ("Who invented the telephone?", r"\bbell\b"),
    ("How many days are there in a week?", r"\bseven\b|\b7\b"),
    ("What is the smallest prime number?", r"\btwo\b|\b2\b"),
    ("What is the boiling point of water in Celsius?", r"\b100\b"),
    ("What is the largest animal on Earth?", r"blue whale"),
    ("What is the largest ocean on Earth?", r"pacific"),
    ("What is the largest desert in the world?", r"sahara"),
    ("What is the opposite of hot?", r"\bcold\b"),
    ("What is the opposite of up?", r"\bdown\b"),
    ("What language is spoken in Brazil?", r"portuguese"),
    ("What is the main language spoken in Mexico?", r"spanish"),
    ("What is the longest river in Africa?", r"\bnile\b"),
    ("In which country are the pyramids of Giza?", r"\begypt\b"),
    ("What is the tallest mountain in the world?", r"everest"),
    ("What is the currency of Japan?", r"\byen\b"),
    ("What is the capital of Russia?", r"\bmoscow\b"),
    ("What is the capital of China?", r"\bbeijing\b"),
    ("What is the capital of Canada?", r"\bottawa\b"),
    ("What is the capital of Egypt?", r"\bcairo\b"),
    ("What is the capital of Australia?", r"\bcanberra\b"),
    ("What is the capital city of Greece?", r"\bathens\b"),
    ("What is the opposite of big?", r"\bsmall\b|\blittle\b"),
    ("What is the main language spoken in Germany?", r"\bgerman\b"),
)
SET_NAMES = {"dev": "facts-dev", "test": "facts-test"}
MAX_TOKENS = 48


def fact_tasks(pool: str) -> list[Task]:
    """The dev or test half, as tasks of the ``facts`` domain."""
    half = _ALL[0::2] if pool == "dev" else _ALL[1::2]
    return [Task("facts", q, pattern, 0, "fact:" + q.lower(), {"pattern": pattern}) for q, pattern in half]


class Facts:
    """Checks a free-text answer against the fact's pattern. Not a recipe domain: it has no
    generator and no proposals."""

    name = "facts"

    def verify(self, task: Task, text: str) -> Verdict:
        ok = re.search(str(task.payload["pattern"]), text.lower()) is not None
        return Verdict(ok, "ok" if ok else "wrong", None)


FACTS = Facts()
