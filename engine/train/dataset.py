"""The training set, built from the store: examples for every role, labelled by the verifier,
plus replay; never dev or test tasks.

After each round, ``collect`` turns that round's answers, critiques and revisions into examples,
each in the exact context its role sees at inference (that agent's system prompt and the
recipe's prompt template for the role):

- solver: verified-right answers to the plain question (first answers and revisions alike; those
  of tasks above ``train.learnable_max`` right are 'easy', trained only as a share), and
  rationales for tasks nobody solved, written with the result in view, trained without it; with
  ``task.answer_format`` other than plain, each such answer is trained as the domain writes the
  task worked in that format (arith value: ``91``; columns: ``19+72: 9+2=11, 1+7+1=9, so 91``), and
  with ``train.unsolved = "worked"`` so is each task nobody got right (source rationale);
- reviser: revisions verified right, given the answer and the critique they revised (fixes of
  wrong answers and keeps of right ones); with ``round.critique = "steps"`` none from the debate:
  its reviser continues the answer as the solver's reply to the task, and a right revision is
  trained as that, a solver example (source revision);
- critic: critiques after which a wrong answer was revised into a right one, in the debate or
  written with the verified result in view (the hint phase; trained without the hint); and as
  many confirmations of right answers that the revision kept, written from the verifier's result;
  with ``train.critiques = "steps"`` instead of the debate's critiques, the verifier's own: each
  wrong first answer's first wrong step against the worked answer (the reviser learning the worked
  answer from it), and as many right first answers confirmed;
- judge: the verdict the verifier gave the round's answers, as many right as wrong; a computing
  judge (round.judging = "compute"): each round task's verified result, asked without an answer
  (worked in ``task.answer_format`` when that is a worked format), the task put as round.judge_view
  puts it (arith's swapped: ``26 * 48`` for ``48 * 26``) and worked so.

Examples are deduplicated by role, task and text, at most ``max_per_task`` per role and task
(per task and class for the judge) across the run; the set accumulates across rounds. Tasks
outside the train pool are excluded in the query itself, so nothing else can let them in.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.agents import JUDGE_PREFIX, fill, request, seed_for
from engine.recipes import AgentSpec, Recipe, TrainSpec
from engine.runtime import Runtime
from engine.tasks.common import step_critique
from engine.train.replay import FACT_REPLAY, REPLAY_PROMPTS

if TYPE_CHECKING:  # the store (duckdb) is not needed to build examples (benchmarks on a training-only machine)
    from engine.store import Store

ROLES = ("solver", "reviser", "critic", "judge")


def _agent(recipe: Recipe, name: str | None, role: str) -> AgentSpec | None:
    named = [a for a in recipe.agents if a.name == name]
    if named:
        return named[0]
    fallback = recipe.agents_with(role)  # type: ignore[arg-type]
    return fallback[0] if fallback else None


def role_messages(recipe: Recipe, agent: AgentSpec | None, user: str) -> list[dict[str, str]]:
    """The conversation an agent sees: its system prompt, then ``user``."""
    msgs = [{"role": "system", "content": agent.system}] if agent is not None and agent.system else []
    return msgs + [{"role": "user", "content": user}]


def solve_messages(recipe: Recipe, task_prompt: str, agent: AgentSpec | None = None) -> list[dict[str, str]]:
    """The prompt a solver (by default the first) sees for a task, as used for training and evaluation."""
    return role_messages(recipe, agent or recipe.agents_with("solver")[0], fill(recipe.prompts.solve, {"task": task_prompt}))


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def confirmation(answer: str) -> str:
    """What a critic trained on the verifier says of a right answer.

    >>> confirmation("91")
    'The answer 91 is right.'
    """
    return f"The answer {answer} is right."


def _judge_class(reply: str) -> str:
    """A judge example's class, for the per-task cap: a verdict (True, False) or a result.

    >>> _judge_class(verdict_text(True)), _judge_class(verdict_text(False)), _judge_class("81")
    ('True', 'False', 'result')
    """
    return "True" if reply == verdict_text(True) else "False" if reply == verdict_text(False) else "result"


def verdict_text(correct: bool) -> str:
    """The judge's whole reply for a verdict (its reply starts with JUDGE_PREFIX at inference).

    >>> verdict_text(False)
    '{"correct": false}'
    """
    return JUDGE_PREFIX + ("true}" if correct else "false}")


@dataclass
class _Attempt:
    id: int
    task_id: int
    agent: str
    sample: int
    turn: int
    text: str
    answer: str
    correct: bool
    prompt: str
    fingerprint: str


def collect(store: Store, recipe: Recipe, run_id: int, rnd: int, seed: int = 0) -> dict[str, int]:
    """Add round ``rnd``'s examples for every role to the run's set; returns how many per role."""
    rows = store.execute(
        """
        select a.id, a.task_id, a.agent, a.sample, a.turn, a.text, coalesce(a.answer, ''), a.correct, t.prompt,
               t.fingerprint, t.reference
        from attempts a join tasks t on t.id = a.task_id
        where a.run_id = ? and a.round = ? and coalesce(t.pool, 'train') = 'train' and not t.held_out and t.rejected_reason is null
        order by t.fingerprint, a.agent, a.sample, a.turn
        """,
        [run_id, rnd],
    )
    atts = [_Attempt(int(r[0]), int(r[1]), r[2], int(r[3]), int(r[4]), r[5] or "", r[6], bool(r[7]), r[8], r[9])
            for r in rows]
    reference = {int(r[1]): r[10] or "" for r in rows}
    by_key = {(a.task_id, a.agent, a.sample, a.turn): a for a in atts}
    crits = {int(aid): (agent, text) for aid, agent, text in store.execute(
        "select attempt_id, agent, text from critiques where run_id = ? and round = ? order by id", [run_id, rnd])}

    have: dict[tuple[str, int], set[str]] = {}  # (role, task) -> normalised conversations kept
    for role, task_id, messages in store.execute(
        "select coalesce(role, 'solver'), task_id, messages from examples where run_id = ? and task_id is not null "
        "and source <> 'replay'", [run_id],
    ):
        msgs = json.loads(messages)
        if role == "judge":  # the judge's cap is per task and class
            role += _judge_class(msgs[-1]["content"])
        have.setdefault((role, int(task_id)), set()).add(_norm(msgs[-2]["content"] + "\n" + msgs[-1]["content"]))
    cap = recipe.train.max_per_task
    p = recipe.prompts
    fmt = recipe.task.answer_format
    worked: dict[int, str] = {}
    # The computing judge's view of each task (round.judge_view), and the task worked in it.
    judge_prompt: dict[int, str] = {}
    judge_worked: dict[int, str] = {}
    viewed = recipe.round.judging == "compute" and recipe.round.judge_view != "asked"
    if (fmt != "plain" or viewed) and atts:
        from engine.agents import judge_task
        from engine.roundbase import TASK_COLUMNS, task_from_row
        from engine.tasks import get_domain

        ids = sorted({a.task_id for a in atts})
        for row in store.execute(f"select {TASK_COLUMNS} from tasks where id in ({', '.join('?' for _ in ids)})", ids):
            tr = task_from_row(row)
            domain = get_domain(tr.task.domain)
            if fmt != "plain":
                worked[tr.id] = domain.worked(tr.task, fmt)
            if viewed:
                seen = judge_task(recipe, domain, tr.task)
                judge_prompt[tr.id] = seen.prompt
                if fmt != "plain":
                    judge_worked[tr.id] = domain.worked(seen, fmt)

    def solver_reply(a: _Attempt) -> str:
        """A verified answer as the solver learns it: its own text, or the task worked in the recipe's format."""
        return worked.get(a.task_id, a.text)
    new: list[dict[str, Any]] = []

    def add(role: str, a: _Attempt, source: str, messages: list[dict[str, str]], reply: str, key: str = "") -> bool:
        """Add an example unless it is empty, over the cap or known; True if it is in the set now."""
        if not reply.strip():
            return False
        seen = have.setdefault((role + key, a.task_id), set())
        k = _norm(messages[-1]["content"] + "\n" + reply)
        if k in seen:
            return True
        if len(seen) >= cap:
            return False
        seen.add(k)
        new.append(dict(role=role, task_id=a.task_id, attempt_id=a.id if a.id >= 0 else None, source=source,
                        messages=messages + [{"role": "assistant", "content": reply.strip()}]))
        return True

    # The learnable filter: a task every solver got right (above train.learnable_max of its first
    # answers) teaches little; its answers are kept as 'easy', trained only at a replay share.
    firsts: dict[int, list[bool]] = {}
    for a in atts:
        if a.turn == 0:
            firsts.setdefault(a.task_id, []).append(a.correct)
    easy = {t for t, oks in firsts.items() if sum(oks) / len(oks) > recipe.train.learnable_max}

    stepwise = recipe.train.critiques == "steps" and bool(worked)
    fixes: list[tuple[_Attempt, str, str]] = []   # critic examples: (critiqued attempt, critic, critique)
    confirms: list[tuple[_Attempt, str]] = []
    for a in atts:
        if a.correct:
            add("solver", a, "easy" if a.task_id in easy else "first" if a.turn == 0 else "revision",
                solve_messages(recipe, a.prompt, _agent(recipe, a.agent, "solver")), solver_reply(a))
        prev = by_key.get((a.task_id, a.agent, a.sample, a.turn - 1)) if a.turn > 0 else None
        if prev is None or prev.id not in crits or recipe.round.critique == "steps":
            continue  # a step critic's revision is the solver's reply to the task, trained above as such
        critic, critique = crits[prev.id]
        if a.correct:
            user = fill(p.revise, {"task": a.prompt, "answer": prev.text, "critique": critique})
            add("reviser", a, "revision", role_messages(recipe, _agent(recipe, a.agent, "solver"), user), a.text)
            if stepwise:  # the verifier's critiques stand in for the model's own
                continue
            if not prev.correct:
                fixes.append((prev, critic, critique))
            elif prev.answer and a.answer == prev.answer:
                confirms.append((prev, critic))
    if recipe.train.unsolved == "worked":
        # Tasks no answer got right: the task worked in the recipe's format, from its verified result;
        # in a domain whose reference is itself an answer (python's code), that reference.
        written = worked
        if fmt == "plain":
            from engine.tasks import get_domain

            as_answer = getattr(get_domain(recipe.task.domain), "reference_answer", None)
            written = {tid: as_answer(ref) for tid, ref in reference.items() if ref} if as_answer else {}
        solved = {a.task_id for a in atts if a.correct}
        for a in atts:
            if a.task_id not in solved and a.turn == 0 and reference.get(a.task_id) and a.task_id in written:
                text = written[a.task_id]
                rat = _Attempt(-1, a.task_id, a.agent, 0, 0, text, "", True, a.prompt, a.fingerprint)
                add("solver", rat, "rationale", solve_messages(recipe, a.prompt, _agent(recipe, a.agent, "solver")),
                    text)
    for prev, critic, critique in fixes:
        user = fill(p.critique, {"task": prev.prompt, "answer": prev.text})
        add("critic", prev, "critique", role_messages(recipe, _agent(recipe, critic, "critic"), user), critique)
    # Hint-guided critiques whose revision the verifier passed, and rationales it passed: trained
    # as replies to the prompts the roles see without the hint.
    for kind, attempt_id, task_id, agent, text, reviser, revision in store.execute(
        "select h.kind, h.attempt_id, h.task_id, h.agent, h.text, h.reviser, h.revision from hints h "
        "join tasks t on t.id = h.task_id where h.run_id = ? and h.round = ? and h.correct "
        "and coalesce(t.pool, 'train') = 'train' and not t.held_out order by h.id", [run_id, rnd]):
        if kind == "rationale":
            a = next((x for x in atts if x.task_id == task_id), None)
            if a is not None:
                rat = _Attempt(-1, task_id, agent, 0, 0, text, "", True, a.prompt, a.fingerprint)
                add("solver", rat, "rationale", solve_messages(recipe, a.prompt, _agent(recipe, agent, "solver")),
                    solver_reply(rat))
            continue
        wrong = next((x for x in atts if x.id == attempt_id), None)
        if wrong is None:
            continue
        user = fill(p.critique, {"task": wrong.prompt, "answer": wrong.text})
        add("critic", wrong, "hint", role_messages(recipe, _agent(recipe, agent, "critic"), user), text)
        user = fill(p.revise, {"task": wrong.prompt, "answer": wrong.text, "critique": text})
        add("reviser", wrong, "hint", role_messages(recipe, _agent(recipe, reviser, "solver"), user), revision or "")
    if stepwise:
        _step_critiques(recipe, atts, worked, add)
    n_fix = sum(1 for e in new if e["role"] == "critic")
    before = len(new)
    for prev, critic in confirms:
        if len(new) - before >= n_fix:  # no more new confirmations than fixes
            break
        user = fill(p.critique, {"task": prev.prompt, "answer": prev.text})
        add("critic", prev, "verifier", role_messages(recipe, _agent(recipe, critic, "critic"), user),
            confirmation(prev.answer))

    judge = _agent(recipe, None, "judge")
    if judge is not None and recipe.round.judging == "compute":
        # A computing judge learns each task's verified result, asked as it is at inference: the
        # result alone, or in a worked format the task worked in it (agents.works_out).
        # (In the view round.judge_view names, the task as put to it and worked so.)
        for a in atts:
            if reference.get(a.task_id):
                user = fill(p.judge_compute, {"task": judge_prompt.get(a.task_id, a.prompt)})
                add("judge", a, "verifier", role_messages(recipe, judge, user),
                    judge_worked.get(a.task_id, worked.get(a.task_id, reference[a.task_id])), key="result")
    elif judge is not None:
        classes: dict[bool, list[_Attempt]] = {True: [], False: []}
        seen_text: set[tuple[int, str]] = set()
        for a in atts:
            if a.text.strip() and (a.task_id, _norm(a.text)) not in seen_text:
                seen_text.add((a.task_id, _norm(a.text)))
                classes[a.correct].append(a)
        rng = random.Random(seed_for(seed, rnd, "judge examples"))
        for group in classes.values():
            rng.shuffle(group)
        n = min(len(classes[True]), len(classes[False]))
        for ok in (True, False):
            kept = 0
            for a in classes[ok]:
                if kept >= n:
                    break
                user = fill(p.judge, {"task": a.prompt, "answer": a.text})
                kept += add("judge", a, "verifier", role_messages(recipe, judge, user), verdict_text(ok), key=str(ok))
    ids = store.allocate_ids("examples", len(new))
    store.insert("examples", [dict(id=i, run_id=run_id, round=rnd, **e) for i, e in zip(ids, new)])
    return {role: sum(1 for e in new if e["role"] == role) for role in ROLES}


