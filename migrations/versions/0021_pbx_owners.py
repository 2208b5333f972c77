"""PBX ownership lease for active/standby nodes on PostgreSQL (issue 20, ADR 0026).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03

One row per PBX: the node holding its AMI connection, the fencing epoch (incremented at every
takeover) and when the lease expires by the database's clock. Created on SQLite too (the
schema is one), where it stays empty: multi-node mode refuses SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``pbx_owners``."""
    op.create_table(
        "pbx_owners",
        sa.Column("pbx", sa.String(64), nullable=False),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pbx", name=op.f("pk_pbx_owners")),
    )


def downgrade() -> None:
    """Drop ``pbx_owners``."""
    op.drop_table("pbx_owners")
