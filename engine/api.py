"""The engine's facade: what the console and the CLI call.

    eng = Engine.open(home)            # the store (StoreError)
    run_id = eng.create_run("default", rounds=3)   # RecipeError, ModelError
    eng.subscribe(print)
    eng.play(run_id)                   # blocks; eng.stop() from another thread stops it safely
    eng.close()

``play`` loads the run's own recipe (saved with the run, so editing the file later does not
change a run in progress), the model, and plays rounds until the run's planned count. A stop
abandons the current phase unsaved and marks the run ``stopped``; ``play`` on the same run id
later resumes it where it stopped. Every failure ends the run ``failed`` with its error and
re-raises.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.compare import Replay, Side, played_with, resolve_adapter, round_tasks, some_tasks
from engine.curriculum import Plan, SkillRow, level_mix, skill_report
from engine.curriculum import plan as plan_round
from engine.errors import EngineError, StoreError
from engine.evaluate import Score, record_score, score
from engine.events import Event, EventBus, ModelNotice, RunFailed, RunFinished, RunStarted, Subscriber
from engine.models import check_gguf, resolve_model
from engine.protocol import DebateScore, debate_score, record_debate
from engine.roles import adapters_key, falls_back, roles_in_use, server
from engine.pools import ensure_pools, report_sets
from engine.paths import home_dir, store_path
from engine.recipes import Recipe, load_recipe, parse_recipe
from engine.report import Curves, curves
from engine import phases
from engine.rounds import RoundRunner, Stopped
from engine.runtime import Runtime
from engine.runtime.http import HttpRuntime
from engine.runtime.http import from_spec as http_runtime
from engine.train.runner import Trainer
from engine.store import QueryResult, Store
from engine.store.share import QueryServer, RemoteStore
from engine.tasks import get_domain
from engine.weights import choose as choose_weights


@dataclass(frozen=True)
class RunInfo:
    id: int
    recipe: Recipe
    rounds_planned: int
    status: str
    seed: int
    train: bool
    error: str | None = None  # why a failed run failed


@dataclass(frozen=True)
class SetScore:
    """One test set's score for one adapter (None: the base model)."""

    set: str
    meaning: str
    adapter_id: int | None
    score: Score
    #: the debate protocol on the same tasks (``evaluate(..., debate=True)``; not for the facts)
    debate: DebateScore | None = None