def _step_critiques(recipe: Recipe, atts: list[_Attempt], worked: dict[int, str],
                    add: Callable[..., bool]) -> None:
    """train.critiques = "steps": every wrong first answer with the verifier's critique (its first
    wrong step against the worked answer, ``step_critique``) for the critic, and the worked answer
    as the reviser's reply to the answer and that critique; then as many right first answers with a
    confirmation, the reviser keeping the worked answer."""
    p = recipe.prompts
    critic = _agent(recipe, None, "critic")

    def teach(a: _Attempt, critique: str) -> bool:
        user = fill(p.critique, {"task": a.prompt, "answer": a.text})
        if not add("critic", a, "steps", role_messages(recipe, critic, user), critique):
            return False
        user = fill(p.revise, {"task": a.prompt, "answer": a.text, "critique": critique})
        add("reviser", a, "steps", role_messages(recipe, _agent(recipe, a.agent, "solver"), user), worked[a.task_id])
        return True

    firsts = [a for a in atts if a.turn == 0 and a.text.strip() and a.task_id in worked]
    n = 0
    for a in firsts:
        critique = None if a.correct else step_critique(a.text, worked[a.task_id])
        if critique is not None:
            n += teach(a, critique)
    for a in firsts:
        if n <= 0:
            break
        if a.correct and a.answer:
            n -= teach(a, confirmation(a.answer))


