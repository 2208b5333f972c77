"""Per-tenant floor rules and the floor alerts (one row per episode) they raised.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03

Existing data: none to move. Alerts lived in memory until now and are not carried over; a
tenant without a ``floor_rules`` row runs the platform defaults (settings ``CCBRIDGE_FLOOR__*``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``floor_rules`` and ``floor_alerts``."""
    op.create_table(
        "floor_rules",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_floor_rules_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_floor_rules"),
    )
    op.create_table(
        "floor_alerts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("episode_key", sa.String(255), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("agent_no", sa.String(32), nullable=True),
        sa.Column("skill_group", sa.String(64), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name="fk_floor_alerts_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_floor_alerts"),
    )
    op.create_index("ix_floor_alerts_tenant_raised", "floor_alerts", ["tenant_id", "raised_at"])
    op.create_index("ix_floor_alerts_open", "floor_alerts", ["cleared_at", "tenant_id"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_floor_alerts_open", table_name="floor_alerts")
    op.drop_index("ix_floor_alerts_tenant_raised", table_name="floor_alerts")
    op.drop_table("floor_alerts")
    op.drop_table("floor_rules")
