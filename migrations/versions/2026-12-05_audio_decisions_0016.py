"""Audio Decisions: a tenant's question sets (versioned, immutable once written) and Hume's answers to them,
one row per job, source, window and question.

`question_set` rows never change except `archived_at`: an edit inserts the next `version` of the same
`family_id`, so a job keeps the exact questions it was answered with. `questions` is an ordered JSON array of
`{"id", "type", "instructions", "criteria"}` kept as written (json, so options keep their order too), because
Hume answers all questions in one inference and "an answer can change when other questions are added,
removed or reordered" (https://dev.hume.ai/audio-decisions/reference/decisions/create.md).

`decision_answer` holds each answer in typed columns (noul `share`; choice `choice`, `confidence`,
`option_probabilities` and the same probabilities as `probabilities`, a real[] in the order of the version's
options; score `score` as the mean level, `confidence`, `level_probabilities`; span `spans` with `span_count` and
`span_ms`, their number and total duration) and always Hume's `raw` answer, so a misread field can be re-read
later. The typed copies are what the per-question reads aggregate: reading three options' probabilities out of
jsonb took 135-150 ms per 100,000 answers, out of a real[] 35 ms; summing span lists' durations out of jsonb
140 ms.

A window's answers are stored once, together: `decision_window` (job, source, window) is claimed in the
transaction that stores them, so a retried window stores nothing and `decision_answer` needs no unique index.
Its one index, (job, question id) with question ids in the "C" collation, is what reads need: one job's
answers, and one question's answers across jobs (the jobs listed in `decision_job` for the set's family, each
one range of it). Server CPU to COPY the same 100,000 answers (pre-encoded, 8 rounds, loaded machine): no index
0.46 s, this index 0.64 s, the unique key (job, question, source, window) it replaces 0.66 s, (job) alone 0.59 s
(but a job's page of answers then sorts all of the job's). The claims add about 0.03 s on the server and as much
in Python, so a first store costs what it did with the key; storing a batch again costs 0.1x a bare COPY instead
of 1.6-2.1x. A second index made storing 1.5-1.7x a bare COPY, and foreign keys checked per row 4x
(bench/bench_decisions.py); so `decision_job` (one row per job and question set, written with its first
answers) holds the foreign keys, and a trigger deletes a deleted job's answers and windows. The table is
hash-partitioned by question id (see PARTITIONS). `decision_answers_v` is the analysts' view with the job's
metadata and the set's name.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "question_set",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("family_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tenant", sa.Text(), server_default="default", nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("context", sa.Text(), nullable=True),
        # json, not jsonb: jsonb reorders an object's keys (shortest first), and a choice question's options
        # go to Hume in the order they were written.
        sa.Column("questions", postgresql.JSON(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("version >= 1", name="ck_question_set_version"),
        sa.CheckConstraint("json_typeof(questions) = 'array'", name="ck_question_set_questions_array"),
        sa.PrimaryKeyConstraint("id", name="pk_question_set"),
        sa.UniqueConstraint("family_id", "version", name="uq_question_set_family_id_version"),
    )
    # A tenant's sets newest first: the list's order, scoped.
    op.create_index("ix_question_set_tenant_created_at", "question_set", ["tenant", "created_at"])
    op.create_table(
        "decision_job",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("question_set_id", sa.UUID(), nullable=False),
        sa.Column("family_id", sa.UUID(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name="fk_decision_job_job_id_job", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["question_set_id"], ["question_set.id"],
                                name="fk_decision_job_question_set_id_question_set"),
        sa.PrimaryKeyConstraint("job_id", "question_set_id", name="pk_decision_job"),
    )  # fmt: skip
    # The jobs answered with a family's versions: where a question's answers across jobs are read from.
    op.create_index("ix_decision_job_family_id", "decision_job", ["family_id"])
    # A job's windows whose answers are stored: claimed in the transaction that stores them (no foreign key: the
    # window's decision_job row checks the job once a batch). A job is answered with one question set version.
    op.create_table(
        "decision_window",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("source_index", sa.Integer(), nullable=False),
        sa.Column("window_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "source_index", "window_index", name="pk_decision_window"),
    )
    op.create_table(
        "decision_answer",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("source_index", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("window_index", sa.Integer(), nullable=False),
        sa.Column("window_start_ms", sa.Integer(), nullable=False),
        sa.Column("window_end_ms", sa.Integer(), nullable=False),
        # Question ids compare byte by byte: the index's text column under a language collation made storing
        # 1.5x a bare COPY where "C" makes it 1.1x.
        sa.Column("question_id", sa.Text(collation="C"), nullable=False),
        sa.Column("primitive", sa.Text(), nullable=False),
        sa.Column("share", sa.REAL(), nullable=True),
        sa.Column("choice", sa.Text(), nullable=True),
        sa.Column("confidence", sa.REAL(), nullable=True),
        sa.Column("option_probabilities", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("probabilities", postgresql.ARRAY(sa.REAL()), nullable=True),
        sa.Column("score", sa.REAL(), nullable=True),
        sa.Column("level_probabilities", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("spans", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("span_count", sa.Integer(), nullable=True),
        sa.Column("span_ms", sa.BigInteger(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("run_id", sa.UUID(), nullable=True),
        sa.Column("question_set_id", sa.UUID(), nullable=False),
        sa.Column("family_id", sa.UUID(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("primitive IN ('noul', 'choice', 'score', 'span')", name="ck_decision_answer_primitive"),
        postgresql_partition_by="HASH (question_id)",
    )
    op.create_index("ix_decision_answer_job_id_question_id", "decision_answer", ["job_id", "question_id"])
    op.execute(f"CREATE SCHEMA {PARTITION_SCHEMA}")
    for remainder in range(PARTITIONS):
        op.execute(
            f"CREATE TABLE {PARTITION_SCHEMA}.answer_{remainder:02d} PARTITION OF decision_answer"
            f" FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {remainder})"
        )
    op.execute(CASCADE_FUNCTION)
    op.execute(CASCADE_TRIGGER)
    op.execute(DECISION_ANSWERS_VIEW)


# Answers are spread over 16 partitions by a hash of the question id, in a schema of their own (the models
# describe the parent). A question's answers then share their pages with about 1/16 of the other questions'
# instead of all of them, as a window's answers are stored side by side. Reading one question of a 10-question
# set across 100,000 recordings (1,000,000 answers, loaded machine, medians of 6): 95-259 ms partitioned,
# 295-337 ms in one table; COPY costs the server the same CPU either way (0.49 against 0.48 s per 100,000).
PARTITION_SCHEMA = "decision_part"
PARTITIONS = 16

# A job deleted takes its answers along: its decision_job rows go by their foreign key, their answers and windows
# here.
CASCADE_FUNCTION = """
CREATE FUNCTION decision_job_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM decision_answer WHERE job_id = OLD.job_id AND question_set_id = OLD.question_set_id;
  DELETE FROM decision_window WHERE job_id = OLD.job_id;
  RETURN OLD;
