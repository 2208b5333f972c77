"""Room for a PBX id in the queue-log cursor's key (issue 20 item 4, ADR 0033).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03

Each PBX's queue log is read from its own position: the key is ``queue_log@<pbx id>`` (up to
74 characters) for every PBX but ``default``, which keeps ``queue_log``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Widen ``pbx_record_cursors.source`` to 128 characters."""
    with op.batch_alter_table("pbx_record_cursors") as batch:
        batch.alter_column("source", type_=sa.String(128), existing_type=sa.String(64))


def downgrade() -> None:
    """Narrow it back (a key longer than 64 characters would not fit: drop those rows first)."""
    op.execute("DELETE FROM pbx_record_cursors WHERE length(source) > 64")
    with op.batch_alter_table("pbx_record_cursors") as batch:
        batch.alter_column("source", type_=sa.String(64), existing_type=sa.String(128))
