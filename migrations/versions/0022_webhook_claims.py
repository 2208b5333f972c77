"""Claimed webhook deliveries: who is sending an endpoint's head event (issue 20, ADR 0030).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03

Before it POSTs, a node claims the (endpoint, event) delivery on the endpoint's row with its
fencing term; the delivered mark clears the claim in the transaction that moves the cursor.
A claim still present when the next attempt starts names a delivery whose outcome nobody
recorded (a crash, a fence or a lost database between the POST and the mark): the one
delivery that can reach a receiver twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("claim_seq", "claim_node", "claim_epoch", "claimed_at")


def upgrade() -> None:
    """Add the claim columns to ``webhook_endpoints``."""
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("claim_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("claim_node", sa.String(128), nullable=True))
        batch.add_column(sa.Column("claim_epoch", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop the claim columns."""
    with op.batch_alter_table("webhook_endpoints") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