END $$
"""
CASCADE_TRIGGER = """
CREATE TRIGGER decision_job_deleted AFTER DELETE ON decision_job FOR EACH ROW EXECUTE FUNCTION decision_job_deleted()
"""

# Flat form for BI tools and plain SQL: each answer beside its job's metadata and its question set's name.
DECISION_ANSWERS_VIEW = """
CREATE VIEW decision_answers_v AS
SELECT a.job_id, a.tenant, j.metadata AS job_metadata, j.status AS job_status, j.created_at AS job_created_at,
       a.source_index, a.source_url, a.window_index, a.window_start_ms, a.window_end_ms,
       a.question_set_id, a.family_id AS question_set_family_id, q.name AS question_set_name,
       q.version AS question_set_version, a.question_id, a.primitive,
       a.share, a.choice, a.confidence, a.option_probabilities, a.score, a.level_probabilities, a.spans,
       a.raw, a.run_id, a.created_at
FROM decision_answer a
JOIN job j ON j.id = a.job_id
JOIN question_set q ON q.id = a.question_set_id
"""


def downgrade() -> None:
    op.execute("DROP VIEW decision_answers_v")
    op.drop_index("ix_decision_answer_job_id_question_id", table_name="decision_answer")
    op.drop_table("decision_answer")
    op.execute(f"DROP SCHEMA {PARTITION_SCHEMA}")
    op.drop_table("decision_window")
    op.execute("DROP TRIGGER decision_job_deleted ON decision_job")
    op.execute("DROP FUNCTION decision_job_deleted()")
    op.drop_index("ix_decision_job_family_id", table_name="decision_job")
    op.drop_table("decision_job")
    op.drop_index("ix_question_set_tenant_created_at", table_name="question_set")
    op.drop_table("question_set")
