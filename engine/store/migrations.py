"""The store's schema, all of it, as append-only migrations.

Each migration is a name, a reason and SQL. They are applied in order by ``Store.open`` and
recorded in ``schema_migrations``; a database that records a version this code does not know
is refused (it was written by a newer swarm). Never edit a released migration: append one.

Every row carries its ``run_id`` and ``round`` so a run can be inspected, exported or
resumed on its own. Ids are BIGINTs drawn from one sequence per table; the engine allocates
them before writing so related rows (an attempt and its critique) can be written in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    why: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "m001_init",
        "The loop's record: runs and rounds, the agents, every task (kept or rejected), every "
        "attempt, critique and verdict, the training set, training runs, adapters and evals.",
        """
        CREATE SEQUENCE seq_runs START 1;
        CREATE TABLE runs (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_runs'),
            recipe_name TEXT NOT NULL,
            recipe_path TEXT,
            recipe_toml TEXT NOT NULL,
            model_path TEXT NOT NULL,
            model_sha256 TEXT,
            seed BIGINT NOT NULL,
            rounds_planned INTEGER NOT NULL,
            settings JSON NOT NULL,          -- run flags chosen at creation (train, ...)
            status TEXT NOT NULL,            -- created | running | stopped | finished | failed
            error TEXT,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE rounds (
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            status TEXT NOT NULL,            -- running | complete
            phase TEXT,                      -- last phase fully written
            difficulty INTEGER NOT NULL,
            adapter_id BIGINT,               -- adapter serving this round (NULL: base model)
            stats JSON,
            started_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            finished_at TIMESTAMP,
            PRIMARY KEY (run_id, round)
        );
        CREATE TABLE agents (
            run_id BIGINT NOT NULL,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            system_prompt TEXT NOT NULL,
            sampling JSON NOT NULL,
            PRIMARY KEY (run_id, name)
        );
        CREATE SEQUENCE seq_tasks START 1;
        CREATE TABLE tasks (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_tasks'),
            run_id BIGINT,                   -- NULL for imported task sets
            round INTEGER,
            source TEXT NOT NULL,            -- generated | proposed | imported
            task_set TEXT,                   -- name of an imported set
            domain TEXT NOT NULL,
            difficulty INTEGER,
            prompt TEXT NOT NULL,
            reference TEXT,                  -- the expected answer (JSON for structured ones)
            payload JSON,                    -- domain data: tests, entry point, ...
            fingerprint TEXT NOT NULL,       -- normalised form used to find duplicates
            held_out BOOLEAN NOT NULL DEFAULT false,
            rejected_reason TEXT,            -- NULL: accepted
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE seq_attempts START 1;
        CREATE TABLE attempts (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_attempts'),
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            task_id BIGINT NOT NULL,
            agent TEXT NOT NULL,
            sample INTEGER NOT NULL,
            turn INTEGER NOT NULL,           -- 0: first answer, 1..n: revisions
            text TEXT NOT NULL,
            answer TEXT,                     -- what the verifier extracted
            correct BOOLEAN,                 -- the verifier's verdict
            status TEXT,                     -- verifier status (ok, wrong, unparsable, timeout...)
            tokens INTEGER NOT NULL,
            seconds DOUBLE NOT NULL,
            truncated BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE seq_critiques START 1;
        CREATE TABLE critiques (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_critiques'),
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            task_id BIGINT NOT NULL,
            attempt_id BIGINT NOT NULL,
            agent TEXT NOT NULL,
            turn INTEGER NOT NULL,
            text TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            seconds DOUBLE NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE seq_verdicts START 1;
        CREATE TABLE verdicts (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_verdicts'),
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            task_id BIGINT NOT NULL,
            attempt_id BIGINT NOT NULL,
            judge TEXT NOT NULL,
            judge_correct BOOLEAN,           -- NULL when the judge gave no usable verdict
            judge_text TEXT NOT NULL,
            verifier_correct BOOLEAN NOT NULL,
            verifier_status TEXT NOT NULL,
            agreement BOOLEAN,
            tokens INTEGER NOT NULL,
            seconds DOUBLE NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE seq_examples START 1;
        CREATE TABLE examples (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_examples'),
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            task_id BIGINT,                  -- NULL for replay examples
            attempt_id BIGINT,
            source TEXT NOT NULL,            -- verified | replay
            messages JSON NOT NULL,          -- chat messages: system, user, assistant
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE seq_training_runs START 1;
        CREATE TABLE training_runs (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_training_runs'),
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            backend TEXT NOT NULL,
            backend_reason TEXT,
            settings JSON NOT NULL,
            n_examples INTEGER NOT NULL,
            steps INTEGER NOT NULL,
            loss_curve JSON,
            tokens_per_second DOUBLE,
            seconds DOUBLE,
            status TEXT NOT NULL,            -- running | done | failed | cancelled
            error TEXT,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE seq_adapters START 1;
        CREATE TABLE adapters (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_adapters'),
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            training_run_id BIGINT NOT NULL,
            parent_id BIGINT,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            export_cosine DOUBLE,            -- llama.cpp vs PyTorch logits agreement
            promoted BOOLEAN NOT NULL DEFAULT false,
            decision TEXT,                   -- why it was promoted or kept out
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE seq_evals START 1;
        CREATE TABLE evals (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_evals'),
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            adapter_id BIGINT,               -- NULL: the base model
            eval_set TEXT NOT NULL,          -- e.g. held-out level 2, control
            n INTEGER NOT NULL,
            correct INTEGER NOT NULL,
            accuracy DOUBLE NOT NULL,
            ci_low DOUBLE NOT NULL,
            ci_high DOUBLE NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        """,
    ),
    Migration(
        2,
        "m002_pools_and_paired_gate",
        "A score that chose an adapter is biased on the set it was measured on: every run now has "
        "three disjoint pools per level (train: round tasks; dev: read by the gate and the "
        "curriculum; test: read by nothing in the loop, only by reports). Duplicates are found on "
        "canonical forms, a second one (behaviour) where a domain has it. The gate compares "
        "adapters task by task, so evals keep each task's outcome, and adapters keep the numbers "
        "the gate decided on. Old held-out sets were what the gate read: they become dev.",
        """
        ALTER TABLE tasks ADD COLUMN pool TEXT;           -- train | dev | test (imported sets: test)
        ALTER TABLE tasks ADD COLUMN behaviour TEXT;      -- a second canonical key (python: outputs on inputs)
        -- tasks.source gains 'builtin': the general facts (task_set facts-dev / facts-test)
        UPDATE tasks SET pool = CASE WHEN held_out AND run_id IS NULL THEN 'test'
                                     WHEN held_out THEN 'dev' ELSE 'train' END;
        ALTER TABLE evals ADD COLUMN pool TEXT;           -- dev | test: which pool the set belongs to
        UPDATE evals SET pool = CASE WHEN eval_set LIKE 'imported:%' THEN 'test' ELSE 'dev' END;
        CREATE TABLE eval_answers (
            eval_id BIGINT NOT NULL,
            task_id BIGINT NOT NULL,
            correct BOOLEAN NOT NULL,
            text TEXT NOT NULL,              -- the greedy answer scored
            PRIMARY KEY (eval_id, task_id)
        );
        ALTER TABLE adapters ADD COLUMN gate JSON;       -- the paired comparisons behind the decision
        """,
    ),
    Migration(
        3,
        "m003_roles_and_debate_protocol",
        "Every role learns from the verifier, so a training example says which role it trains "
        "(solver, reviser, critic, judge) and where its target text came from; old examples were "
        "solver answers. Wrong answers get hint-guided critiques and unsolved tasks rationales, "
        "written with the verified result in view and trained without it. The debate is measured as a protocol on fixed sets (first answer, "
        "critique, revision, judge; the verifier only scores), with each task's trace kept.",
        """
        ALTER TABLE examples ADD COLUMN role TEXT;       -- solver | reviser | critic | judge
        UPDATE examples SET role = 'solver';
        -- source: first | revision (an answer of that kind) | critique (a debate critique that led to
        -- a verified fix) | verifier (text written from the verifier's result: verdicts, confirmations)
        -- | replay
        UPDATE examples SET source = CASE
            WHEN source <> 'verified' THEN source
            WHEN coalesce((SELECT a.turn FROM attempts a WHERE a.id = examples.attempt_id), 0) > 0 THEN 'revision'
            ELSE 'first' END;
        -- hint-guided work on what the round got wrong (STaR, CTRL): a critic shown the verified
        -- result critiques a wrong answer and its solver revises with that critique; a solver shown
        -- the verified result of a task nobody solved writes a rationale. Kept for training (without
        -- the hint) only where the verifier passes the revision or the rationale.
        CREATE SEQUENCE seq_hints START 1;
        CREATE TABLE hints (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_hints'),
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            task_id BIGINT NOT NULL,
            attempt_id BIGINT,               -- the wrong answer critiqued (NULL for a rationale)
            kind TEXT NOT NULL,              -- critique | rationale
            agent TEXT NOT NULL,             -- who wrote text
            text TEXT NOT NULL,              -- the hint-guided critique or rationale
            reviser TEXT,                    -- who revised with the critique
            revision TEXT,
            correct BOOLEAN NOT NULL,        -- the revision (critique) or the rationale passes the verifier
            tokens INTEGER NOT NULL,
            seconds DOUBLE NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE SEQUENCE seq_debate_evals START 1;
        CREATE TABLE debate_evals (
            id BIGINT PRIMARY KEY DEFAULT nextval('seq_debate_evals'),
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            adapter_id BIGINT,               -- NULL: the base model
            eval_set TEXT NOT NULL,
            pool TEXT NOT NULL,              -- dev | test
            n INTEGER NOT NULL,
            first_correct INTEGER NOT NULL,  -- right first answers
            final_correct INTEGER NOT NULL,  -- right answers after the debate
            right_to_wrong INTEGER NOT NULL,
            wrong_to_right INTEGER NOT NULL,
            judge_tp INTEGER NOT NULL,       -- judge said right, verifier said right (first and final answers)
            judge_tn INTEGER NOT NULL,
            judge_fp INTEGER NOT NULL,
            judge_fn INTEGER NOT NULL,       -- includes verdicts the judge left unusable on right answers
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        );
        CREATE TABLE debate_eval_answers (
            debate_eval_id BIGINT NOT NULL,
            task_id BIGINT NOT NULL,
            first_text TEXT NOT NULL,
            critique TEXT,
            final_text TEXT NOT NULL,
            first_correct BOOLEAN NOT NULL,
            final_correct BOOLEAN NOT NULL,
            judge_first BOOLEAN,             -- NULL: unusable verdict
            judge_final BOOLEAN,
            PRIMARY KEY (debate_eval_id, task_id)
        );
        """,
    ),
    Migration(
        4,
        "m004_skills_and_curriculum",
        "A curriculum that finds weaknesses needs to know what each task exercises and how each "
        "skill went: tasks carry skill tags from their domain (arith: operand digits, terms, each "
        "operator, carries or borrows; python: the concepts its reference uses), skill_scores keeps "
        "per-skill pass rates per round (the round's first answers and the dev sets of the adapter "
        "in use), and a round records the mix of levels it drew and why.",
        """
        ALTER TABLE tasks ADD COLUMN skills JSON;        -- list of tags, e.g. ["digits:2", "op:+", "carries:1"]
        ALTER TABLE rounds ADD COLUMN mix JSON;          -- {"level": generated tasks} drawn this round
        ALTER TABLE rounds ADD COLUMN curriculum TEXT;   -- why this round's level and mix were chosen
        ALTER TABLE rounds ADD COLUMN dev_score DOUBLE;  -- dev accuracy at the round's level of the adapter in use after it
        CREATE TABLE skill_scores (
            run_id BIGINT NOT NULL,
            round INTEGER NOT NULL,
            source TEXT NOT NULL,            -- round: its first answers | dev: the dev sets, adapter in use
            adapter_id BIGINT,               -- the adapter scored (NULL: the base model)
            skill TEXT NOT NULL,
            n INTEGER NOT NULL,              -- answers (round) or tasks (dev) with this skill
            passed INTEGER NOT NULL,
            PRIMARY KEY (run_id, round, source, skill)
        );
        """,
    ),
    Migration(
        5,
        "m005_endpoints",
        "Agents may run on inference servers (engine.runtime.http): every generated row records "
        "which endpoint wrote it ('inprocess', or the server's URL), so a round spread over "
        "several servers, or retried on another after one died, can be traced.",
        """
        ALTER TABLE attempts ADD COLUMN endpoint TEXT;   -- inprocess | the server's URL
        ALTER TABLE critiques ADD COLUMN endpoint TEXT;
        ALTER TABLE verdicts ADD COLUMN endpoint TEXT;
        ALTER TABLE hints ADD COLUMN endpoint TEXT;      -- the critique's (or rationale's) endpoint
        """,
    ),
    Migration(
        6,
        "m006_per_role_adapters",
        "With train.adapters = 'per-role' each role (solver, critic, reviser, judge) trains and runs "
        "under a LoRA of its own, gated on that role's dev metric: an adapter and its training run "
        "name the role they serve (NULL: one adapter shared by every role), and a debate score "
        "records which adapter each role ran under.",
        """
        ALTER TABLE adapters ADD COLUMN role TEXT;       -- solver | critic | reviser | judge; NULL: shared by every role
        ALTER TABLE training_runs ADD COLUMN role TEXT;
        ALTER TABLE debate_evals ADD COLUMN adapters JSON;  -- per-role: {"solver": id, ...}; NULL: adapter_id for all
        """,
    ),
    Migration(
        7,
        "m007_judged_debate_answer",
        "The debate's answer is the judge's pick between the first answer and the revision "
        "(round.debate_answer): a debate score's final_correct and flips count the answer the debate "
        "settled on, and the revisions' own counts sit beside them; each task's row says which answer "
        "the debate settled on (final_text stays the last revision, judge_final the verdict on it). "
        "Rows written before: NULL, their final answer was the revision.",
        """
        ALTER TABLE debate_evals ADD COLUMN revised_correct INTEGER;        -- right revisions
        ALTER TABLE debate_evals ADD COLUMN revised_right_to_wrong INTEGER;
        ALTER TABLE debate_evals ADD COLUMN revised_wrong_to_right INTEGER;
        ALTER TABLE debate_eval_answers ADD COLUMN answer TEXT;             -- first | revision: the debate's answer
        """,
    ),
    Migration(
        8,
        "m008_judge_answer",
        "A computing judge's own result can be the debate's answer (round.debate_answer = 'three-way': "
        "where it calls both the first answer and the revision wrong): each task's row keeps that "
        "result as the judge wrote it and whether the verifier passes it; answer gains 'judge'. "
        "Rows written before: NULL.",
        """
        ALTER TABLE debate_eval_answers ADD COLUMN judge_answer TEXT;       -- the judge's own result, as written
        ALTER TABLE debate_eval_answers ADD COLUMN judge_answer_correct BOOLEAN;
        """,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