def replay_prompts(recipe: Recipe) -> list[str]:
    """The prompts whose base-model answers are the run's replay: the general ones, and with
    train.replay_facts the short questions of general knowledge too."""
    return [*REPLAY_PROMPTS, *([q for q, _a in FACT_REPLAY] if recipe.train.replay_facts else [])]


def collect_replay(store: Store, runtime: Runtime, run_id: int, rnd: int, prompts: list[str],
                   max_tokens: int = 96) -> int:
    """Record the base model's own answers to general prompts (``prompts``: ``replay_prompts``;
    once per run, at round 0)."""
    if store.execute("select count(*) from examples where run_id = ? and source = 'replay'", [run_id])[0][0]:
        return 0
    from engine.recipes import AgentSpec

    agent = AgentSpec(name="replay", role="solver", temperature=0.0, max_tokens=max_tokens)
    comps = runtime.submit_many([request(agent, p, seed_for("replay", i), greedy=True) for i, p in enumerate(prompts)])
    rows = []
    for p, c in zip(prompts, comps):
        res = c.result()
        if res.text.strip():
            rows.append([{"role": "user", "content": p}, {"role": "assistant", "content": res.text.strip()}])
    ids = store.allocate_ids("examples", len(rows))
    store.insert("examples", [
        dict(id=i, run_id=run_id, round=rnd, task_id=None, attempt_id=None, source="replay", messages=m)
        for i, m in zip(ids, rows)
    ])
    return len(rows)