class Engine:
    """One data dir's store, a lazily loaded model runtime, and the event bus."""

    def __init__(self, store: Store | RemoteStore, home: Path, *, serve: bool = False) -> None:
        self.store: Store = store  # type: ignore[assignment]  # a RemoteStore reads alike and refuses writes
        self.home = home
        self.bus = EventBus()
        self._runtime: Runtime | HttpRuntime | None = None
        self._runtime_key: tuple[object, ...] | None = None
        self._trainer: Trainer | None = None  # the playing run's warm training worker
        self._stop = threading.Event()
        self._server: QueryServer | None = None
        self.share_error: str | None = None  # why other processes cannot query this store, if they cannot
        if serve and isinstance(store, Store):
            try:
                self._server = QueryServer(store).start()
            except (OSError, StoreError) as e:  # the store still works here, only not shared
                self.share_error = str(e)

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, *, read_only_ok: bool = False) -> Engine:
        """Open the data dir's store (creating it) and answer other processes' read-only queries on
        its socket (``engine.store.share``). When another process holds the store, ``read_only_ok``
        gives a read-only engine onto it through that process (``read_only``); otherwise, or when
        the holder does not answer, StoreError."""
        h = home_dir(home)
        path = store_path(h)
        try:
            return cls(Store.open(path), h, serve=True)
        except StoreError as e:
            if not read_only_ok or "in use by another process" not in str(e):
                raise
            return cls(RemoteStore.connect(path), h)

    @property
    def read_only(self) -> bool:
        """True when another process holds the store and this engine only reads through it."""
        return isinstance(self.store, RemoteStore)

    @property
    def holder(self) -> dict[str, object] | None:
        """For a read-only engine, what the holding process says of itself (pid, running runs)."""
        return self.store.hello() if isinstance(self.store, RemoteStore) else None

    def close(self) -> None:
        if self._trainer is not None:
            self._trainer.close()
            self._trainer = None
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None
        if self._server is not None:
            self._server.close()
            self._server = None
        self.store.close()

    def subscribe(self, fn: Subscriber) -> object:
        return self.bus.subscribe(fn)

    def emit(self, event: Event) -> None:
        self.bus.emit(event)

    def query(self, sql: str, params: list[object] | None = None, limit: int | None = None) -> QueryResult:
        """Read-only SQL on the store (writes raise StoreError). Safe from any thread."""
        return self.store.query(sql, params, limit)

    def use_adapter(self, adapter_id: int | None, run_id: int | None = None) -> None:
        """Promote an adapter by hand (later ones of its run serving the same role step back; one
        trained for the critic and the reviser together, for both), or with None roll the run
        (default: the latest with adapters) back to the base model for every role; swaps it in if
        loaded."""
        q = self.store.execute
        if adapter_id is not None:
            row = q("select run_id, path from adapters where id = ?", [adapter_id])
            if not row:
                raise StoreError(f"no adapter {adapter_id}")
            run_id, path = int(row[0][0]), str(row[0][1])
            # one training serves several roles with train.joint_critic_reviser: one row each
            ids = [int(r[0]) for r in q("select id from adapters where run_id = ? and training_run_id = "
                                        "(select training_run_id from adapters where id = ?) order by id",
                                        [run_id, adapter_id])]  # the adapter's own row among them
            with self.store.transaction():
                for aid in ids:
                    q("update adapters set promoted = false where run_id = ? and id > ? and role is not distinct "
                      "from (select role from adapters where id = ?)", [run_id, aid, aid])
                    q("update adapters set promoted = true, decision = coalesce(decision, '') || ' (promoted by hand)' "
                      "where id = ? and not promoted", [aid])
        else:
            if run_id is None:
                latest = q("select max(run_id) from adapters")
                run_id = int(latest[0][0]) if latest and latest[0][0] is not None else None
            if run_id is not None:
                q("update adapters set promoted = false where run_id = ?", [run_id])
            path = None
        if self._runtime is not None:
            self._runtime.set_adapter(path).result()

    def stop(self) -> None:
        """Ask the playing run to stop at the next safe point (any thread)."""
        self._stop.set()

    # -- runs ----------------------------------------------------------------------------------

    def create_run(self, recipe: str | None = None, rounds: int = 1, train: bool | None = None, seed: int | None = None) -> int:
        """Record a new run of ``recipe`` (name or path) with its dev and test sets for every level
        it can reach. Raises RecipeError, ModelError."""
        rec, path, text = load_recipe(recipe)
        model = resolve_model(rec.model.path)
        check_gguf(model)
        seed = rec.seed if seed is None else seed
        run_id = self.store.allocate_ids("runs", 1)[0]
        train_flag = rec.train.enabled if train is None else train
        with self.store.transaction():
            self.store.insert("runs", [dict(
                id=run_id, recipe_name=rec.name, recipe_path=str(path), recipe_toml=text, model_path=str(model),
                model_sha256=None, seed=seed, rounds_planned=rounds, settings={"train": train_flag},
                status="created", error=None,
            )])
            self.store.insert("agents", [dict(
                run_id=run_id, name=a.name, role=a.role, system_prompt=a.system,
                sampling=dict(temperature=a.temperature, top_k=a.top_k, top_p=a.top_p, min_p=a.min_p, max_tokens=a.max_tokens),
            ) for a in rec.agents])
        ensure_pools(self.store, run_id, rec, seed)
        return run_id

    def run_info(self, run_id: int) -> RunInfo:
        row = self.store.execute(
            "select recipe_toml, recipe_path, rounds_planned, status, seed, settings, error from runs where id = ?",
            [run_id])
        if not row:
            raise StoreError(f"no run {run_id} in {self.store.path}")
        toml, path, planned, status, seed, settings, error = row[0]
        flags = json.loads(settings) if settings else {}
        return RunInfo(run_id, parse_recipe(toml, f"{path} (saved with run {run_id})"), int(planned), status, int(seed),
                       bool(flags.get("train", True)), error)

    def skills(self, run_id: int) -> list[SkillRow]:
        """Each skill's latest pass rates in a run (dev sets and the round's first answers) and how
        they moved since the round before, weakest first."""
        row = self.store.execute("select any_value(domain) from tasks where run_id = ? and round is not null", [run_id])
        name = row[0][0] if row and row[0][0] else self.run_info(run_id).recipe.task.domain
        return skill_report(self.store, run_id, get_domain(name))

    def curriculum(self, run_id: int) -> list[tuple[int, int, dict[str, int], str, float | None]]:
        """Per round: (round, main level, generated tasks per level, why, dev score after it)."""
        rows = self.store.execute("select round, difficulty, mix, curriculum, dev_score from rounds where run_id = ? "
                                  "order by round", [run_id])
        return [(int(r), int(lvl), json.loads(mix) if mix else {}, why or "", dev) for r, lvl, mix, why, dev in rows]

    def curves(self, run_id: int) -> Curves:
        """A run's curves as recorded: loss per step, dev and test accuracy per round, the judge
        and the debate per round, skill pass rates per round (engine.report)."""
        return curves(self.store, run_id)

    def latest_run(self) -> int | None:
        row = self.store.execute("select max(id) from runs")
        return int(row[0][0]) if row and row[0][0] is not None else None

    def latest_unfinished(self, recipe_name: str | None = None) -> int | None:
        sql, params = "select max(id) from runs where status <> 'finished'", []
        if recipe_name is not None:
            sql += " and recipe_name = ?"
            params.append(recipe_name)
        row = self.store.execute(sql, params)
        return int(row[0][0]) if row and row[0][0] is not None else None

    def runtime_for(self, rec: Recipe, run_id: int | None = None) -> Runtime | HttpRuntime:
        """The loaded model for a recipe (reused while the model settings stay the same).

        The weights served follow ``model.weights`` (engine.weights); for a run, the type it was
        first played with is recorded in its settings and kept on every later play, resume,
        evaluation or replay, so a run never changes weights halfway. Raises ModelError."""
        m = rec.model
        src = resolve_model(m.path)
        spec = m.weights
        if m.backend == "openai" and not any(e.launch for e in m.endpoints):
            spec = "as-is"  # servers swarm did not start serve their own file: train against the recipe's
        settings: dict[str, object] = {}
        if run_id is not None:
            row = self.store.execute("select settings from runs where id = ?", [run_id])
            settings = json.loads(row[0][0]) if row and row[0][0] else {}
            recorded = settings.get("weights")
            if isinstance(recorded, dict) and recorded.get("source") == str(src):
                spec = "as-is" if recorded["path"] == str(src) else str(recorded["type"])
        choice = choose_weights(src, spec, self.home, n_parallel=m.n_parallel, n_threads=m.n_threads,
                                gpu_layers=m.gpu_layers, log=lambda text: self.emit(ModelNotice(run_id or 0, text)))
        if run_id is not None and "weights" not in settings and not self.read_only:
            settings["weights"] = choice.record()
            self.store.execute("update runs set settings = ? where id = ?", [json.dumps(settings), run_id])
            self.emit(ModelNotice(run_id, f"serving {choice.type} weights: {choice.reason}"))
        key = (str(choice.path), m.n_ctx, m.n_parallel, m.n_batch, m.n_threads, m.prefix_cache, m.gpu_layers,
               m.backend, tuple(m.endpoints), m.adapter_dir, m.wait_down)
        if self._runtime is None or self._runtime_key != key:
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None
            if m.backend == "openai":
                rt = self._runtime = http_runtime(m, choice.path, self.home)
                self.emit(ModelNotice(run_id or 0, "agents on " + ", ".join(
                    f"{e.name} ({e.slots} slots{', ' + '/'.join(sorted(e.roles)) if e.roles else ''})"
                    for e in rt.endpoints)))
            else:
                self._runtime = Runtime(choice.path, n_ctx=m.n_ctx, n_parallel=m.n_parallel, n_batch=m.n_batch,
                                        n_threads=m.n_threads, prefix_cache=m.prefix_cache, gpu_layers=m.gpu_layers)
            self._runtime_key = key
        return self._runtime

    def train_now(self, run_id: int) -> None:
        """Train, export, evaluate and gate on the run's data so far, between rounds (the console's
        "train now"). Uses the latest complete round's number and difficulty. Raises EngineError."""
        self._stop.clear()
        info = self.run_info(run_id)
        row = self.store.execute(
            "select round, difficulty from rounds where run_id = ? and status = 'complete' order by round desc limit 1",
            [run_id])
        if not row:
            raise EngineError(f"run {run_id} has no complete round to train on yet")
        rnd, difficulty = int(row[0][0]), int(row[0][1])
        rt = self.runtime_for(info.recipe, run_id)
        runner = RoundRunner(self.store, rt, info.recipe, run_id, info.seed, self.bus, self._stop, train=True,
                             workdir=self.home / "runs" / str(run_id) / "on-demand", home=self.home)
        runner.marking = False
        try:
            phases.train.run(runner, rnd, difficulty, {})
            phases.evaluate.run(runner, rnd, difficulty, {})
        except Stopped:
            return

    def evaluate(self, run_id: int, adapter: int | str | None = "in-use", levels: list[int] | None = None,
                 sets: list[str] | None = None, debate: bool = False) -> list[SetScore]:
        """Score an adapter of the run (an id, ``"in-use"``, or ``"base"``/None) on the run's test
        sets (every level, or ``levels``; ``sets`` picks by name, e.g. ``test-2`` or
        ``imported:mini``), record the scores, and return them. The loop never reads these.
        ``debate`` also plays the debate protocol on each task set (``engine.protocol``).
        Raises EngineError for an unknown run, adapter or set."""
        info = self.run_info(run_id)
        q = self.store.execute
        adapter_id, path, sha = resolve_adapter(self.store, run_id, adapter)
        chosen = report_sets(self.store, run_id, info.recipe, levels)
        if sets:
            missing = [s for s in sets if s not in chosen]
            if missing:
                raise EngineError(f"run {run_id} has no test set {', '.join(missing)} (it has: {', '.join(chosen)})")
            chosen = {k: v for k, v in chosen.items() if k in sets}
        if not chosen:
            raise EngineError(f"run {run_id} has no test sets" + (f" at levels {levels}" if levels else ""))
        rt = self.runtime_for(info.recipe, run_id)
        before = rt.adapter
        rt.set_adapter(path, sha256=sha).result()
        # The debate of the adapters in use: per role, each role under its own (engine.roles).
        roles = roles_in_use(self.store, run_id, falls_back(info.recipe)) if adapter == "in-use" else {}
        roles_key = adapters_key(roles)
        serve = server(rt, roles) if roles_key else None
        rnd = q("select coalesce(max(round), 0) from rounds where run_id = ?", [run_id])[0][0]
        domain = get_domain(info.recipe.task.domain)
        out = []
        try:
            for name, tasks in chosen.items():
                if serve is not None:
                    serve("solver")
                sc, texts = score(rt, info.recipe, tasks, seed=info.seed)
                deb = debate_score(rt, info.recipe, tasks, texts, serve=serve) \
                    if debate and name != "facts-test" else None
                with self.store.transaction():
                    record_score(self.store, run_id, int(rnd), adapter_id, name, "test", sc, texts)
                    if deb is not None:
                        record_debate(self.store, run_id, int(rnd), adapter_id, name, "test", deb, roles_key)
                level = int(name.split("-", 1)[1]) if name.startswith("test-") else None
                meaning = domain.level_name(level) if level else ("general facts" if name == "facts-test" else name)
                out.append(SetScore(name, meaning, adapter_id, sc, deb))
        finally:
            rt.set_adapter(before).result()
        return out

    def replay(self, run_id: int, round: int | None = None, *, set: str | None = None,
               tasks: list[int] | None = None, adapter: int | str | None = "in-use",
               against: int | str | None = "played") -> Replay:
        """Play the same tasks again under two adapters with the debate protocol and compare them
        task by task (``engine.compare``): a past ``round``'s tasks, a test ``set`` (by name), or
        some ``tasks`` (ids). ``against`` defaults to the adapter the round played with (tasks of one
        round: that round's; a test set or tasks of several rounds: the base model); ``adapter`` to the run's adapter in use. Both are recorded in
        ``debate_evals`` with pool 'replay'. Raises EngineError for unknown runs, rounds, sets,
        tasks or adapters."""
        info = self.run_info(run_id)
        if [round is not None, set is not None, bool(tasks)].count(True) != 1:
            raise EngineError("replay one thing: a round, a test set or some tasks")
        if round is not None:
            chosen, what, rnd = round_tasks(self.store, run_id, round), f"round {round}", round
        elif set is not None:
            sets = report_sets(self.store, run_id, info.recipe)
            if set not in sets:
                raise EngineError(f"run {run_id} has no test set {set} (it has: {', '.join(sets)})")
            chosen, what, rnd = sets[set], set, None
        else:
            chosen = some_tasks(self.store, run_id, list(tasks or []))
            what = "task " + ", ".join(str(t.id) for t in chosen)
            rounds = {r for (r,) in self.store.execute(
                f"select distinct round from tasks where id in ({', '.join('?' for _ in chosen)})", [t.id for t in chosen])}
            rnd = rounds.pop() if len(rounds) == 1 else None  # tasks of one round: against what it played with
        if against == "played":
            against = played_with(self.store, run_id, rnd) if rnd is not None else None
        sides = [resolve_adapter(self.store, run_id, against), resolve_adapter(self.store, run_id, adapter)]
        rt = self.runtime_for(info.recipe, run_id)
        now = self.store.execute("select coalesce(max(round), 0) from rounds where run_id = ?", [run_id])[0][0]
        before = rt.adapter
        scores = []
        try:
            for adapter_id, path, sha in sides:
                rt.set_adapter(path, sha256=sha).result()
                scores.append(debate_score(rt, info.recipe, chosen))
        finally:
            rt.set_adapter(before).result()
        with self.store.transaction():
            for (adapter_id, _p, _s), sc in zip(sides, scores):
                record_debate(self.store, run_id, int(rnd if rnd is not None else now), adapter_id,
                              f"replay:{what.replace(' ', '-')}", "replay", sc)
        return Replay(run_id, what, chosen, Side(sides[0][0], scores[0]), Side(sides[1][0], scores[1]))

    def _set_status(self, run_id: int, status: str, error: str | None = None) -> None:
        self.store.execute("update runs set status = ?, error = ?, updated_at = current_timestamp where id = ?",
                           [status, error, run_id])

    def play(self, run_id: int, *, rounds: int | None = None, step: bool = False) -> str:
        """Play the run's remaining rounds; returns the final status (finished or stopped).

        ``rounds`` changes the planned count; ``step`` plays one phase and stops. Raises EngineError subclasses on failure (the
        run is marked failed first).
        """
        self._stop.clear()
        info = self.run_info(run_id)
        if rounds is not None and rounds != info.rounds_planned:
            self.store.execute("update runs set rounds_planned = ? where id = ?", [rounds, run_id])
            info = self.run_info(run_id)
        resumed = info.status != "created"
        self._set_status(run_id, "running")
        self.emit(RunStarted(run_id, info.recipe.name, info.rounds_planned, resumed))
        try:
            ensure_pools(self.store, run_id, info.recipe, info.seed)  # a run from before pools existed
            rt = self.runtime_for(info.recipe, run_id)
            runner = RoundRunner(self.store, rt, info.recipe, run_id, info.seed, self.bus, self._stop,
                                 train=info.train, workdir=self.home / "runs" / str(run_id), home=self.home)
            runner.single_phase = step
            if info.train and info.recipe.train.warm_worker:
                runner.trainer = self._trainer = Trainer(self.home / "runs" / str(run_id) / "trainer.log")
            _, adapter = runner.current_adapter()
            if not rt.serves(adapter):
                rt.set_adapter(adapter).result()  # resume on the adapter the run had promoted
            while True:
                done = self.store.execute(
                    "select count(*) from rounds where run_id = ? and status = 'complete'", [run_id])[0][0]
                if done >= info.rounds_planned:
                    break
                rnd = int(done)
                runner.play(rnd, self._plan(run_id, rnd, info.recipe))
            self._set_status(run_id, "finished")
            self.emit(RunFinished(run_id, "finished"))
            return "finished"
        except Stopped:
            self._set_status(run_id, "stopped")
            self.emit(RunFinished(run_id, "stopped"))
            return "stopped"
        except EngineError as e:
            self._set_status(run_id, "failed", str(e))
            self.emit(RunFailed(run_id, str(e)))
            raise
        except Exception as e:
            self._set_status(run_id, "failed", f"{type(e).__name__}: {e}")
            self.emit(RunFailed(run_id, f"{type(e).__name__}: {e}"))
            raise
        finally:  # the warm trainer dies with the run's play
            if self._trainer is not None:
                self._trainer.close()
                self._trainer = None

    def _plan(self, run_id: int, rnd: int, rec: Recipe) -> Plan:
        """A round already begun keeps its level and mix; a new one is planned by the curriculum
        (engine.curriculum) from the dev scores of earlier rounds. Test sets are never read."""
        row = self.store.execute("select difficulty, mix, curriculum from rounds where run_id = ? and round = ?",
                                 [run_id, rnd])
        if row:
            level, mix, why = int(row[0][0]), row[0][1], row[0][2]
            return Plan(level, {int(k): int(v) for k, v in json.loads(mix).items()} if mix else
                        level_mix(level, rec.task.generated, rec.task), why or "")
        return plan_round(self.store, run_id, rnd, rec)


__all__ = ["Engine", "EngineError", "RunInfo", "SetScore"]
