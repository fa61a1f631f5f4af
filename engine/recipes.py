"""Recipes: the loop's settings as validated TOML data.

Every field has bounds and a description; unknown keys are errors. ``load_recipe`` is the one
way in, and every problem it finds becomes a RecipeError naming the file, the key and the
reason, e.g. ``recipes/x.toml: agents[1].temperature: must be <= 2``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import RecipeError
from engine.models import DEFAULT_MODEL
from engine.paths import recipes_dir

Role = Literal["proposer", "solver", "critic", "judge"]
DEFAULT_RECIPE = "default"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointSpec(_Strict):
    url: str = Field("", description="The server's base URL (http://host:port); empty with launch = true.")
    launch: bool = Field(False, description="swarm starts a llama-server on this machine for this endpoint "
                         "(the binary from `swarm server build` or $SWARM_LLAMA_SERVER), serving the recipe's "
                         "model and weights; a new adapter restarts it with the file.")
    kind: Literal["llama-server", "vllm"] = Field("llama-server", description="What answers at the URL: llama.cpp's "
                                                  "llama-server (/completion) or vLLM (/v1/completions).")
    slots: int = Field(4, ge=1, le=256, description="Requests sent at once (llama-server: its -np).")
    api_key_env: str = Field("", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$|^$",
                             description="Environment variable holding the API key (never the key itself).")
    roles: list[Role] = Field(default_factory=list, description="Roles this endpoint serves; empty: all.")
    timeout: float = Field(300.0, gt=0, le=3600, description="Seconds without a byte from the server before "
                           "the request moves to another endpoint.")
    model: str = Field("", description="vLLM: the served model name a request asks for.")

    @model_validator(mode="after")
    def _where(self) -> EndpointSpec:
        if self.launch == bool(self.url):
            raise ValueError("give an endpoint either url or launch = true")
        if self.launch and self.kind != "llama-server":
            raise ValueError("only a llama-server endpoint can be launched")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https:// (got {self.url!r})")
        return self


class ModelSpec(_Strict):
    path: str = Field(DEFAULT_MODEL, description="GGUF path, or builtin:NAME for a packaged model.")
    n_ctx: int = Field(2048, ge=256, le=131072, description="Context tokens per agent sequence.")
    n_parallel: int = Field(8, ge=1, le=64, description="Sequences decoded together in one batch.")
    n_batch: int = Field(512, ge=32, le=8192, description="Most tokens in one llama_decode call.")
    n_threads: int = Field(0, ge=0, le=256, description="CPU threads; 0 uses every core.")
    weights: str = Field(
        "auto", description="Weight type served: \"as-is\" (the file as it is), a llama.cpp type (F16, BF16, Q8_0, "
        "Q4_0, ...; converted once and cached in the data dir), or \"auto\": each candidate's batched decode measured "
        "on this machine and the fastest taken unless its perplexity on a fixed text rises more than 5% (engine.weights). "
        "A run keeps the type it started with.")
    gpu_layers: int = Field(-1, ge=-1, le=100_000, description="Layers offloaded to the GPU when llama.cpp was built "
                            "with GPU support: -1 (auto) offloads every layer, 0 none. A CPU-only build ignores it.")
    prefix_cache: bool = Field(
        True, description="Requests whose prompts start alike (template, system prompt, task) copy the shared "
        "prefix's KV cells instead of decoding it again. Needs one unified KV cache, whose rounding depends on "
        "where cells lie: greedy output can then differ from the same request run alone.")
    backend: Literal["inprocess", "openai"] = Field(
        "inprocess", description="Where agents run: inprocess (llama.cpp in this process) or openai (inference "
        "servers: llama-server or vLLM, listed in endpoints; engine.runtime.http).")
    endpoints: list[EndpointSpec] = Field(
        default_factory=list, description="The servers of the openai backend; requests go to whichever has a "
        "free slot, and one that fails is marked down and its requests retried elsewhere.")
    adapter_dir: str = Field("", description="openai backend: a directory external servers read, where each "
                             "adapter is copied as <sha256>.gguf (launched servers need none).")
    wait_down: float = Field(60.0, gt=0, le=86400, description="openai backend: seconds a request waits for a "
                             "down endpoint to come back before the phase stops (the run resumes later).")


    @model_validator(mode="after")
    def _backend(self) -> ModelSpec:
        if self.backend == "openai" and not self.endpoints:
            raise ValueError("backend = \"openai\" needs endpoints")
        if self.backend == "inprocess" and self.endpoints:
            raise ValueError("endpoints are for backend = \"openai\"")
        return self

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: str) -> str:
        from engine.weights import TYPES, WEIGHTS_SPEC_HELP

        if v in ("auto", "as-is"):
            return v
        if v.upper() not in TYPES:
            raise ValueError(f"unknown weight type {v!r}: use {WEIGHTS_SPEC_HELP}")
        return v.upper()


class AgentSpec(_Strict):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$", description="Unique agent name.")
    role: Role = Field(description="proposer, solver, critic or judge.")
    system: str = Field("", max_length=4000, description="System prompt for this agent.")
    temperature: float = Field(0.7, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    top_k: int = Field(40, ge=0, le=1000, description="Top-k cut; 0 disables it.")
    min_p: float = Field(0.05, ge=0.0, lt=1.0, description="Min-p cut relative to the best token.")
    max_tokens: int = Field(128, ge=1, le=8192, description="Most tokens this agent writes per turn.")


#: The fewest tokens a solver (or a computing judge) may write when answers are worked in a format
#: (task.answer_format other than plain and value).
WORKED_MIN_TOKENS = 48


class TaskSpec(_Strict):
    domain: str = Field("arith", description="Task domain from the registry (arith, python).")
    difficulty: int = Field(1, ge=1, le=10, description="Starting difficulty level.")
    max_difficulty: int = Field(6, ge=1, le=10, description="Difficulty never rises above this.")
    generated: int = Field(16, ge=0, le=10000, description="Generator tasks per round.")
    proposed: int = Field(4, ge=0, le=1000, description="Proposer-written tasks per round.")
    target_low: float = Field(0.2, ge=0.0, le=1.0, description="Two rounds under this dev score, not rising: a level down.")
    target_high: float = Field(0.8, ge=0.0, le=1.0, description="Above this dev score: a level up.")
    next_share: float = Field(0.25, ge=0.0, le=0.9, description="Share of generated tasks drawn from the next level.")
    ahead_share: float = Field(0.0, ge=0.0, le=0.9, description="Share of generated tasks shared out evenly over the "
                               "levels two and more above (what lies ahead seen early: with train.unsolved = 'worked' "
                               "their worked references are trained on before the curriculum reaches them).")
    ahead_top: float | None = Field(None, ge=0.0, le=1.0, description="Of the ahead_share's tasks, the share drawn "
                                    "from the top level (max_difficulty), the rest shared out evenly over the other "
                                    "levels ahead; unset: every level ahead takes an even share. The top level is the "
                                    "recipe's aim (arith: the mixed level), seen from the first round on.")
    prev_share: float = Field(0.0, ge=0.0, le=0.9, description="Share of generated tasks drawn from the level below "
                              "(solvable tasks that keep verified data coming after a level up).")
    stall_rounds: int = Field(2, ge=1, le=100, description="A level up when the dev score has not risen for this "
                              "many rounds.")
    min_rise: float = Field(0.02, ge=0.0, le=1.0, description="A rise smaller than this counts as no rise.")
    shorter: float = Field(0.0, ge=0.0, le=1.0, description="arith: share of a round's generated tasks at a level "
                           "of one width above one digit (2- and 3-digit sums and differences, 2-digit products) whose numbers but "
                           "one are drawn of a shorter width (36 + 4, 7 + 512): sums of numbers of different lengths "
                           "that no such level poses, and that mixed tasks need after a product. Dev and test sets "
                           "are not touched.")
    focus_weak: bool = Field(True, description="Generated tasks lean toward the skills the swarm gets wrong; "
                             "false draws them uniformly.")
    answer_format: str = Field("plain", description="How verified answers are written in the solver's training "
                               "examples: plain (the solver's own words), or a format of the domain (arith: value, the "
                               "verified result alone; columns, each sum or difference worked column by column with "
                               "its carries or borrows, each product as partial products worked so and added; reversed, each result digit by digit least-significant first; "
                               "digits, columns with both numbers first spelled out digit by digit; split, columns with each column that "
                               "takes a carry or pays a borrow back written as two steps, 8+7=15, 15+1=16). The checker reads "
                               "the final answer of any of them. "
                               "The formats screen's best (benchmarks/results/formats.json) was the value alone "
                               "(labelled plain in that file: the screen has no solver's words) at 160 tasks; with "
                               "a thousand, columns (formats-levels-columns.json), and in the loop columns with "
                               "train.unsolved = 'worked' reached 2-digit 97%, 3-digit 78% on one seed "
                               "(improve-columns-worked-seed7.json). Worked formats need max_tokens >= 48.")

    @property
    def worked(self) -> bool:
        """Whether answers are written worked out (a format other than plain and value): long ones."""
        return self.answer_format not in ("plain", "value")

    @model_validator(mode="after")
    def _edges(self) -> TaskSpec:
        if self.target_low >= self.target_high:
            raise ValueError("target_low must be below target_high")
        if self.difficulty > self.max_difficulty:
            raise ValueError("difficulty must not exceed max_difficulty")
        return self


class RoundSpec(_Strict):
    samples: int = Field(2, ge=1, le=64, description="Answers per solver per task (k).")
    unsolved_samples: int | None = Field(
        None, ge=1, le=64, description="Answers per solver per task at a level of which no first answer was right "
        "in the round before (a level the solvers cannot do yet: its tasks train through worked references or "
        "rationales, train.unsolved), where round.samples answers would all be wrong; a level the round before did "
        "not play, and every level in round 0, takes round.samples. Fewer answers there spend less of the solve "
        "phase on the longest answers of the round; a value of round.samples or more plays as round.samples (it never "
        "adds answers). None: round.samples at every level.")
    debate_turns: int = Field(1, ge=0, le=8, description="Critique-and-revise turns after the first answer.")
    critique: Literal["text", "steps"] = Field(
        "text", description="How the critic critiques and the reviser revises. text: the critic writes a critique "
        "(prompts.critique) and the solver revises with it (prompts.revise). steps (arith, a worked answer format): "
        "the critic checks each computation the answer writes out by asking it alone, one operation at a time, as a "
        "greedy solver request (a sum or product in both orders; a value both reach is the checked one); the first "
        "step whose checked value differs is the slip, the critique names it, and the reviser continues the answer "
        "from that step with the checked value in place; an answer with no slip is kept (engine/stepcheck.py). "
        "Measured on one adapter (seed 8, round 4, 312 test tasks of levels 1, 2, 3 and mixed): the judged pick with "
        "the swapped computing judge +2.2 points, 1 right answer turned wrong (benchmarks/probes/step_check.py).")
    step_check: Literal["task", "inline"] = Field(
        "task", description="How the step critic (round.critique = \"steps\", round.judge_check) asks each operation. "
        "task: as a task of its own (\"What is 7 + 9?\"), answered in the answer format, its final number the "
        "checked value. inline: the same request with the reply started as a worked answer writes the step "
        "(\"7+9=\"), the number it goes on with the checked value: the step as the model writes it inside its "
        "answers, without the answer format around it (an adapter that forgot 1-digit sums as tasks still writes "
        "their steps).")
    step_operands: Literal["any", "digits"] = Field(
        "any", description="Which operations the step critic (round.critique = \"steps\", round.judge_check) "
        "checks. any: every one, left to right as written. digits: only those of two one-digit numbers, a sum's "
        "numbers added smallest first (a column's 6+5+1 asked as 1+5, then 6+6), an operation with a longer number "
        "left unchecked: measured on one adapter (seed 8, round 6), every false alarm of the inline check on 2- and "
        "3-digit sums was a carry sum's second step (11+1 answered 2, as a column's digit) and most checks with a "
        "2-digit number were wrong both ways.")
    step_spaced: bool = Field(
        False, description="With round.step_check = \"inline\": each operation is also asked written spaced "
        "(\"4 + 5 = \" beside \"4+5=\", in the order checked), and a checked value stands only where that form "
        "reaches it too, else the step is left unchecked. An adapter's false beliefs in the compact form are seldom "
        "the spaced form's (seen on seed 7's round-4 adapter, Intel host: 4+4, 4+5 and 5+4 answered 10 compact in "
        "both orders and as tasks, 9, 9 and 5 spaced; every right answer the step critic turned wrong on its 2- and "
        "3-digit test sets, 16 of them, was one of those beliefs or a carry sum reaching 10 for 8 or 9).")
    step_plan: bool = Field(
        False, description="With a step critic (round.critique = \"steps\", or round.judge_check = \"steps\"), "
        "arith: each answer's operations are also read against the order the task's expression takes them in (its "
        "products before its sums, left to right): where the answer takes another operation than the one due (\"74*74\" "
        "for 2 + 4 * 74), or stops before the last (\"so 86\" for 69 + 43 * 2), before any slip the checks find, "
        "that is the fault: the critique names the operation due, written with the values the answer wrote, and the "
        "answer goes on from there with it in place (\"...so 86; 69+86\"), and again, up to twice, while the "
        "continued answer still stops short. No request is asked for it and no value "
        "is computed: the order is read from the task, each value is still the model's. Seen on seed 7's final adapter "
        "(Intel host): 34 of the 86 wrong first answers on the mixed test set left the order, no right one did; with "
        "round.step_spaced too, the debate's gain on that adapter's test sets +4.2 points against +2.6 without it.")
    step_columns: bool = Field(
        False, description="With a step critic (round.critique = \"steps\", or round.judge_check = \"steps\"), "
        "arith: each worked step's columns are also read against the layout of the operation its head names: each "
        "column's digits the ones above it, its carry read off the total written before it, no column left out, "
        "and the result the one its totals give (the last whole, then each earlier one's last digit). Where the "
        "answer leaves that layout before any slip the checks find, that is the fault: the critique names what is "
        "due (\"The column there is 9+9+1, not 9+9.\", \"The columns give 1658, not 158.\") and the answer goes on "
        "from there with it in place. No request is asked and no value computed: the digits are read off the "
        "answer's own head and totals. Seen on seed 8's round-2 adapter (Intel host): 28 of the 42 wrong first "
        "answers on the 3-digit test set left the layout (carries dropped or added, a column left out, the result "
        "misread), no right one did.")
    judge_check: Literal["none", "steps"] = Field(
        "none", description="With round.judging = \"compute\" and a worked answer format: whether the judge's own "
        "worked result is checked before it judges. steps: its computations are checked as the step critic checks an "
        "answer (round.critique = \"steps\", greedy solver requests, one operation at a time), and where a slip is "
        "found the judge continues its work from it with the checked value, for round.debate_turns turns; the mended "
        "result is the one it judges with. none: its result as written.")
    debate_tasks: int | None = Field(
        None, ge=1, le=100_000, description="The debate, the judge and the hint phase take at most this many of the "
        "round's tasks (a seeded draw, the same on resume); the others are only solved and verified, and their "
        "verified answers still train the solver and the judge. Solving costs a fraction of debating, so a round can "
        "verify many more answers than it debates (task.generated above this). None: every task is debated.")
    max_tokens_per_round: int = Field(
        400_000, ge=100, description="Most tokens all agents generate in one round; requests are capped to fit.")
    skip: list[Literal["debate", "judge"]] = Field(
        default_factory=list, description="Phases this recipe leaves out: debate (no critique and revision; the "
        "first answers are final) and judge (no verdicts). Their round statistics read NaN; the other phases run as "
        "usual. (The hint phase has round.hints; training has train.enabled.)")
    judging: Literal["verdict", "compute"] = Field(
        "verdict", description="How the judge decides. verdict: it reads the task and the answer (prompts.judge) and "
        "says right or wrong; it trains on the verifier's verdicts, as many right as wrong. compute: it works the task "
        "out itself without seeing any answer (prompts.judge_compute), greedily, once per task (or by votes: "
        "round.judge_votes), and an answer is judged right when it is the judge's result; it trains on each round "
        "task's verified result, written in task.answer_format when that is a worked format (columns ...: the judge "
        "then works the task out in it, unconstrained, and its result is the final number; give it max_tokens for "
        "the work). compute needs a domain whose answers are values (arith).")
    judge_votes: int = Field(
        1, ge=1, le=16, description="With round.judging = \"compute\": how many results the judge works out per task, "
        "the first greedily and the others sampled at round.vote_temperature; an answer is judged right when at "
        "least round.judge_agree of them equal it (a self-consistency check: what the judge gets right it reaches "
        "on most samples). 1: the greedy result alone. Each vote costs one judge request per judged task.")
    judge_agree: int = Field(
        1, ge=1, le=16, description="With round.judge_votes: how many of the judge's results must equal an answer for "
        "it to be judged right (all of the usable ones, when fewer replies give a result).")
    vote_temperature: float = Field(
        0.7, ge=0.0, le=2.0, description="The sampling temperature of a computing judge's votes after the first "
        "(round.judge_votes).")
    judge_view: str = Field(
        "asked", description="With round.judging = \"compute\": how the task is put to the judge, one of the domain's "
        "views. asked: as the solver sees it. swapped (arith): with its commutative operands swapped (26 * 48 for "
        "48 * 26, 7 + 12 for 12 + 7), the same value; the judge also trains on tasks put so. A judge that works the "
        "very task the solver worked makes the solver's slips with it and passes them; measured on one adapter "
        "(benchmarks/probes/swap_judge.py, seed 7 round 3, test levels 2, 3 and mixed), the swapped view passed 29 of "
        "127 wrong answers where the asked one passed 61 (balanced accuracy 86.3% against 74.3%).")
    debate_answer: Literal["judged", "revision", "three-way", "majority"] = Field(
        "judged", description="The answer a debate settles on (the debate protocol: swarm eval --debate, the improve "
        "benchmark, the per-role gate's debate). judged: the judge's pick, the revision only where the judge calls "
        "the first answer wrong and the revision right, else the first answer. revision: the last revision, whatever "
        "the judge said. three-way (round.judging = 'compute'): as judged, but where the judge calls both wrong and "
        "has a result of its own (with round.judge_votes, one that round.judge_agree of them reach), its result. "
        "majority (round.judging = 'compute'): the value two of the three reach, the first answer, the revision and "
        "the judge's result (an answer the judge calls right, or the first answer where it and the revision agree), "
        "else the revision: where each says another thing, or the judge has no result, the reviser had the last "
        "word. All are scored from the same answers; a score records the revisions' own figures beside.")
    hints: bool = Field(
        False, description="After the judge, the hint phase: each wrong final answer (at most train.max_per_task per "
        "task) gets a critique written with the verified result in view (prompts.hint) and a revision by its solver "
        "with that critique; each task no answer got right gets a rationale written with the result in view "
        "(prompts.rationale). Those the verifier passes train the critic, the reviser and the solver, without the hint. "
        "Off by default: measured (improve --quick, 3 seeds, test sets) it raised 2-digit accuracy 43.3% -> 47.8% "
        "(within the seeds' spread) but made the debate worse: gain +3.2 -> -4.2 points, right->wrong 6.3% -> 15.4%, "
        "judge balanced accuracy 52.1% -> 42.0% (benchmarks/results/improve-hints.json).")


class PromptSpec(_Strict):
    propose: str = Field(min_length=1, description="Proposer's request; {examples} (tasks leaning "
                         "toward weak skills), {difficulty}, {weak_skills} (the weakest skills in words), {failed} "
                         "(tasks the last round got wrong).")
    solve: str = Field(min_length=1, description="Solver's first turn; {task}.")
    critique: str = Field(min_length=1, description="Critic's request; {task}, {answer}.")
    revise: str = Field(min_length=1, description="Solver's revision; {task}, {answer}, {critique}.")
    judge: str = Field(min_length=1, description="Judge's request; {task}, {answer}.")
    judge_compute: str = Field(
        "Question: {task}\nWhat is the exact result? Reply with the number only.", min_length=1,
        description="Judge's request with round.judging = \"compute\": {task} (no answer: the judge works it out).")
    hint: str = Field(
        "Question: {task}\nAnswer: {answer}\nA correct answer: {reference}\nSay briefly what is wrong with the answer.",
        min_length=1, description="Critic's request with the verified result in view (hint phase); {task}, {answer}, "
        "{reference}. The critique is trained as the reply to prompts.critique, without the result.")
    rationale: str = Field(
        "{task}\n(The correct answer is {reference}. Work it out.)", min_length=1,
        description="Solver's request with the verified result in view, for tasks nobody solved (hint phase); {task}, "
        "{reference}. A rationale the verifier passes is trained as the reply to prompts.solve.")


class TrainSpec(_Strict):
    enabled: bool = Field(True, description="Train between rounds (swarm run --no-train overrides).")
    backend: Literal["auto", "unsloth", "peft"] = Field("auto", description="Training backend.")
    warm_worker: bool = Field(
        True, description="One training worker per run stays alive across rounds: torch, the backend, the base "
        "weights and the export's reference model are loaded once (each round's LoRA starts again from the base, or "
        "from the adapter in use with warm_start). False starts a worker process per step (prepare, train, export).")
    rank: int = Field(16, ge=1, le=256, description="LoRA rank r.")
    alpha: float = Field(32.0, gt=0, le=1024, description="LoRA alpha.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="LoRA dropout.")
    learning_rate: float = Field(1e-3, gt=0, le=1.0, description="AdamW learning rate.")
    steps: int = Field(40, ge=1, le=100_000, description="Optimizer steps per round.")
    epochs: float | None = Field(
        None, gt=0, le=1000, description="When set, a round's optimizer steps are enough for this many passes over "
        "its training set (examples x epochs / batch_size, rounded up), at least train.steps: the steps grow with the "
        "data the run has verified. Unset: train.steps every round.")
    batch_size: int = Field(8, ge=1, le=512, description="Examples per step.")
    max_seq_len: int = Field(256, ge=16, le=8192, description="Examples are cut to this many tokens.")
    max_per_task: int = Field(2, ge=1, le=64, description="Distinct verified answers kept per task.")
    warm_start: bool = Field(
        False, description="Each round continues training the adapter in use (its LoRA weights) instead of "
        "starting again from the base model. Off by default: over 8 default rounds it ended lower (2-digit 54% "
        "vs 64%, 3-digit 16% vs 33%, measured on the gate's own sets: improve-warm-start.json); with 200 generated "
        "tasks a round, one seed, test sets: 2-digit 76% vs 69% from the base (improve-warm-data-seed7.json).")
    unsolved: Literal["skip", "worked"] = Field(
        "skip", description="Train tasks no answer got right in a round. skip: they teach nothing (the hint "
        "phase's rationales, round.hints, are their path). worked: with task.answer_format other than plain, the "
        "solver trains on each such task worked in that format from its verified result (source 'rationale': "
        "STaR's rationalisation, written by the domain instead of the model, whose own words a worked format "
        "replaces anyway), so a level the solvers cannot yet do still gives data; in the python domain, whose "
        "reference is itself an answer, on the task's reference implementation (the code its tests were made from).")
    critiques: Literal["debate", "steps"] = Field(
        "debate", description="What the critic and the reviser learn from. debate: the critiques after which the "
        "round's debate (or the hint phase) revised a wrong answer right, and as many confirmations of right answers "
        "the revision kept. steps: with a worked task.answer_format, every wrong first answer of the round with the "
        "critique the verifier writes from the worked answer (its first wrong step and the right one: '0+4+1=5 is "
        "wrong: it should be 1+0+1=2.'), the reviser learning the worked answer from the answer and that critique; as "
        "many right first answers with a confirmation, the reviser keeping them (source 'steps'). The model's own "
        "debate critiques are not trained then; hints still are.")
    min_examples: int = Field(
        4, ge=1, le=100_000, description="Verified examples the run needs before a round trains; with fewer the "
        "round skips training and records why (an adapter fitted to one or two answers only memorises them).")
    replay_fraction: float = Field(0.2, ge=0.0, le=0.9, description="Share of general replay examples.")
    role_cap: float | None = Field(
        None, ge=0.0, le=100.0, description="With one shared adapter: each role other than the solver trains on at "
        "most this many examples per verified solver example in a round's set (a fresh seeded draw each round), so "
        "the judge's verdicts, which pile up fastest, do not crowd out the answers. None: every example.")
    replay_facts: bool = Field(
        False, description="Replay also rehearses short questions of general knowledge (engine.train.replay."
        "FACT_REPLAY, 24 of them, none a fact the gate or the benchmarks check nor with one's answer): the base "
        "model's answers to them join the replay examples at round 0, so an adapter keeps answering such a question "
        "in a word or two. False: the 24 general prompts alone.")
    focus_steps: float = Field(
        0.0, ge=0.0, le=50.0, description="How far a round's training leans toward the examples that write the "
        "kinds of step the round's first answers get wrong most (the domain's step_kinds, each written step checked "
        "against its exact value; arith: a column sum with its carry, a column that borrows, a product's column with "
        "its carry): the round's steps x batch_size examples are drawn from the set without replacement, each with "
        "weight 1 + focus_steps x the highest error rate of the kinds its reply writes (an example that writes none: "
        "1). 0 (default): the whole set, every example as likely. Needs a worked task.answer_format.")
    learnable_max: float = Field(
        1.0, ge=0.0, le=1.0, description="The learnable filter: a task whose share of right first answers (every "
        "solver, every sample) is above this is easy; its verified solver answers are kept as source 'easy' and "
        "trained only as replay (easy_fraction of the set). 1.0 (default) turns the filter off: not yet measured "
        "better. Tasks nobody solved give no answers to keep; hints and rationales (round.hints) are their path.")
    easy_fraction: float = Field(0.2, ge=0.0, le=0.9, description="Share of the training set drawn from easy "
                                 "tasks' answers when the learnable filter is on (learnable_max < 1).")
    roles: list[Literal["solver", "reviser", "critic", "judge"]] = Field(
        default_factory=lambda: ["solver", "reviser", "critic", "judge"], min_length=1,
        description="Whose examples the adapter trains on, each labelled by the verifier in the context that role "
        "sees: solver (verified answers), reviser (revisions verified right, fixes and keeps), critic (critiques "
        "after which a wrong answer was revised right; confirmations of right answers, as many), judge (verdicts "
        "on the round's answers from the verifier, as many right as wrong).")
    adapters: Literal["shared", "per-role"] = Field(
        "shared", description="shared: one LoRA trained on every role's examples serves every role. per-role: each "
        "role in train.roles trains a LoRA of its own on its own examples (the steps shared out in proportion to each "
        "role's examples; replay goes to the solver) and runs under it; the gate decides per role on that role's dev "
        "metric (solver: pass@1 and the facts; critic and reviser: the debate's right answers after revision; judge: "
        "balanced accuracy against the verifier not lower, and its verdicts on the same answers better than the judge "
        "in use's beyond noise, one-sided at eval.alpha). The proposer runs on the base model.")
    role_fallback: Literal["base", "solver"] = Field(
        "base", description="With train.adapters = 'per-role': what a role without a kept adapter of its own runs "
        "under. base: the base model. solver: the solver's adapter in use (the reviser re-solves and a computing judge "
        "works the task out: both are the solver's skill); with train.warm_start each round's critic, reviser and "
        "judge adapters start from that round's new solver adapter (trained first), and their gate compares them with "
        "the solver's in use.")
    role_steps: int | None = Field(
        None, ge=1, le=100_000, description="With train.adapters = 'per-role': the solver's adapter trains the round's "
        "steps (train.steps, or what train.epochs asks) and each other role's this many, whatever the number of its "
        "examples, so that a role with many cheap examples (the verifier's step critiques) does not take the solver's "
        "steps. None: the round's steps shared out in proportion to each role's examples.")
    joint_critic_reviser: bool = Field(
        False, description="With train.adapters = 'per-role': the critic and the reviser share one adapter, trained "
        "once on both roles' examples (train.role_steps steps, or the two roles' share of the round's) and recorded "
        "for each, so that the debate's two halves learn together as their gate judges them together, and a round "
        "trains one adapter fewer (measured offline, one such adapter on the verifier's step critiques, "
        "benchmarks/probes/step_critic.py: the majority of the first answer, its revision and the swapped judge +5.0 "
        "points). False: one adapter each.")
    targets: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="Projection modules that get LoRA weights.",
    )


class EvalSpec(_Strict):
    dev: int = Field(100, ge=1, le=100_000, description="Tasks in each level's dev set: the gate and the curriculum "
                     "read only these.")
    test: int = Field(100, ge=1, le=100_000, description="Tasks in each level's test set: nothing in the loop reads "
                      "them; swarm eval and the benchmarks report them.")
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="The gate drops a new adapter when a paired test "
                         "(exact one-sided McNemar on the same dev tasks) says it is worse than the best adapter kept "
                         "so far, or than the base model, at this significance level; it also drops one that loses "
                         "more of those tasks than it wins, significant or not.")
    bootstrap: int = Field(1000, ge=100, le=100_000, description="Bootstrap resamples for the 95% interval.")
    debate_dev: int = Field(
        40, ge=4, le=100_000, description="With train.adapters = 'per-role': this many dev tasks, shared out evenly "
        "over every level from 1 to one above the round's (each level's first), on which the debate protocol gates a "
        "new critic, reviser or judge adapter.")
    facts_lost_max: int = Field(
        2, ge=0, le=16, description="The gate drops a new adapter that answers wrong more than this many of the 16 "
        "general facts (the dev half) the base model answers right: training one skill must not erase others.")
    recall: int = Field(
        20, ge=0, le=100_000, description="The gate also scores a new adapter on this many dev tasks (each set's "
        "first) of every level below the round's that the adapter in use has learnt (eval.recall_learnt), and drops "
        "it when, against the adapter in use on them, it loses more than it wins by over eval.recall_lost_max of "
        "them: the levels learnt must not be forgotten while the next is learnt. 0: no such check.")
    recall_learnt: float = Field(
        0.8, ge=0.0, le=1.0, description="With eval.recall: a level below counts as learnt, and is guarded, when the "
        "adapter in use answers at least this share of its sample (a level it has not learnt is not: a first adapter "
        "that lifts 2-digit sums from 9% to 86% is not dropped for 1-digit sums the base model half knew).")
    recall_lost_max: float = Field(
        0.1, ge=0.0, le=1.0, description="With eval.recall: the share of the lower levels' tasks a new adapter may "
        "lose, net of those it wins, against the adapter in use.")
    recall_test: Literal["share", "paired"] = Field(
        "share", description="With eval.recall: 'share' drops a new adapter on eval.recall_lost_max alone; "
        "'paired' drops it only when that loss is also significant by the exact one-sided McNemar test at "
        "eval.alpha, so that a small sample (7 one-digit sums: none allowed) does not decide on one or two tasks.")

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: object) -> object:
        """Recipes saved with older runs: ``held_out`` sized the one held-out set (now dev and
        test alike); ``margin`` was the gate's fixed tolerance, replaced by the paired test."""
        if isinstance(data, dict) and ("held_out" in data or "margin" in data):
            data = dict(data)
            n = data.pop("held_out", None)
            data.pop("margin", None)
            if n is not None:
                data.setdefault("dev", n)
                data.setdefault("test", n)
        return data


