"""Inbound numbers, routing policies and call-back requests (issue 15 items 4 and 5).

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-03

``inbound_numbers`` replaces ``CCBRIDGE_ROUTES`` as the truth for which tenant a dialled number
reaches (the setting now only seeds the simulator). The index on ``calls (tenant, caller,
started_at)`` serves sticky routing's "who answered this caller last".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the three tables and the calls index."""
    op.create_table(
        "inbound_numbers",
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target_type", sa.String(8), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_inbound_numbers_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("number", name="pk_inbound_numbers"),
    )
    op.create_index(
        "ix_inbound_numbers_tenant_id_number", "inbound_numbers", ["tenant_id", "number"]
    )
    op.create_table(
        "routing_policies",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("skill_group", sa.String(64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_routing_policies_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "skill_group", name="pk_routing_policies"),
    )
    op.create_table(
        "callback_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(32), nullable=False),
        sa.Column("did", sa.String(16), nullable=False),
        sa.Column("skill_group", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("waited_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_callback_requests_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_callback_requests"),
    )
    op.create_index(
        "ix_callback_requests_tenant_id_requested_at",
        "callback_requests",
        ["tenant_id", "requested_at", "id"],
    )
    op.create_index(
        "ix_calls_tenant_caller_started_at", "calls", ["tenant", "caller", "started_at"]
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_calls_tenant_caller_started_at", table_name="calls")
    op.drop_index("ix_callback_requests_tenant_id_requested_at", table_name="callback_requests")
    op.drop_table("callback_requests")
    op.drop_table("routing_policies")
    op.drop_index("ix_inbound_numbers_tenant_id_number", table_name="inbound_numbers")
    op.drop_table("inbound_numbers")
