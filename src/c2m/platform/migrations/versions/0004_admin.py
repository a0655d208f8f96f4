"""Admin: staff accounts, sessions, login attempts (rate limiting) and background jobs.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'analyst')", name="ck_admin_user_role_known"),
        sa.PrimaryKeyConstraint("id", name="pk_admin_user"),
        sa.UniqueConstraint("username", name="uq_admin_user_username"),
    )
    op.create_table(
        "admin_session",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["admin_user.id"], name="fk_admin_session_user_id_admin_user", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_admin_session"),
    )
    op.create_index("ix_admin_session_user_id", "admin_session", ["user_id"])
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_attempt"),
    )
    op.create_index("ix_login_attempt_username_at", "login_attempt", ["username", "at"])
    op.create_index("ix_login_attempt_client_at", "login_attempt", ["client", "at"])
    op.create_table(
        "job",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('queued', 'running', 'done', 'failed')", name="ck_job_state_known"),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name="fk_job_project_id_project", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_job"),
    )
    op.create_index("ix_job_project_id", "job", ["project_id"])


def downgrade() -> None:
    op.drop_table("job")
    op.drop_table("login_attempt")
    op.drop_table("admin_session")
    op.drop_table("admin_user")
