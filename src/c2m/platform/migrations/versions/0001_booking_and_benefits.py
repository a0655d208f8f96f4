"""Projects, stores, test-drive slots and bookings, benefits and claims.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("product", sa.String(200), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_project"),
        sa.UniqueConstraint("name", name="uq_project_name"),
    )
    op.create_table(
        "store",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["project.id"], name="fk_store_project_id_project", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_store"),
        sa.UniqueConstraint("project_id", "code", name="uq_store_project_id_code"),
    )
    op.create_index("ix_store_project_id", "store", ["project_id"])
    op.create_table(
        "slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("booked >= 0 AND booked <= capacity", name="ck_slot_booked_within_capacity"),
        sa.CheckConstraint("capacity >= 0", name="ck_slot_capacity_nonnegative"),
        sa.ForeignKeyConstraint(["store_id"], ["store.id"], name="fk_slot_store_id_store", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_slot"),
        sa.UniqueConstraint("store_id", "start", name="uq_slot_store_id_start"),
    )
    op.create_index("ix_slot_store_id", "slot", ["store_id"])
    op.create_table(
        "booking",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("person_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by", sa.String(32), nullable=True),
        sa.CheckConstraint("status IN ('booked', 'cancelled')", name="ck_booking_status_known"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name="fk_booking_project_id_project", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["slot_id"], ["slot.id"], name="fk_booking_slot_id_slot", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_booking"),
    )
    op.create_index("ix_booking_slot_id", "booking", ["slot_id"])
    op.create_index(
        "uq_booking_active_person",
        "booking",
        ["project_id", "person_hash"],
        unique=True,
        sqlite_where=sa.text("status = 'booked'"),
        postgresql_where=sa.text("status = 'booked'"),
    )
    op.create_table(
        "benefit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(50), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_zh", sa.String(200), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("granted >= 0 AND granted <= quota", name="ck_benefit_granted_within_quota"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name="fk_benefit_project_id_project", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_benefit"),
        sa.UniqueConstraint("project_id", "code", name="uq_benefit_project_id_code"),
    )
    op.create_index("ix_benefit_project_id", "benefit", ["project_id"])
    op.create_table(
        "benefit_claim",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("benefit_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("person_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["benefit_id"], ["benefit.id"], name="fk_benefit_claim_benefit_id_benefit", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name="fk_benefit_claim_project_id_project", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_benefit_claim"),
        sa.UniqueConstraint("project_id", "person_hash", name="uq_benefit_claim_project_id_person_hash"),
    )
    op.create_index("ix_benefit_claim_benefit_id", "benefit_claim", ["benefit_id"])


def downgrade() -> None:
    op.drop_table("benefit_claim")
    op.drop_table("benefit")
    op.drop_index("uq_booking_active_person", table_name="booking")
    op.drop_table("booking")
    op.drop_table("slot")
    op.drop_table("store")
    op.drop_table("project")
