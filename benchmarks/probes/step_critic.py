"""Offline: can a critic trained on ground truth find a worked answer's first wrong step, and a
reviser trained on the same ground truth fix the answer from there, so that the debate adds
what the solver's first answer lacks?

From a finished run's store: every train-pool first answer of every round, wrong ones with the
critique a critic that knows the verified worked answer would write (``step_critique``: its
first wrong step and the right one) and the worked answer as the revision, right ones, as many of each
with a confirmation and the answer kept. One adapter trained on those (warm-started from the
adapter the run has in use, the recipe's steps) serves the critic and the reviser; the solver
and the judge stay on the run's adapter. The debate protocol on the run's test sets, before
(every role on the run's adapter) and after; the critic's critiques of wrong first answers
scored against the step the verified answer names.

A one-off probe, kept as it ran (2026-12-04) on a copy of the home of the improve benchmark's seed-7
look-ahead run (``improve-columns-ahead-seed7-partial.json``; its adapter in use, round 3's):
``PYTHONPATH=. python benchmarks/probes/step_critic.py HOME 2,3,9 60`` (as many right answers as
wrong: 323 each; the rows: ``benchmarks/results/probe-step-critic-balanced-seed7-round3.json``) and
``ALL_FIXES=1 ... HOME 2,3,9 120`` (every wrong answer, 1,770; ``probe-step-critic-all-seed7-round3.json``),
about 12 and 25 minutes.
Usage: step_critic.py HOME LEVELS [STEPS [LORA]]   (writes $OUT, default /tmp/bench/step-critic.json;
LORA: weights this probe trained before, exported instead of training again)"""
import json, os, random, sys, time
from pathlib import Path

from benchmarks.probes.common import open_copy
from engine.agents import fill
from engine.pools import pool_tasks
from engine.protocol import debate_score
from engine.roles import in_use
from engine.tasks.arith import extract_answer, worked
from engine.tasks.common import first_wrong_step, step_critique
from engine.train.dataset import confirmation, role_messages
from engine.train.runner import TrainConfig, train_lora

src, levels = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else None
home, eng, run_id, rec, dom = open_copy(src)
fmt = rec.task.answer_format
aid, apath, asha = in_use(eng.store, run_id)
apath = str(home / Path(apath).relative_to(Path(apath).parents[4]))  # the copy's own file
print("adapter in use:", aid, apath, flush=True)
p = rec.prompts
critic, solver = rec.agents_with("critic")[0], rec.agents_with("solver")[0]

rows = eng.store.execute(
    "select t.id, t.prompt, t.payload, a.text, a.correct from attempts a join tasks t on t.id = a.task_id "
    "where a.run_id = ? and a.turn = 0 and coalesce(t.pool, 'train') = 'train' and not t.held_out "
    "and length(trim(a.text)) > 0 order by a.id", [run_id])
fixes, keeps, seen = [], [], set()
for tid, prompt, payload, text, ok in rows:
    if (tid, text.strip()) in seen:
        continue
    seen.add((tid, text.strip()))
    right = worked(json.loads(payload)["expression"], fmt)
    if ok:
        keeps.append((prompt, text.strip(), None, right))
    else:
        crit = step_critique(text, right)
        if crit is not None:
            fixes.append((prompt, text.strip(), crit, right))
rng = random.Random(7)
rng.shuffle(keeps)
rng.shuffle(fixes)
if not os.environ.get("ALL_FIXES"):  # ALL_FIXES=1: every wrong answer's critique, however few the right ones
    fixes, keeps = fixes[:len(keeps)], keeps[:len(fixes)]  # as many of each
examples = []
for prompt, text, crit, right in fixes:
    examples.append(role_messages(rec, critic, fill(p.critique, {"task": prompt, "answer": text}))
                    + [{"role": "assistant", "content": crit}])
    examples.append(role_messages(rec, solver, fill(p.revise, {"task": prompt, "answer": text, "critique": crit}))
                    + [{"role": "assistant", "content": right}])
for prompt, text, _c, right in keeps:
    conf = confirmation(extract_answer(text) or "")
    examples.append(role_messages(rec, critic, fill(p.critique, {"task": prompt, "answer": text}))
                    + [{"role": "assistant", "content": conf}])
    examples.append(role_messages(rec, solver, fill(p.revise, {"task": prompt, "answer": text, "critique": conf}))
                    + [{"role": "assistant", "content": text}])
