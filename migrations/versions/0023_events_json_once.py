"""Journal events store their JSON once: ``events.data`` NULL where the envelope holds it.

Since migration 0011 every event was written twice, as ``data`` (JSON) and inside the
pre-encoded ``envelope`` (bytes). The writers now store only the envelope and readers take
``data`` from it (ADR 0029, issue 16 B8). Upgrade makes ``data`` nullable and clears it on
every row that has an envelope; rows written before 0011 (no envelope) keep theirs.
Downgrade copies ``data`` back out of the envelope and makes the column NOT NULL again.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FROM_ENVELOPE = {
    # The envelope is compact UTF-8 JSON whose last member is "data".
    "sqlite": "json_extract(CAST(envelope AS TEXT), '$.data')",
    "postgresql": "(convert_from(envelope, 'UTF8')::json -> 'data')",
}


def upgrade() -> None:
    """Make ``data`` nullable, then keep each event's JSON only in its envelope."""
    with op.batch_alter_table("events") as batch:
        batch.alter_column("data", existing_type=sa.JSON(), nullable=True)
    op.execute("UPDATE events SET data = NULL WHERE envelope IS NOT NULL")


def downgrade() -> None:
    """Copy ``data`` back out of the envelope; NOT NULL again."""
    dialect = op.get_bind().dialect.name
    op.execute(f"UPDATE events SET data = {_FROM_ENVELOPE[dialect]} WHERE data IS NULL")  # noqa: S608  (constant text)
    with op.batch_alter_table("events") as batch:
        batch.alter_column("data", existing_type=sa.JSON(), nullable=False)
