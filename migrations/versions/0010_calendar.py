"""The platform's working-day calendar: holidays and make-up working days (调休) per year.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``working_calendars`` (no row for a year = Monday to Friday only)."""
    op.create_table(
        "working_calendars",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holidays", sa.JSON(), nullable=False),
        sa.Column("makeup_workdays", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.CheckConstraint(
            "year BETWEEN 2000 AND 2100", name=op.f("ck_working_calendars_year_range")
        ),
        sa.PrimaryKeyConstraint("year", name="pk_working_calendars"),
    )


def downgrade() -> None:
    """Drop ``working_calendars``."""
    op.drop_table("working_calendars")
