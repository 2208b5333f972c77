"""Create agents, skill groups, seat leases, seat sessions and agent state history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_id(*, primary_key: bool = False) -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(64), nullable=False, primary_key=primary_key)


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def upgrade() -> None:
    """Create the seat tables (hand-written; mirrors ccbridge.db.seat_tables)."""
    op.create_table(
        "agents",
        _tenant_id(),
        sa.Column("agent_no", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("certified", sa.Boolean(), nullable=False),
        sa.Column("interface", sa.String(255), nullable=False),
        sa.Column("seat_kind", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("agents"),
        sa.PrimaryKeyConstraint("tenant_id", "agent_no", name=op.f("pk_agents")),
    )
    op.create_table(
        "skill_groups",
        _tenant_id(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("queue", sa.String(128), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("skill_groups"),
        sa.PrimaryKeyConstraint("tenant_id", "name", name=op.f("pk_skill_groups")),
        sa.UniqueConstraint("queue", name="uq_skill_groups_queue"),
    )
    op.create_table(
        "agent_skills",
        _tenant_id(),
        sa.Column("agent_no", sa.String(32), nullable=False),
        sa.Column("skill_group", sa.String(64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.CheckConstraint("level BETWEEN 1 AND 10", name=op.f("ck_agent_skills_level_range")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "agent_no"],
            ["agents.tenant_id", "agents.agent_no"],
            name="fk_agent_skills_agent",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "skill_group"],
            ["skill_groups.tenant_id", "skill_groups.name"],
            name="fk_agent_skills_skill_group",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "agent_no", "skill_group", name=op.f("pk_agent_skills")
        ),
    )
    op.create_index(
        "ix_agent_skills_tenant_id_skill_group",
        "agent_skills",
        ["tenant_id", "skill_group"],
        unique=False,
    )
    op.create_table(
        "leases",
        sa.Column("id", sa.String(36), nullable=False),
        _tenant_id(),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("leases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leases")),
    )
    op.create_index(
        "ix_leases_tenant_id_valid_from", "leases", ["tenant_id", "valid_from", "id"], unique=False
    )
    op.create_table(
        "lease_seats",
        sa.Column("lease_id", sa.String(36), nullable=False),
        sa.Column("seat_kind", sa.String(32), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=True),
        sa.Column("monthly_price", sa.Numeric(12, 2), nullable=True),
        sa.ForeignKeyConstraint(
            ["lease_id"],
            ["leases.id"],
            name=op.f("fk_lease_seats_lease_id_leases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lease_id", "seat_kind", name=op.f("pk_lease_seats")),
    )
    op.create_table(
        "lease_changes",
        sa.Column("id", sa.String(36), nullable=False),
        _tenant_id(),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("seats", sa.JSON(), nullable=True),
        sa.Column("override_by", sa.String(128), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk("lease_changes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lease_changes")),
    )
    op.create_index(
        "ix_lease_changes_tenant_id_effective_on",
        "lease_changes",
        ["tenant_id", "effective_on", "requested_at"],
        unique=False,
    )
    op.create_table(
        "seat_sessions",
        sa.Column("id", sa.String(36), nullable=False),
        _tenant_id(),
        sa.Column("agent_no", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("interface", sa.String(255), nullable=False),
        sa.Column("signed_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _tenant_fk("seat_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seat_sessions")),
    )
    op.create_index(
        "ix_seat_sessions_tenant_id_signed_in_at",
        "seat_sessions",
        ["tenant_id", "signed_in_at"],
        unique=False,
    )
    open_session = sa.text("signed_out_at IS NULL")
    op.create_index(
        "uq_seat_sessions_open_agent",
        "seat_sessions",
        ["tenant_id", "agent_no"],
        unique=True,
        sqlite_where=open_session,
        postgresql_where=open_session,
    )
    op.create_table(
        "state_intervals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _tenant_id(),
        sa.Column("agent_no", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        _tenant_fk("state_intervals"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_intervals")),
    )
    op.create_index(
        "ix_state_intervals_tenant_id_started_at",
        "state_intervals",
        ["tenant_id", "started_at", "id"],
        unique=False,
    )
    open_interval = sa.text("ended_at IS NULL")
    op.create_index(
        "uq_state_intervals_open_agent",
        "state_intervals",
        ["tenant_id", "agent_no"],
        unique=True,
        sqlite_where=open_interval,
        postgresql_where=open_interval,
    )


def downgrade() -> None:
    """Drop the seat tables, children first."""
    op.drop_index("uq_state_intervals_open_agent", table_name="state_intervals")
    op.drop_index("ix_state_intervals_tenant_id_started_at", table_name="state_intervals")
    op.drop_table("state_intervals")
    op.drop_index("uq_seat_sessions_open_agent", table_name="seat_sessions")
    op.drop_index("ix_seat_sessions_tenant_id_signed_in_at", table_name="seat_sessions")
    op.drop_table("seat_sessions")
    op.drop_index("ix_lease_changes_tenant_id_effective_on", table_name="lease_changes")
    op.drop_table("lease_changes")
    op.drop_table("lease_seats")
    op.drop_index("ix_leases_tenant_id_valid_from", table_name="leases")
    op.drop_table("leases")
    op.drop_index("ix_agent_skills_tenant_id_skill_group", table_name="agent_skills")
    op.drop_table("agent_skills")
    op.drop_table("skill_groups")
    op.drop_table("agents")
