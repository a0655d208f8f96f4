"""Identity and after-sales: one-time codes, the dev code outbox, person sessions, service slots and appointments.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_code",
        sa.Column("person_hash", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_sends", sa.Integer(), nullable=False),
        sa.CheckConstraint("attempts >= 0", name="ck_login_code_attempts_nonnegative"),
        sa.CheckConstraint("window_sends >= 1", name="ck_login_code_window_sends_positive"),
        sa.PrimaryKeyConstraint("person_hash", name="pk_login_code"),
    )
    op.create_table(
        "code_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_hash", sa.String(64), nullable=False),
        sa.Column("code", sa.String(6), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_code_outbox"),
    )
    op.create_index("ix_code_outbox_person_hash", "code_outbox", ["person_hash"])
    op.create_table(
        "person_session",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("person_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_person_session"),
    )
    op.create_index("ix_person_session_person_hash", "person_session", ["person_hash"])
    op.create_table(
        "service_slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_service_slot_booked_within_capacity"),
        sa.CheckConstraint("capacity >= 0", name="ck_service_slot_capacity_nonnegative"),
        sa.ForeignKeyConstraint(
            ["store_id"], ["store.id"], name="fk_service_slot_store_id_store", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_service_slot"),
        sa.UniqueConstraint("store_id", "start", name="uq_service_slot_store_id_start"),
    )
    op.create_index("ix_service_slot_store_id", "service_slot", ["store_id"])
    op.create_table(
        "service_appointment",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("service_slot_id", sa.Integer(), nullable=False),
        sa.Column("person_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("preorder_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by", sa.String(32), nullable=True),
        sa.CheckConstraint("status IN ('booked', 'cancelled')", name="ck_service_appointment_status_known"),
        sa.CheckConstraint("kind IN ('maintenance', 'battery_service')", name="ck_service_appointment_kind_known"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name="fk_service_appointment_project_id_project", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["service_slot_id"],
            ["service_slot.id"],
            name="fk_service_appointment_service_slot_id_service_slot",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["preorder_id"], ["preorder.id"], name="fk_service_appointment_preorder_id_preorder", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_service_appointment"),
    )
    op.create_index("ix_service_appointment_service_slot_id", "service_appointment", ["service_slot_id"])
    op.create_index(
        "uq_service_appointment_active_person",
        "service_appointment",
        ["project_id", "person_hash", "kind"],
        unique=True,
        sqlite_where=sa.text("status = 'booked'"),
        postgresql_where=sa.text("status = 'booked'"),
    )


def downgrade() -> None:
    op.drop_table("service_appointment")
    op.drop_table("service_slot")
    op.drop_table("person_session")
    op.drop_table("code_outbox")
    op.drop_table("login_code")
