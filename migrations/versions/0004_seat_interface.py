"""One open seat session per softphone, enforced by a partial unique index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Replace the sign-in scan of every open session with an index lookup (and race guard)."""
    open_session = sa.text("signed_out_at IS NULL")
    op.create_index(
        "uq_seat_sessions_open_interface",
        "seat_sessions",
        ["interface"],
        unique=True,
        sqlite_where=open_session,
        postgresql_where=open_session,
    )


def downgrade() -> None:
    """Drop the index; the service still checks before inserting."""
    op.drop_index("uq_seat_sessions_open_interface", table_name="seat_sessions")
