"""Each PBX's Asterisk ``systemname`` in its lease row, unique (issue 20 item 4, ADR 0033).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04

Asterisk prefixes every ``Uniqueid`` and ``Linkedid`` with its ``systemname``; two PBXs on one
database must not share one, or their call ids collide. The owner writes the name it read at
AMI login (``CoreSettings``); the unique index makes the second PBX with the same name fail
to write it, in one statement, however close the two logins are. ``NULL`` is "not read yet";
an empty string is a PBX with no ``systemname`` (plain ids), and one PBX may have it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``pbx_owners.system_name`` with a unique index (``NULL`` rows never clash)."""
    with op.batch_alter_table("pbx_owners") as batch:
        batch.add_column(sa.Column("system_name", sa.String(64), nullable=True))
        batch.create_index("uq_pbx_owners_system_name", ["system_name"], unique=True)


def downgrade() -> None:
    """Drop the index and the column."""
    with op.batch_alter_table("pbx_owners") as batch:
        batch.drop_index("uq_pbx_owners_system_name")
        batch.drop_column("system_name")
