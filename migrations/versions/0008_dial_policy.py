"""Per-tenant dial policy: allowed and denied number prefixes for transfers out.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``dial_policies`` (no row = the default policy)."""
    op.create_table(
        "dial_policies",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("allow", sa.JSON(), nullable=False),
        sa.Column("deny", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_dial_policies_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_dial_policies"),
    )


def downgrade() -> None:
    """Drop ``dial_policies``."""
    op.drop_table("dial_policies")