def training_set(store: Store, recipe: Recipe, run_id: int, seed: int, roles: list[str] | None = None,
                 replay: bool = True) -> list[list[dict[str, str]]]:
    """The run's examples so far for ``roles`` (default: the recipe's ``train.roles``; each other
    role at most ``train.role_cap`` examples per solver example, when set), plus its
    share of replay (and of easy answers, when the solver is among the roles) unless ``replay``
    is False (a per-role critic, reviser or judge adapter: the solver's carries the replay)."""
    roles = list(recipe.train.roles if roles is None else roles)
    marks = ", ".join("?" for _ in roles)
    rows = store.execute(
        f"""
        select e.messages, coalesce(e.role, 'solver') from examples e left join tasks t on t.id = e.task_id
        where e.run_id = ? and e.source not in ('replay', 'easy') and coalesce(e.role, 'solver') in ({marks})
          and not coalesce(t.held_out, false) and coalesce(t.pool, 'train') = 'train'
        order by e.id
        """, [run_id, *roles])
    rng = random.Random(seed)
    cap, n_solver = recipe.train.role_cap, sum(1 for _, role in rows if role == "solver")
    if cap is not None and n_solver:
        by_role: dict[str, list[int]] = {}
        for i, (_, role) in enumerate(rows):
            by_role.setdefault(role, []).append(i)
        most = round(cap * n_solver)
        kept = {i for role, idx in by_role.items() for i in (idx if role == "solver" or len(idx) <= most
                                                             else rng.sample(idx, most))}
        rows = [r for i, r in enumerate(rows) if i in kept]
    labelled = [json.loads(messages) for messages, _ in rows]

    def share(source: str, frac: float) -> list[list[dict[str, str]]]:
        """``frac`` of the set from ``source`` examples (as many as there are, at most)."""
        pool = [json.loads(r[0]) for r in store.execute(
            "select e.messages from examples e left join tasks t on t.id = e.task_id where e.run_id = ? and e.source = ? "
            "and not coalesce(t.held_out, false) and coalesce(t.pool, 'train') = 'train' order by e.id",
            [run_id, source])]
        n = min(len(pool), round(len(labelled) * frac / (1 - frac))) if labelled else 0
        return rng.sample(pool, n) if n else []

    easy = share("easy", recipe.train.easy_fraction) if "solver" in roles and replay else []
    chosen = share("replay", recipe.train.replay_fraction) if replay else []
    data = labelled + easy + chosen
    rng.shuffle(data)
    return data


