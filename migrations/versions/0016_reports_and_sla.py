"""Report settings per tenant (KPI thresholds, targets, templates), the SLA incident log,
tenants' fault reports and monthly statements.

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-03

Existing data: none to move; a tenant without a settings row uses the defaults (T = 30 s,
short abandon 5 s, billable 15 s, no targets, the reports' own columns). The incident log
starts empty: stability is 100 % until an incident is recorded. Existing leases are billed by
peak concurrent sign-ins (``seat_usage = 'peak'``) until changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the report, SLA and statement tables; leases get ``seat_usage``."""
    op.add_column(
        "leases",
        sa.Column("seat_usage", sa.String(16), nullable=False, server_default="peak"),
    )
    op.create_table(
        "report_settings",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_report_settings_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_report_settings"),
    )
    op.create_table(
        "sla_incidents",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=True),
        sa.Column("exclusion", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sla_incidents"),
    )
    op.create_index("ix_sla_incidents_started_at", "sla_incidents", ["started_at"])
    op.create_table(
        "sla_fault_reports",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_by", sa.String(128), nullable=False),
        sa.Column("noticed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("incident_id", sa.String(36), nullable=True),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_sla_fault_reports_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sla_fault_reports"),
    )
    op.create_table(
        "statements",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("model", sa.String(16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("trail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_statements_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "period", name="pk_statements"),
    )
    op.create_index(
        "ix_sla_fault_reports_tenant_id_reported_at",
        "sla_fault_reports",
        ["tenant_id", "reported_at"],
    )


def downgrade() -> None:
    """Drop ``statements``, ``sla_fault_reports``, ``sla_incidents`` and ``report_settings``."""
    op.drop_table("statements")
    op.drop_index("ix_sla_fault_reports_tenant_id_reported_at", table_name="sla_fault_reports")
    op.drop_table("sla_fault_reports")
    op.drop_index("ix_sla_incidents_started_at", table_name="sla_incidents")
    op.drop_table("sla_incidents")
    op.drop_table("report_settings")
    op.drop_column("leases", "seat_usage")
