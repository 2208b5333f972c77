"""Events fast path: each event's envelope stored once as JSON bytes; delivery-log age index.

``envelope`` is the compact JSON envelope written at append, served by poll and SSE without
decoding or re-encoding; ``has_extras`` says whether the tenant's extras switches must filter
it. Rows from before this revision have ``envelope`` NULL and are encoded on read.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the pre-encoded envelope and the delivery log's age index."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("envelope", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("has_extras", sa.Boolean(), nullable=True))
    op.create_index("ix_webhook_deliveries_at", "webhook_deliveries", ["at"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_webhook_deliveries_at", table_name="webhook_deliveries")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("has_extras")
        batch.drop_column("envelope")
