"""Call-back requests get a lifecycle (issue 15): status, attempts, the attempt's agent and
call, when it last changed and why; agent-dialled calls are counted in ``outbound_dials``, so
the outbound rate and concurrency caps survive a restart and hold across processes.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03

Existing rows said ``open``; that is ``requested`` now (no attempt made yet). The status index
serves the settle job's "attempts under way" scan.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the lifecycle columns and index (``open`` becomes ``requested``) and the ledger."""
    with op.batch_alter_table("callback_requests") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("agent_no", sa.String(32), nullable=True))
        batch.add_column(sa.Column("attempt_call_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(128), nullable=True))
    op.execute("UPDATE callback_requests SET status = 'requested' WHERE status = 'open'")
    op.create_index("ix_callback_requests_status", "callback_requests", ["status"])
    op.create_table(
        "outbound_dials",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("agent_no", sa.String(32), nullable=False),
        sa.Column("dialled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_outbound_dials_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "call_id", name="pk_outbound_dials"),
    )
    op.create_index(
        "ix_outbound_dials_tenant_id_dialled_at", "outbound_dials", ["tenant_id", "dialled_at"]
    )


def downgrade() -> None:
    """Drop them again (every request not yet over reads ``open`` again)."""
    op.drop_index("ix_outbound_dials_tenant_id_dialled_at", table_name="outbound_dials")
    op.drop_table("outbound_dials")
    op.drop_index("ix_callback_requests_status", table_name="callback_requests")
    op.execute(
        "UPDATE callback_requests SET status = 'open' WHERE status IN ('requested', 'dialing')"
    )
    with op.batch_alter_table("callback_requests") as batch:
        batch.drop_column("reason")
        batch.drop_column("updated_at")
        batch.drop_column("attempt_call_id")
        batch.drop_column("agent_no")
        batch.drop_column("attempts")
