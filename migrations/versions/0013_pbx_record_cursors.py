"""PBX record cursors: how far the backfill after an AMI gap has read the PBX's records (ADR 0013).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``pbx_record_cursors`` (empty: the first backfill reads one lookback back)."""
    op.create_table(
        "pbx_record_cursors",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("position", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_pbx_record_cursors")),
    )


def downgrade() -> None:
    """Drop the cursors (the next backfill rereads one lookback)."""
    op.drop_table("pbx_record_cursors")