def step_error_rates(store: Store, domain: Any, run_id: int, rnd: int) -> dict[str, float]:
    """Each kind of step the round's first answers write out (every solver and sample; the
    domain's ``step_kinds``): the share of them written with a wrong value, one right and one
    wrong step imagined (``curriculum.rate``), so a kind seldom seen reads near a half."""
    from engine.curriculum import count_skills, rate

    texts = store.execute("select text from attempts where run_id = ? and round = ? and turn = 0 and text is not null",
                          [run_id, rnd])
    counts = count_skills(([kind], right) for (text,) in texts for kind, right in domain.step_kinds(text))
    return {kind: 1.0 - rate(c) for kind, c in counts.items()}


def focus_on_steps(examples: list[list[dict[str, str]]], rates: dict[str, float], domain: Any, k: int,
                   strength: float, seed: int) -> list[list[dict[str, str]]]:
    """``k`` of ``examples`` drawn without replacement (train.focus_steps), each with weight
    1 + ``strength`` x the highest error rate (``rates``; a kind the round did not write: a half) of
    the kinds of step its reply writes (1: none); every example, as it is, when there are no
    more than ``k``.

    >>> from engine.tasks.arith import Arith
    >>> ex = lambda reply: [{"role": "user", "content": "q"}, {"role": "assistant", "content": reply}]
    >>> examples = [ex("52-17: 12-7=5, 5-1-1=3, so 35")] * 50 + [ex("19+72: 9+2=11, 1+7+1=9, so 91")] * 50
    >>> rates = {"n-d": 0.8, "d-d-d": 0.8, "d+d": 0.02, "d+d+d": 0.1}
    >>> picked = focus_on_steps(examples, rates, Arith(), 40, 10.0, seed=1)
    >>> len(picked), sum("-" in m[1]["content"] for m in picked)  # the differences: 20 with every example as likely
    (40, 30)
    >>> focus_on_steps(examples[:3], rates, Arith(), 40, 10.0, seed=1) == examples[:3]
    True
    """
    if len(examples) <= k:
        return examples

    from engine.curriculum import weighted_draw

    def weight(messages: list[dict[str, str]]) -> float:
        kinds = domain.step_kinds(messages[-1]["content"])
        return 1.0 + strength * max((rates.get(kind, 0.5) for kind, _ok in kinds), default=0.0)

    return [examples[i] for i in weighted_draw(random.Random(seed), [weight(m) for m in examples], k)]


