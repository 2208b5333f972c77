"""Call control: stored Idempotency-Key answers, and the dial policy's region and toll-fraud
limits (ADR 0014).

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-03

Existing dial policies keep their prefixes; their region is ``CN`` and their limits the
defaults (``limits`` NULL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``idempotency_keys``; add ``region``, ``limits`` and ``caller_id`` to
    ``dial_policies``."""
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_idempotency_keys_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    with op.batch_alter_table("dial_policies") as batch:
        batch.add_column(sa.Column("region", sa.String(2), nullable=False, server_default="CN"))
        batch.add_column(sa.Column("limits", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("caller_id", sa.String(16), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("dial_policies") as batch:
        batch.drop_column("caller_id")
        batch.drop_column("limits")
        batch.drop_column("region")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
