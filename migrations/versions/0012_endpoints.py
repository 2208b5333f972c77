"""Tenant endpoints: the phones a tenant claimed, unique across tenants (ADR 0009).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Existing data: every distinct interface that agents and open seat sessions use is claimed for
the tenant that uses it when that is unambiguous: exactly one tenant uses the interface and
its phone name, and the interface is ``PJSIP/<name>`` or ``Local/<name>@<agents context>``
(``CCBRIDGE_AGENTS_CONTEXT``, default ``ccbridge-agents``). Anything else stays unclaimed and is
logged: such an agent cannot sign in until a tenant admin claims a phone for it, and the
reconciler stops re-adding such a seat to its queues.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from ccbridge.domain.endpoints import parse_interface
from ccbridge.settings import Settings

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    """Create ``endpoints`` and claim the interfaces in use where one tenant clearly owns them."""
    op.create_table(
        "endpoints",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("technology", sa.String(8), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("interface", sa.String(255), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_endpoints_tenant_id_tenants"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_endpoints"),
        sa.UniqueConstraint("interface", name="uq_endpoints_interface"),
        sa.UniqueConstraint("name", name="uq_endpoints_name"),
    )
    op.create_index("ix_endpoints_tenant_id_name", "endpoints", ["tenant_id", "name"])
    _claim_interfaces_in_use()


def _claim_interfaces_in_use() -> None:
    bind = op.get_bind()
    in_use = bind.execute(
        sa.text(
            "SELECT tenant_id, interface FROM agents UNION "
            "SELECT tenant_id, interface FROM seat_sessions WHERE signed_out_at IS NULL"
        )
    ).all()
    context = Settings().agents_context
    by_name: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
    for tenant_id, interface in in_use:
        parsed = parse_interface(interface, context)
        if parsed is None:
            log.warning("endpoint not claimed (not a phone of the agents context): %s", interface)
            continue
        by_name[parsed[1]].add((tenant_id, interface))
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":  # stored as naive UTC text, like UTCDateTime does
        now = now.replace(tzinfo=None)
    table = sa.table(
        "endpoints",
        *(
            sa.column(c)
            for c in ("id", "tenant_id", "technology", "name", "interface", "description")
        ),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("created_by"),
    )
    rows = []
    for name, users in sorted(by_name.items()):
        if len(users) != 1:
            log.warning("endpoint not claimed (used by several tenants or interfaces): %s", name)
            continue
        ((tenant_id, interface),) = users
        parsed = parse_interface(interface, context)
        assert parsed is not None
        rows.append(
            {
                "id": uuid.uuid4().hex,
                "tenant_id": tenant_id,
                "technology": parsed[0].value,
                "name": name,
                "interface": interface,
                "description": "claimed by migration 0012",
                "created_at": now,
                "created_by": "system:migration-0012",
            }
        )
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    """Drop ``endpoints`` (agents keep their interface strings)."""
    op.drop_index("ix_endpoints_tenant_id_name", table_name="endpoints")
    op.drop_table("endpoints")
