"""Consumer survey: stored designs (versions x tasks x concepts), respondents and their answers.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "survey_design",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(40), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("n_versions", sa.Integer(), nullable=False),
        sa.Column("n_tasks", sa.Integer(), nullable=False),
        sa.Column("n_alts", sa.Integer(), nullable=False),
        sa.Column("none_option", sa.Boolean(), nullable=False),
        sa.Column("assigned", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name="fk_survey_design_project_id_project", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_survey_design"),
        sa.UniqueConstraint("project_id", name="uq_survey_design_project_id"),
    )
    op.create_table(
        "survey_concept",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("design_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("task", sa.Integer(), nullable=False),
        sa.Column("alt", sa.Integer(), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["design_id"], ["survey_design.id"], name="fk_survey_concept_design_id_survey_design", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_survey_concept"),
        sa.UniqueConstraint(
            "design_id", "version", "task", "alt", name="uq_survey_concept_design_id_version_task_alt"
        ),
    )
    op.create_table(
        "survey_respondent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("design_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("screening", sa.JSON(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('screened_out', 'active', 'done')", name="ck_survey_respondent_status_known"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name="fk_survey_respondent_project_id_project", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["design_id"],
            ["survey_design.id"],
            name="fk_survey_respondent_design_id_survey_design",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_survey_respondent"),
        sa.UniqueConstraint("design_id", "seq", name="uq_survey_respondent_design_id_seq"),
        sa.UniqueConstraint("token", name="uq_survey_respondent_token"),
    )
    op.create_index("ix_survey_respondent_project_id", "survey_respondent", ["project_id"])
    op.create_table(
        "survey_answer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("respondent_id", sa.Integer(), nullable=False),
        sa.Column("task", sa.Integer(), nullable=False),
        sa.Column("alt", sa.Integer(), nullable=False),
        sa.Column("is_none", sa.Boolean(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.CheckConstraint("alt >= 1", name="ck_survey_answer_alt_positive"),
        sa.CheckConstraint("seconds >= 0", name="ck_survey_answer_seconds_nonnegative"),
        sa.ForeignKeyConstraint(
            ["respondent_id"],
            ["survey_respondent.id"],
            name="fk_survey_answer_respondent_id_survey_respondent",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_survey_answer"),
        sa.UniqueConstraint("respondent_id", "task", name="uq_survey_answer_respondent_id_task"),
    )


def downgrade() -> None:
    op.drop_table("survey_answer")
    op.drop_index("ix_survey_respondent_project_id", table_name="survey_respondent")
    op.drop_table("survey_respondent")
    op.drop_table("survey_concept")
    op.drop_table("survey_design")
