"""Create the calls table.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``calls`` with its listing indexes (hand-written; mirrors ccbridge.db.tables)."""
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("caller", sa.String(255), nullable=True),
        sa.Column("caller_name", sa.String(255), nullable=True),
        sa.Column("callee", sa.String(255), nullable=True),
        sa.Column("skill_group", sa.String(64), nullable=True),
        sa.Column("agent_no", sa.String(64), nullable=True),
        sa.Column("agent_interface", sa.String(255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(255), nullable=True),
        sa.Column("legs", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_calls")),
    )
    op.create_index(
        "ix_calls_tenant_started_at", "calls", ["tenant", "started_at", "call_id"], unique=False
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at", "call_id"], unique=False)


def downgrade() -> None:
    """Drop ``calls`` and its indexes."""
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_index("ix_calls_tenant_started_at", table_name="calls")
    op.drop_table("calls")
