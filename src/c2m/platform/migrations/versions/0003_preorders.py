"""Refundable pre-orders: orders, their idempotency keys, payments, the audit log, the local provider's ledger.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preorder",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("person_hash", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(100), nullable=False),
        sa.Column("colour", sa.String(50), nullable=False),
        sa.Column("battery", sa.String(50), nullable=False),
        sa.Column("ownership", sa.String(8), nullable=False),
        sa.Column("rent_plan", sa.String(50), nullable=True),
        sa.Column("monthly_fee_fen", sa.Integer(), nullable=True),
        sa.Column("price_fen", sa.Integer(), nullable=False),
        sa.Column("deposit_fen", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('reserved', 'deposit_paid', 'confirmed', 'delivered', 'cancelled', 'refunded')",
            name="ck_preorder_state_known",
        ),
        sa.CheckConstraint("ownership IN ('buy', 'rent')", name="ck_preorder_ownership_known"),
        sa.CheckConstraint(
            "price_fen > 0 AND deposit_fen > 0 AND deposit_fen <= price_fen", name="ck_preorder_amounts_valid"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name="fk_preorder_project_id_project", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_preorder"),
    )
    op.create_index("ix_preorder_project_id", "preorder", ["project_id"])
    op.create_table(
        "preorder_key",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["preorder.id"], name="fk_preorder_key_order_id_preorder", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key", name="pk_preorder_key"),
        sa.UniqueConstraint("order_id", name="uq_preorder_key_order_id"),
    )
    op.create_table(
        "payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("idempotency_key", sa.String(150), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('charge', 'refund')", name="ck_payment_kind_known"),
        sa.CheckConstraint("amount_fen > 0", name="ck_payment_amount_positive"),
        sa.ForeignKeyConstraint(["order_id"], ["preorder.id"], name="fk_payment_order_id_preorder", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_payment"),
        sa.UniqueConstraint("order_id", "kind", name="uq_payment_order_id_kind"),
        sa.UniqueConstraint("idempotency_key", name="uq_payment_idempotency_key"),
    )
    op.create_table(
        "order_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(50), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["preorder.id"], name="fk_order_event_order_id_preorder", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_order_event"),
    )
    op.create_index("ix_order_event_order_id", "order_event", ["order_id"])
    op.create_table(
        "local_payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("key", sa.String(150), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("refund_of", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('charge', 'refund')", name="ck_local_payment_kind_known"),
        sa.CheckConstraint("amount_fen > 0", name="ck_local_payment_amount_positive"),
        sa.PrimaryKeyConstraint("id", name="pk_local_payment"),
        sa.UniqueConstraint("reference", name="uq_local_payment_reference"),
        sa.UniqueConstraint("key", name="uq_local_payment_key"),
    )


def downgrade() -> None:
    op.drop_table("local_payment")
    op.drop_index("ix_order_event_order_id", table_name="order_event")
    op.drop_table("order_event")
    op.drop_table("payment")
    op.drop_table("preorder_key")
    op.drop_index("ix_preorder_project_id", table_name="preorder")
    op.drop_table("preorder")