def round_steps(spec: TrainSpec, n_examples: int) -> int:
    """A round's optimizer steps for a training set of ``n_examples``: ``spec.steps``, or with
    ``spec.epochs`` set enough steps for that many passes over the set, never fewer.

    >>> from engine.recipes import TrainSpec
    >>> round_steps(TrainSpec(steps=30), 900), round_steps(TrainSpec(steps=30, epochs=2), 900)
    (30, 225)
    >>> round_steps(TrainSpec(steps=30, epochs=2, batch_size=8), 60)
    30
    """
    if spec.epochs is None:
        return int(spec.steps)
    return max(int(spec.steps), math.ceil(n_examples * spec.epochs / spec.batch_size))


def split_steps(steps: int, sizes: dict[str, int]) -> dict[str, int]:
    """A round's ``steps`` shared out over per-role adapters in proportion to each role's
    examples (at least one step for a role with any): every example is seen about as often as
    in one shared adapter, for the same total.

    >>> split_steps(40, {"solver": 60, "critic": 20, "reviser": 10, "judge": 10})
    {'solver': 24, 'critic': 8, 'reviser': 4, 'judge': 4}
    >>> split_steps(12, {"solver": 50, "critic": 0, "judge": 1})
    {'solver': 12, 'critic': 0, 'judge': 1}
    """
    total = sum(sizes.values())
    return {role: max(1, round(steps * n / total)) if n else 0 for role, n in sizes.items()}


def solver_examples(store: Store, run_id: int) -> int:
    """Verified solver answers the run has collected (what ``train.min_examples`` counts)."""
    return int(store.execute("select count(*) from examples where run_id = ? and source in ('first', 'revision', 'verified') "
                             "and coalesce(role, 'solver') = 'solver'", [run_id])[0][0])


EXPORT_COLUMNS = ["id", "run_id", "round", "task_id", "attempt_id", "role", "source", "messages", "created_at"]


def export_rows(store: Store, run_id: int | None = None, roles: list[str] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The examples (of one run, of some roles; replay has no role) as columns and rows."""
    sql, where, params = f"select {', '.join(EXPORT_COLUMNS)} from examples", [], []  # type: ignore[var-annotated]
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    if roles:
        where.append(f"role in ({', '.join('?' for _ in roles)})")
        params.extend(roles)
    rows = store.execute(sql + (" where " + " and ".join(where) if where else "") + " order by id", params)
    return list(EXPORT_COLUMNS), rows
