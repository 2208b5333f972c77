"""The PBX owner's API address in its lease row, for request forwarding (issue 20, ADR 0031).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03

A standby that receives a request only the PBX owner can serve (call control, seat commands,
the live wallboard) forwards it to the address the owner wrote when it took the lease. Rows
written before this migration have none: their standbys answer 503 until the next takeover.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``pbx_owners.url``."""
    with op.batch_alter_table("pbx_owners") as batch:
        batch.add_column(sa.Column("url", sa.String(512), nullable=True))


def downgrade() -> None:
    """Drop ``pbx_owners.url``."""
    with op.batch_alter_table("pbx_owners") as batch:
        batch.drop_column("url")
