"""The `swarm` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from console.cli import main
from tests.conftest import small_recipe


def swarm(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_doctor_reports_the_default_model() -> None:
    r = swarm("doctor", "--quick")
    assert r.returncode == 0, r.stderr
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in r.stdout
    assert "llama-cpp-python" in r.stdout and "schema version" in r.stdout
    assert "sandbox" in r.stdout and "isolation" in r.stdout
    assert "cpu buffers" in r.stdout and ("in use: " in r.stdout or "off: " in r.stdout)  # the AMX probe's word
    assert "the loop can run" in r.stdout


def test_doctor_fails_on_a_bad_model(tmp_path: Path) -> None:
    bad = tmp_path / "m.gguf"
    bad.write_bytes(b"nope")
    r = swarm("doctor", "--quick", "--model", str(bad))
    assert r.returncode == 1 and "not a GGUF file" in r.stdout


def test_sql(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select 1 as one"]) == 0
    assert "| one |" in capsys.readouterr().out
    assert main(["sql", "select 1 as a, 'x' as b", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip() == "a,b\n1,x"
    assert main(["sql", "select 2 as n", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 2}]


def test_skills_lists_the_curriculum_and_the_weakest_skills_first(capsys: pytest.CaptureFixture[str]) -> None:
    from engine.api import Engine
    from tests.fixed_data import populate

    assert main(["skills"]) == 1  # no runs yet
    eng = Engine.open()
    populate(eng)
    eng.close()
    assert main(["skills"]) == 0
    out = capsys.readouterr().out
    assert "round 0 starts at the recipe's level 2" in out and "L2:18 L3:6" in out
    assert out.index("carries:2") < out.index("digits:3") < out.index("carries:0")  # weakest first
    assert main(["skills", "1", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run"] == 1 and data["curriculum"][0]["level"] == 2 and data["curriculum"][0]["dev_score"] == 0.42
    assert data["curriculum"][0]["mix"] == {"2": 18, "3": 6}
    assert data["skills"][0] == {"skill": "carries:2", "words": "2 carries", "dev": 1 / 9, "dev_change": None,
                                 "dev_n": 9, "round": None, "round_change": None, "round_n": 0}


def test_run_progress_has_totals_bars_and_time_left() -> None:
    import io

    from console.progress import Progress
    from engine import events as ev

    for live in (False, True):
        out = io.StringIO()
        p = Progress(out, live=live)
        p(ev.RunStarted(1, "default", 1))
        p(ev.RoundStarted(1, 0, 2))
        p(ev.PhaseStarted(1, 0, "solve"))
        p(ev.PhaseProgress(1, 0, "solve", 0, 48))
        if live:
            assert p.bars is not None and p.phase_task is not None
            task = p.bars.tasks[p.phase_task]
            p(ev.PhaseProgress(1, 0, "solve", 12, 48, 600))
            assert (task.completed, task.total) == (12, 48) and "tok/s" in task.fields["tps"]
            assert p.bars.tasks[p.round_task].total == 9  # the round's phases  # type: ignore[index]
        p(ev.PhaseProgress(1, 0, "solve", 48, 48, 2400))
        p(ev.PhaseFinished(1, 0, "solve", 3.5))
        p(ev.RoundFinished(1, 0, {"tasks": 6.0}))
        p(ev.RunFinished(1, "finished"))
        text = out.getvalue()
        assert "solve    done in    3.5 s, 48 requests, 2400 tokens" in text and "run 1: finished" in text
        assert p.bars is None  # stopped with the round


def test_sql_refuses_writes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "delete from runs"]) == 1
    assert "refused" in capsys.readouterr().err


def test_recipes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes"]) == 0
    assert "default.toml" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 1\n")
    assert main(["recipes", str(bad)]) == 1
    assert f"{bad}: name:" in capsys.readouterr().out


def test_sandbox_run_prints_json(tmp_path: Path) -> None:
    f = tmp_path / "loop.py"
    f.write_text("while True: pass\n")
    r = swarm("sandbox", "run", str(f), "--timeout", "1")
    assert r.returncode == 0
    assert json.loads(r.stdout)["status"] == "timeout"


def test_run_and_resume_on_tiny_model(tmp_path: Path, tiny_recipe: Path) -> None:
    r = swarm("run", str(tiny_recipe), "--rounds", "1", "--no-train")
    assert r.returncode == 0, r.stderr
    assert "round 0 summary" in r.stderr and "run 1: finished" in r.stderr
    r = swarm("sql", "select count(*) as n from attempts", "--format", "json")
    assert json.loads(r.stdout)[0]["n"] > 0
    r = swarm("run", "--resume")
    assert r.returncode == 1 and "no unfinished run" in r.stderr


@pytest.mark.slow
def test_end_to_end_round_on_the_real_default_model(tmp_path: Path) -> None:
    recipe = small_recipe(tmp_path, "builtin:smollm2-135m")
    r = swarm("run", str(recipe), "--rounds", "1", "--no-train", timeout=900)
    assert r.returncode == 0, r.stderr
    q = "select (select count(*) from tasks where round = 0) t, (select count(*) from attempts) a, " \
        "(select count(*) from critiques) c, (select count(*) from verdicts) v, " \
        "(select count(*) from attempts where status is null or correct is null) unverified"
    row = json.loads(swarm("sql", q, "--format", "json").stdout)[0]
    assert row["t"] == 6 and row["a"] > 0 and row["c"] > 0 and row["v"] > 0
    assert row["unverified"] == 0  # the verifier judged every answer


def test_ctrl_c_stops_at_a_safe_point_and_resume_finishes(tiny_recipe: Path) -> None:
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "run", str(tiny_recipe), "--rounds", "3", "--no-train"],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip().startswith("solve") and "done" in line:
            break  # round 0 is past its solve phase: interrupt it mid-round
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 0
    assert "stopping at a safe point" in rest and "swarm run --resume 1" in rest
    status = json.loads(swarm("sql", "select status from runs", "--format", "json").stdout)[0]["status"]
    assert status == "stopped"
    r = swarm("run", "--resume")
    assert r.returncode == 0 and "resuming" in r.stderr and "run 1: finished" in r.stderr
    rounds = json.loads(swarm("sql", "select count(*) n from rounds where status = 'complete'", "--format", "json").stdout)
    assert rounds[0]["n"] == 3


def test_eval_scores_the_test_sets_and_records_them(tmp_path: Path, tiny_model: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from engine.api import Engine

    def swarm_sql(query: str) -> str:
        assert main(["sql", query, "--format", "json"]) == 0
        return capsys.readouterr().out

    recipe = small_recipe(tmp_path, tiny_model)
    eng = Engine.open()
    run_id = eng.create_run(str(recipe), rounds=1, train=False)
    eng.close()
    assert main(["eval", str(run_id), "--level", "2", "--level", "3"]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}, base model, test sets" in out  # no adapter yet: in-use is the base
    assert "test-2" in out and "2-digit addition" in out and "test-3" in out and "3-digit addition" in out
    assert "test-1" not in out and "facts-test" in out and "general facts" in out
    assert main(["eval", "--set", "test-4", "--adapter", "base", "--format", "json"]) == 0  # the latest run
    rows = json.loads(capsys.readouterr().out)
    assert [r["set"] for r in rows] == ["test-4"] and rows[0]["n"] == 6 and 0 <= rows[0]["accuracy"] <= 1
    assert main(["sql", "select pool, eval_set, n from evals order by id", "--format", "csv"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[1:] == [
        "test,test-2,6", "test,test-3,6", "test,facts-test,16", "test,test-4,6"]
    assert main(["eval", str(run_id), "--set", "test-2", "--debate", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["set"] == "test-2" and 0 <= row["after debate"] <= 1 and -1 <= row["gain"] <= 1
    deb = json.loads(swarm_sql("select n, first_correct, final_correct, judge_tp + judge_tn + judge_fp + judge_fn j, "
                               "(select count(*) from debate_eval_answers) traces from debate_evals"))
    assert len(deb) == 1 and deb[0]["n"] == 6 == deb[0]["traces"] and 6 <= deb[0]["j"] <= 12
    assert deb[0]["final_correct"] / 6 == pytest.approx(row["after debate"], abs=1e-4)
    assert main(["eval", str(run_id), "--set", "dev-2"]) == 1  # dev sets are the gate's, not a report's
    assert "has no test set dev-2" in capsys.readouterr().err
    assert main(["eval", str(run_id), "--adapter", "99"]) == 1
    assert f"run {run_id} has no adapter 99" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--test-only"], ["--measure-every", "2"], ["--seeds", "7"], ["--keep", "kept"]])
def test_bench_refuses_improve_options_for_another_benchmark(flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "store", *flag]) == 2
    assert "are options of 'swarm bench improve'" in capsys.readouterr().err