class Recipe(_Strict):
    name: str = Field(min_length=1, max_length=80, description="Recipe name.")
    description: str = Field("", description="One line for the recipe picker.")
    seed: int = Field(0, ge=0, description="Seed for generators, sampling and training.")
    model: ModelSpec = Field(default_factory=ModelSpec)
    agents: Annotated[list[AgentSpec], Field(min_length=1, description="The swarm.")]
    task: TaskSpec = Field(default_factory=TaskSpec)
    round: RoundSpec = Field(default_factory=RoundSpec)
    prompts: PromptSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)

    @field_validator("agents")
    @classmethod
    def _unique_and_complete(cls, agents: list[AgentSpec]) -> list[AgentSpec]:
        names = [a.name for a in agents]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"agent names must be unique, repeated: {', '.join(dupes)}")
        if not any(a.role == "solver" for a in agents):
            raise ValueError("at least one agent must have role = 'solver'")
        return agents

    @field_validator("task")
    @classmethod
    def _known_domain(cls, task: TaskSpec) -> TaskSpec:
        from engine.tasks import DOMAINS

        if task.domain not in DOMAINS:
            raise ValueError(f"unknown domain {task.domain!r} (known: {', '.join(sorted(DOMAINS))})")
        return task

    @model_validator(mode="after")
    def _fits_the_domain(self) -> Recipe:
        from engine.tasks import DOMAINS

        formats = getattr(DOMAINS[self.task.domain], "formats", ("plain",))
        if self.task.answer_format not in formats:
            raise ValueError(f"task.answer_format: {self.task.answer_format!r} is not a format of the "
                             f"{self.task.domain} domain (known: {', '.join(formats)})")
        if self.round.judging == "compute" and not getattr(DOMAINS[self.task.domain], "valued", False):
            raise ValueError(f"round.judging: 'compute' needs a domain whose answers are values (arith); "
                             f"{self.task.domain!r} answers are checked otherwise: use 'verdict'")
        if self.round.critique == "steps" and not hasattr(DOMAINS[self.task.domain], "claims"):
            raise ValueError(f"round.critique: 'steps' needs a domain whose answers write out their computations "
                             f"(arith); the {self.task.domain} domain's do not: use 'text'")
        if self.round.judge_check == "steps" and not (self.round.judging == "compute" and self.task.worked
                                                      and hasattr(DOMAINS[self.task.domain], "claims")
                                                      and self.round.judge_votes == 1):
            raise ValueError("round.judge_check: 'steps' needs a computing judge (round.judging = 'compute') that "
                             "works its result out in a worked task.answer_format, in a domain whose answers write out "
                             "their computations (arith), with one result (round.judge_votes = 1)")
        if self.task.ahead_top is not None and not self.task.ahead_share:
            raise ValueError(f"task.ahead_top: {self.task.ahead_top} shares out the tasks ahead, and task.ahead_share "
                             "is 0: there are none (set task.ahead_share, or leave ahead_top out)")
        if self.task.shorter and not getattr(DOMAINS[self.task.domain], "draws_shorter", False):
            raise ValueError(f"task.shorter: the {self.task.domain} domain has no numbers of a width to draw shorter "
                             f"(arith has): leave it at 0")
        views = getattr(DOMAINS[self.task.domain], "views", ("asked",))
        if self.round.judge_view not in views:
            raise ValueError(f"round.judge_view: {self.round.judge_view!r} is not a view of the {self.task.domain} "
                             f"domain (known: {', '.join(views)})")
        if self.round.judge_view != "asked" and self.round.judging != "compute":
            raise ValueError(f"round.judge_view: {self.round.judge_view!r} needs round.judging = 'compute' (a verdict "
                             f"judge reads the answer to the task as asked)")
        if self.round.judge_agree > self.round.judge_votes:
            raise ValueError(f"round.judge_agree: {self.round.judge_agree} is more than round.judge_votes "
                             f"({self.round.judge_votes}): an answer could never be judged right")
        if self.round.judge_votes > 1 and self.round.judging != "compute":
            raise ValueError(f"round.judge_votes: {self.round.judge_votes} needs round.judging = 'compute' (a vote is "
                             f"a result the judge works out; a verdict judge gives one verdict)")
        if self.round.debate_answer in ("three-way", "majority") and self.round.judging != "compute":
            raise ValueError(f"round.debate_answer: {self.round.debate_answer!r} needs round.judging = 'compute' (the "
                             "third answer is the result the judge works out)")
        if self.round.step_spaced and self.round.step_check != "inline":
            raise ValueError("round.step_spaced: true needs round.step_check = 'inline' (the spaced form is a second "
                             "way of writing the step an inline check starts its reply with)")
        if self.round.step_plan and "steps" not in (self.round.critique, self.round.judge_check):
            raise ValueError("round.step_plan: true needs a step critic, round.critique = 'steps' or round.judge_check "
                             "= 'steps' (the plan check is one of its checks)")
        if self.round.step_columns and "steps" not in (self.round.critique, self.round.judge_check):
            raise ValueError("round.step_columns: true needs a step critic, round.critique = 'steps' or "
                             "round.judge_check = 'steps' (the column check is one of its checks)")
        if self.round.step_columns and self.task.answer_format == "split":
            raise ValueError("round.step_columns: true reads a column with its carry as one step (8+7+1=16), as the "
                             "columns format writes it; task.answer_format is 'split', which writes it as two "
                             "(8+7=15, 15+1=16): use 'columns'")
        if self.train.role_fallback != "base" and self.train.adapters != "per-role":
            raise ValueError(f"train.role_fallback: {self.train.role_fallback!r} needs train.adapters = 'per-role' "
                             "(one shared adapter serves every role)")
        if self.train.role_steps is not None and self.train.adapters != "per-role":
            raise ValueError(f"train.role_steps: {self.train.role_steps} needs train.adapters = 'per-role' (one shared "
                             "adapter trains every role's examples in the same steps)")
        if self.train.joint_critic_reviser and self.train.adapters != "per-role":
            raise ValueError("train.joint_critic_reviser needs train.adapters = 'per-role' (one shared adapter already "
                             "serves the critic and the reviser)")
        if self.train.critiques == "steps" and not self.task.worked:
            raise ValueError(f"train.critiques: 'steps' needs a worked task.answer_format (a value has no steps to "
                             f"point at; {self.task.answer_format!r} is not worked)")
        if self.train.replay_facts and not self.train.replay_fraction:
            raise ValueError("train.replay_facts: true adds fact questions to the replay, and train.replay_fraction is "
                             "0: no replay is trained on (set replay_fraction, or leave replay_facts out)")
        if self.train.focus_steps and not (self.task.worked and hasattr(DOMAINS[self.task.domain], "step_kinds")):
            raise ValueError(f"train.focus_steps: {self.train.focus_steps} needs a domain whose worked answers write out "
                             f"their steps (arith) and a worked task.answer_format ({self.task.domain}, "
                             f"{self.task.answer_format!r}): leave it at 0")
        if self.train.unsolved == "worked" and self.task.answer_format == "plain" and not hasattr(
                DOMAINS[self.task.domain], "reference_answer"):
            raise ValueError("train.unsolved: 'worked' needs a task.answer_format other than plain (the solver's "
                             "own words cannot be written for a task nobody solved), or a domain whose reference "
                             "is itself an answer (python)")
        if self.task.worked:
            # A worked answer is long: cut short it has no final answer (a 3-digit sum in columns
            # is about 30 tokens, a mixed 3-term task about 50).
            short = [a for a in self.agents if a.max_tokens < WORKED_MIN_TOKENS and (
                a.role == "solver" or (a.role == "judge" and self.round.judging == "compute"))]
            if short:
                a = short[0]
                raise ValueError(f"agents: {a.name!r} ({a.role}) has max_tokens = {a.max_tokens}, too few to write "
                                 f"an answer worked in task.answer_format {self.task.answer_format!r}: give it at "
                                 f"least {WORKED_MIN_TOKENS}")
        return self

    @model_validator(mode="after")
    def _every_role_served(self) -> Recipe:
        eps = self.model.endpoints
        if eps and all(e.roles for e in eps):
            served = {r for e in eps for r in e.roles}
            missing = sorted({a.role for a in self.agents} - served)
            if missing:
                raise ValueError(f"model.endpoints: no endpoint serves the role(s) {', '.join(missing)} "
                                 "(give one of them roles = [] or those roles)")
        return self

    def agents_with(self, role: Role) -> list[AgentSpec]:
        return [a for a in self.agents if a.role == role]


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _reason(err: dict) -> str:  # type: ignore[type-arg]
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def parse_recipe(text: str, source: str = "<recipe>") -> Recipe:
    """Validate TOML text; raises RecipeError naming ``source``, the key and the reason."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{source}: not valid TOML: {e}") from e
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        problems = [f"{source}: {_loc(err['loc'])}: {_reason(err)}" for err in e.errors()]  # type: ignore[arg-type]
        raise RecipeError("\n".join(problems)) from e


def find_recipe(name_or_path: str | None) -> Path:
    """A path as given, or a bundled recipe by name (``default`` when None)."""
    if not name_or_path:
        name_or_path = DEFAULT_RECIPE
    p = Path(name_or_path).expanduser()
    if p.suffix == ".toml" or p.exists():
        return p
    return recipes_dir() / f"{name_or_path}.toml"


def load_recipe(name_or_path: str | None = None) -> tuple[Recipe, Path, str]:
    """Load and validate a recipe by path or bundled name; returns (recipe, path, toml text)."""
    path = find_recipe(name_or_path)
    if path.is_dir():
        raise RecipeError(f"{path}: is a directory, not a recipe file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise RecipeError(f"{path}: recipe not found") from e
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"{path}: cannot read: {e}") from e
    return parse_recipe(text, str(path)), path, text


def bundled_recipes() -> list[Path]:
    """The recipes in recipes/, the default first (what the picker highlights), the others by name."""
    return sorted(recipes_dir().glob("*.toml"), key=lambda p: (p.stem != "default", p.name))
