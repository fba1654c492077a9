"""Audio Decisions: a tenant's question sets (versioned, immutable once written) and Hume's answers to them,
one row per job, source, window and question.

`question_set` rows never change except `archived_at`: an edit inserts the next `version` of the same
`family_id`, so a job keeps the exact questions it was answered with. `questions` is an ordered JSON array of
`{"id", "type", "instructions", "criteria"}`, because Hume answers all questions in one inference and "an
answer can change when other questions are added, removed or reordered"
(https://dev.hume.ai/audio-decisions/reference/decisions/create.md).

`decision_answer` holds each answer in typed columns (noul `share`; choice `choice`, `confidence`,
`option_probabilities`; score `score` as the mean level, `confidence`, `level_probabilities`; span `spans`)
and always Hume's `raw` answer, so a misread field can be re-read later. Its primary key (job, source,
window, question) makes storing a window's answers exactly once under retries. `family_id` is copied from
the question set (a version never changes family) so a question's answers across a family's versions are
read from one index. `decision_answers_v` is the analysts' view with the job's metadata and the set's name.

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
        sa.Column("questions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("version >= 1", name="ck_question_set_version"),
        sa.CheckConstraint("jsonb_typeof(questions) = 'array'", name="ck_question_set_questions_array"),
        sa.PrimaryKeyConstraint("id", name="pk_question_set"),
        sa.UniqueConstraint("family_id", "version", name="uq_question_set_family_id_version"),
    )
    # A tenant's sets newest first: the list's order, scoped.
    op.create_index("ix_question_set_tenant_created_at", "question_set", ["tenant", "created_at"])
    op.create_table(
        "decision_answer",
        sa.Column("job_id", sa.UUID(), nullable=False),
        sa.Column("source_index", sa.Integer(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=True),
        sa.Column("window_index", sa.Integer(), nullable=False),
        sa.Column("window_start_ms", sa.Integer(), nullable=False),
        sa.Column("window_end_ms", sa.Integer(), nullable=False),
        sa.Column("question_id", sa.Text(), nullable=False),
        sa.Column("primitive", sa.Text(), nullable=False),
        sa.Column("share", sa.REAL(), nullable=True),
        sa.Column("choice", sa.Text(), nullable=True),
        sa.Column("confidence", sa.REAL(), nullable=True),
        sa.Column("option_probabilities", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("score", sa.REAL(), nullable=True),
        sa.Column("level_probabilities", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("spans", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("run_id", sa.UUID(), nullable=True),
        sa.Column("question_set_id", sa.UUID(), nullable=False),
        sa.Column("family_id", sa.UUID(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("primitive IN ('noul', 'choice', 'score', 'span')", name="ck_decision_answer_primitive"),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name="fk_decision_answer_job_id_job", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["question_set_id"], ["question_set.id"],
                                name="fk_decision_answer_question_set_id_question_set"),
        sa.PrimaryKeyConstraint("job_id", "source_index", "window_index", "question_id", name="pk_decision_answer"),
    )  # fmt: skip
    # One question's answers across a family's versions and jobs, by date: the distribution and top-N reads.
    op.create_index("ix_decision_answer_family_question", "decision_answer", ["family_id", "question_id", "created_at"])
    op.create_index("ix_decision_answer_tenant_created_at", "decision_answer", ["tenant", "created_at"])
    op.create_index("ix_decision_answer_question_set_id", "decision_answer", ["question_set_id"])
    op.execute(DECISION_ANSWERS_VIEW)


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
    op.drop_index("ix_decision_answer_question_set_id", table_name="decision_answer")
    op.drop_index("ix_decision_answer_tenant_created_at", table_name="decision_answer")
    op.drop_index("ix_decision_answer_family_question", table_name="decision_answer")
    op.drop_table("decision_answer")
    op.drop_index("ix_question_set_tenant_created_at", table_name="question_set")
    op.drop_table("question_set")
