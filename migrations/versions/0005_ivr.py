"""Create IVR flows, revisions, prompts and per-call IVR logs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the IVR tables (hand-written; mirrors ccbridge.db.ivr_tables)."""
    op.create_table(
        "ivr_flows",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("flow_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("draft_version", sa.Integer(), nullable=False),
        _at("updated_at"),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_ivr_flows_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "flow_id", name=op.f("pk_ivr_flows")),
    )
    op.create_table(
        "ivr_revisions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("flow_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _at("created_at"),
        _at("effective_at"),
        _at("activated_at", nullable=True),
        sa.Column("rollback_of", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "flow_id"],
            ["ivr_flows.tenant_id", "ivr_flows.flow_id"],
            name="fk_ivr_revisions_flow",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "flow_id", "revision", name=op.f("pk_ivr_revisions")),
    )
    op.create_index("ix_ivr_revisions_effective_at", "ivr_revisions", ["effective_at"])
    op.create_table(
        "ivr_prompts",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("prompt_id", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(128), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        _at("created_at"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_ivr_prompts_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "prompt_id", name=op.f("pk_ivr_prompts")),
    )
    op.create_table(
        "ivr_call_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("flow_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("uniqueid", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(64), nullable=False),
        _at("started_at"),
        _at("ended_at"),
        sa.Column("path", sa.JSON(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("drop_off_node", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_call_logs")),
    )
    op.create_index(
        "ix_ivr_call_logs_tenant_id_started_at",
        "ivr_call_logs",
        ["tenant_id", "started_at", "id"],
    )


def downgrade() -> None:
    """Drop the IVR tables."""
    op.drop_index("ix_ivr_call_logs_tenant_id_started_at", table_name="ivr_call_logs")
    op.drop_table("ivr_call_logs")
    op.drop_table("ivr_prompts")
    op.drop_index("ix_ivr_revisions_effective_at", table_name="ivr_revisions")
    op.drop_table("ivr_revisions")
    op.drop_table("ivr_flows")
