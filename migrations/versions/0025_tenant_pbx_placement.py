"""The PBX each tenant is placed on (issue 20 item 4, ADR 0033).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03

Every existing tenant gets ``default``, the PBX id of a node that names none. A node whose
``CCBRIDGE_HA__PBX_ID`` is another id adopts them at start-up: ``default`` names no PBX the
database knows, so those placements are orphans (ADR 0033).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``tenants.pbx_id``."""
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("pbx_id", sa.String(64), nullable=False, server_default="default")
        )


def downgrade() -> None:
    """Drop ``tenants.pbx_id``."""
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("pbx_id")
