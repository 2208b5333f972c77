"""Per-tenant report settings: KPI thresholds, targets and export templates (issue 17).

Revision ID: 0016
Revises: 0012
Create Date: 2026-12-03

Existing data: none to move; a tenant without a row uses the defaults (T = 30 s, short
abandon 5 s, billable 15 s, no targets, the reports' own columns).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``report_settings``."""
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


def downgrade() -> None:
    """Drop ``report_settings``."""
    op.drop_table("report_settings")