rng.shuffle(examples)
print(f"{len(fixes)} wrong first answers with a step critique, {len(keeps)} right ones kept; "
      f"{len(examples)} examples", flush=True)

rt = eng.runtime_for(rec, run_id)
spec = rec.train if steps is None else rec.train.model_copy(update={"steps": steps})
checks = [rt.chat.render(role_messages(rec, critic, fill(p.critique, {"task": q, "answer": a}))) for q, a, _c, _r in fixes[:3]]
cfg = TrainConfig(home=home, gguf=rt.path, workdir=home / "probe-critic", spec=spec, seed=7, check_prompts=checks,
                  init_lora=Path(apath).with_name("lora.npz"))
t0 = time.time()
if len(sys.argv) > 4:  # LoRA weights this probe trained before: export them only
    from engine.train.runner import EXPORT_COSINE_MIN, run_worker
    cfg.workdir.mkdir(parents=True)
    log = cfg.workdir / "worker.log"
    prep = run_worker("prepare", {"home": str(home), "gguf": str(rt.path)}, log)
    exp = run_worker("export", {"base_dir": prep["base_dir"], "gguf": str(rt.path), "lora": sys.argv[4],
                                "out": str(cfg.workdir / "adapter.gguf"), "alpha": spec.alpha, "rank": spec.rank,
                                "targets": list(spec.targets), "prompts": checks, "threshold": EXPORT_COSINE_MIN}, log)
    critic_adapter, train_seconds = exp["path"], None
    print(f"exported {sys.argv[4]} (cosine {exp['cosine']:.4f})", flush=True)
else:
    out = train_lora(cfg, examples)
    print(f"trained {out.steps} steps on {out.backend} in {time.time() - t0:.0f}s, final loss {out.loss_curve[-1]:.3f}",
          flush=True)
    critic_adapter, train_seconds = str(out.adapter_path), out.seconds


def serve_map(crit_path):
    m = {"solver": apath, "judge": apath, "critic": crit_path, "reviser": crit_path}

    def serve(role):
        if not rt.serves(m[role]):
            rt.set_adapter(m[role]).result()
    return serve


result = {"adapter": apath, "critic_adapter": critic_adapter, "n_fix": len(fixes), "n_keep": len(keeps),
          "train_seconds": train_seconds, "levels": {}}
for lvl in levels:
    tasks = pool_tasks(eng.store, run_id, "test", lvl)
    t0 = time.time()
    before = debate_score(rt, rec, tasks, serve=serve_map(apath))
    firsts = [before.traces[tr.id].first for tr in tasks]
    after = debate_score(rt, rec, tasks, first_texts=firsts, serve=serve_map(critic_adapter))
    located = named = 0
    for tr in tasks:
        t = after.traces[tr.id]
        if t.first_right:
            continue
        right = dom.worked(tr.task, fmt)
        found = first_wrong_step(t.first, right)
        if found is None or not found[0]:
            continue
        located += 1
        named += bool(t.critique and t.critique.strip() == step_critique(t.first, right))
    confirmed = sum(1 for tr in tasks if after.traces[tr.id].first_right
                    and (after.traces[tr.id].critique or "").startswith("The answer"))
    result["levels"][lvl] = {"before": before.summary(), "after": after.summary(), "located": located,
                             "critique_exact": named, "right_confirmed": confirmed, "n_right": before.first,
                             "rows": [{"task": tr.task.prompt, **after.traces[tr.id]._asdict()} for tr in tasks]}
    b, a = before.summary(), after.summary()
    print(f"level {lvl} ({time.time() - t0:.0f}s): first {b['first']:.3f}; revised before {b['revised']['final']:.3f} "
          f"after {a['revised']['final']:.3f}; judged before {b['final']:.3f} after {a['final']:.3f}; "
          f"three-way before {b['three_way']['final']:.3f} after {a['three_way']['final']:.3f}; "
          f"critic exact on {named}/{located} wrong answers with a wrong step; right confirmed {confirmed}/{before.first}",
          flush=True)
json.dump(result, open(os.environ.get("OUT", "/tmp/bench/step-critic.json"), "w"), indent=0, default=str)
