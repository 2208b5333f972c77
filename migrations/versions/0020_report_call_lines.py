"""Flat per-call report lines (ADR 0019, part 3): one row per call with everything the
seat-detail and call-attributes reports need, kept by the report-tally job beside the day's
15-minute tallies.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03

Existing data: nothing is computed here. The tallies' fingerprint now includes the tenant's
zone and the line format, so the first pass after the upgrade marks every covered day dirty;
until the job has recomputed a day (tallies and lines together), reports compute that day from
the raw rows as before (same figures, only slower). ``ccbridge reports rebuild`` fills a period
at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``report_call_lines`` and its (tenant, day) index."""
    op.create_table(
        "report_call_lines",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_local", sa.String(40), nullable=False),
        *(
            sa.Column(name, sa.String(40), nullable=True)
            for name in ("queued_local", "answered_local", "ended_local")
        ),
        sa.Column("agent_no", sa.String(64), nullable=True),
        sa.Column("call_agent", sa.String(64), nullable=True),
        sa.Column("agents", sa.Text(), nullable=False),
        sa.Column("skill_group", sa.String(64), nullable=True),
        sa.Column("caller", sa.String(255), nullable=True),
        sa.Column("callee", sa.String(255), nullable=True),
        sa.Column("wait_s", sa.Float(), nullable=True),
        sa.Column("talk_s", sa.Float(), nullable=False),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(32), nullable=False),
        *(
            sa.Column(name, sa.Boolean(), nullable=False)
            for name in (
                "recorded",
                "inbound",
                "answered",
                "answered_within_t",
                "abandoned",
                "short_abandoned",
                "billable",
            )
        ),
        *(
            sa.Column(name, sa.Text(), nullable=False)
            for name in ("region", "carrier", "ivr_path", "vip_tier")
        ),
        sa.Column("hour", sa.String(2), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_report_call_lines_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "call_id", name="pk_report_call_lines"),
    )
    op.create_index("ix_report_call_lines_tenant_id_at", "report_call_lines", ["tenant_id", "at"])


def downgrade() -> None:
    """Drop the lines (the tallies stay; reports compute the two per-call ones from raw rows)."""
    op.drop_index("ix_report_call_lines_tenant_id_at", table_name="report_call_lines")
    op.drop_table("report_call_lines")
