"""15-minute report tallies (calls and seat time), their maintenance state, the
``calls (tenant, updated_at)`` index the incremental job finds changed calls by, and a
``state_intervals (tenant_id, ended_at, started_at)`` index for long intervals (ADR 0019),
and the archive of scheduled reports (one per tenant, report, period and first day).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03

Existing data: nothing is computed here. Until the job first runs for a tenant, and for days
before its coverage starts, reports compute from the raw rows as before (same figures, only
slower); ``ccbridge reports rebuild --tenant T --from … --to …`` fills history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def upgrade() -> None:
    """Create the tally tables and the changed-calls index."""
    op.create_table(
        "report_call_buckets",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("skill_group", sa.String(64), nullable=False),
        sa.Column("agent_no", sa.String(64), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("offered", "answered", "answered_within_t", "abandoned")
        ),
        sa.Column("short_abandoned", sa.Integer(), nullable=False),
        *(
            sa.Column(name, sa.Float(), nullable=False)
            for name in ("wait_answered_s", "longest_wait_s", "talk_s", "wrap_s")
        ),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("transfers", "billable", "outbound")
        ),
        _tenant("report_call_buckets"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "bucket_start", "skill_group", "agent_no", name="pk_report_call_buckets"
        ),
    )
    op.create_table(
        "report_seat_buckets",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_no", sa.String(64), nullable=False),
        *(
            sa.Column(name, sa.Float(), nullable=False)
            for name in ("signed_in_s", "ready_s", "not_ready_s", "break_s", "talk_s", "wrap_s")
        ),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("handled", "billable", "outbound")
        ),
        sa.Column("not_ready_by_reason", sa.JSON(), nullable=False),
        _tenant("report_seat_buckets"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "bucket_start", "agent_no", name="pk_report_seat_buckets"
        ),
    )
    op.create_table(
        "report_tally_state",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("covered_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calls_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spans_seen_id", sa.Integer(), nullable=False),
        sa.Column("open_spans", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant("report_tally_state"),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_report_tally_state"),
    )
    op.create_table(
        "report_tally_dirty",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("day_start", sa.DateTime(timezone=True), nullable=False),
        _tenant("report_tally_dirty"),
        sa.PrimaryKeyConstraint("tenant_id", "day_start", name="pk_report_tally_dirty"),
    )
    op.create_table(
        "report_archives",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("report", sa.String(32), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant("report_archives"),
        sa.PrimaryKeyConstraint("id", name="pk_report_archives"),
        sa.UniqueConstraint(
            "tenant_id", "report", "period", "first_day", name="uq_report_archives_period"
        ),
    )
    op.create_index(
        "ix_report_archives_tenant_id_first_day", "report_archives", ["tenant_id", "first_day"]
    )
    op.create_index("ix_calls_tenant_updated_at", "calls", ["tenant", "updated_at"])
    op.create_index(
        "ix_state_intervals_tenant_ended_at",
        "state_intervals",
        ["tenant_id", "ended_at", "started_at"],
    )


def downgrade() -> None:
    """Drop the index and the tally tables."""
    op.drop_index("ix_state_intervals_tenant_ended_at", table_name="state_intervals")
    op.drop_index("ix_calls_tenant_updated_at", table_name="calls")
    op.drop_index("ix_report_archives_tenant_id_first_day", table_name="report_archives")
    for table in (
        "report_archives",
        "report_tally_dirty",
        "report_tally_state",
        "report_seat_buckets",
        "report_call_buckets",
    ):
        op.drop_table(table)
