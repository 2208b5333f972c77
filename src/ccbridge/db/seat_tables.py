"""Tables of agents, skill groups, dial policies, seat leases, seat sessions and state history.

Every row belongs to a tenant (``tenant_id`` references ``tenants.id``). Child rows reference
their parent by ``(tenant_id, natural key)`` so the database itself refuses to attach one
tenant's agent to another tenant's skill group.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.access_tables import TENANT_ID_LENGTH  # also registers ``tenants``
from ccbridge.db.tables import Base, UTCDateTime

AGENT_NO_LENGTH = 32
SKILL_GROUP_LENGTH = 64
PRICE_PRECISION = 12
PRICE_SCALE = 2
"""Monthly prices in yuan to the 分: up to 9 999 999 999.99, stored exactly."""

_TENANT_FK = "tenants.id"


def _tenant_column() -> Mapped[str]:
    return mapped_column(String(TENANT_ID_LENGTH), ForeignKey(_TENANT_FK), nullable=False)


class AgentRow(Base):
    """An agent (坐席人员); ``agent_no`` (工号) is unique within the tenant."""

    __tablename__ = "agents"

    tenant_id: Mapped[str] = mapped_column(
        String(TENANT_ID_LENGTH), ForeignKey(_TENANT_FK), primary_key=True
    )
    agent_no: Mapped[str] = mapped_column(String(AGENT_NO_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    certified: Mapped[bool] = mapped_column(Boolean)
    interface: Mapped[str] = mapped_column(String(255))
    seat_kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    # The primary key is UNIQUE(tenant_id, agent_no): the same 工号 may exist in two tenants.


class SkillGroupRow(Base):
    """A tenant's skill group; ``queue`` is the Asterisk queue, unique across the platform."""

    __tablename__ = "skill_groups"

    tenant_id: Mapped[str] = mapped_column(
        String(TENANT_ID_LENGTH), ForeignKey(_TENANT_FK), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(SKILL_GROUP_LENGTH), primary_key=True)
    queue: Mapped[str] = mapped_column(String(128))
    strategy: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("queue", name="uq_skill_groups_queue"),)


class DialPolicyRow(Base):
    """A tenant's dial policy: allowed and denied number prefixes (JSON lists of strings)."""

    __tablename__ = "dial_policies"

    tenant_id: Mapped[str] = mapped_column(
        String(TENANT_ID_LENGTH), ForeignKey(_TENANT_FK), primary_key=True
    )
    allow: Mapped[list[str]] = mapped_column(JSON)
    deny: Mapped[list[str]] = mapped_column(JSON)
    region: Mapped[str] = mapped_column(String(2), server_default="CN")
    limits: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    caller_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """Toll-fraud limits (``OutboundLimits`` as JSON); NULL: the defaults."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))


class AgentSkillRow(Base):
    """An agent's membership of one of its tenant's skill groups, with a level 1..10."""

    __tablename__ = "agent_skills"

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LENGTH), primary_key=True)
    agent_no: Mapped[str] = mapped_column(String(AGENT_NO_LENGTH), primary_key=True)
    skill_group: Mapped[str] = mapped_column(String(SKILL_GROUP_LENGTH), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "agent_no"],
            ["agents.tenant_id", "agents.agent_no"],
            name="fk_agent_skills_agent",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "skill_group"],
            ["skill_groups.tenant_id", "skill_groups.name"],
            name="fk_agent_skills_skill_group",
            ondelete="CASCADE",
        ),
        CheckConstraint("level BETWEEN 1 AND 10", name="level_range"),
        # Members of a group (queue membership sync) without scanning every agent.
        Index("ix_agent_skills_tenant_id_skill_group", "tenant_id", "skill_group"),
    )


class LeaseRow(Base):
    """A tenant's seat lease window; seat counts and prices per kind are in ``lease_seats``."""

    __tablename__ = "leases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = _tenant_column()
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seat_usage: Mapped[str] = mapped_column(String(16), server_default="peak")
    """``peak`` or ``seat_days``: how the statement counts seats used (docs/billing.md)."""

    __table_args__ = (Index("ix_leases_tenant_id_valid_from", "tenant_id", "valid_from", "id"),)


class LeaseSeatRow(Base):
    """Seats and monthly price of one kind in a lease; either may be absent (NULL)."""

    __tablename__ = "lease_seats"

    lease_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("leases.id", ondelete="CASCADE"), primary_key=True
    )
    seat_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    seats: Mapped[int | None] = mapped_column(Integer)
    monthly_price: Mapped[Decimal | None] = mapped_column(Numeric(PRICE_PRECISION, PRICE_SCALE))


class LeaseChangeRow(Base):
    """A change request (seat count, seat kind, skill group, IVR) with its effective date."""

    __tablename__ = "lease_changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = _tenant_column()
    kind: Mapped[str] = mapped_column(String(32))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    effective_on: Mapped[date] = mapped_column(Date)
    seats: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """New seat counts per kind value, e.g. ``{"inbound": 12}``; NULL for other changes."""
    override_by: Mapped[str | None] = mapped_column(String(128))
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index(
            "ix_lease_changes_tenant_id_effective_on",
            "tenant_id",
            "effective_on",
            "requested_at",
        ),
    )


class SeatSessionRow(Base):
    """One sign-in of an agent; at most one open row (``signed_out_at`` NULL) per 工号."""

    __tablename__ = "seat_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = _tenant_column()
    agent_no: Mapped[str] = mapped_column(String(AGENT_NO_LENGTH))
    kind: Mapped[str] = mapped_column(String(32))
    interface: Mapped[str] = mapped_column(String(255))
    signed_in_at: Mapped[datetime] = mapped_column(UTCDateTime())
    signed_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        # Utilisation: sessions of a tenant overlapping a period.
        Index("ix_seat_sessions_tenant_id_signed_in_at", "tenant_id", "signed_in_at"),
    )


# SEAT-06: one active sign-in per 工号. Both backends support partial unique indexes, so two
# racing sign-ins cannot both commit; the index also serves "open sessions of a tenant".
Index(
    "uq_seat_sessions_open_agent",
    SeatSessionRow.tenant_id,
    SeatSessionRow.agent_no,
    unique=True,
    sqlite_where=SeatSessionRow.signed_out_at.is_(None),
    postgresql_where=SeatSessionRow.signed_out_at.is_(None),
)

# One softphone carries one seat: two racing sign-ins on one device cannot both commit, and
# the sign-in check is an index lookup instead of a scan of every open session.
Index(
    "uq_seat_sessions_open_interface",
    SeatSessionRow.interface,
    unique=True,
    sqlite_where=SeatSessionRow.signed_out_at.is_(None),
    postgresql_where=SeatSessionRow.signed_out_at.is_(None),
)


class StateIntervalRow(Base):
    """How long an agent stayed in one state; at most one open row (``ended_at`` NULL)."""

    __tablename__ = "state_intervals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = _tenant_column()
    agent_no: Mapped[str] = mapped_column(String(AGENT_NO_LENGTH))
    state: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_state_intervals_tenant_id_started_at", "tenant_id", "started_at", "id"),
    )


Index(
    "uq_state_intervals_open_agent",
    StateIntervalRow.tenant_id,
    StateIntervalRow.agent_no,
    unique=True,
    sqlite_where=StateIntervalRow.ended_at.is_(None),
    postgresql_where=StateIntervalRow.ended_at.is_(None),
)


class EndpointRow(Base):
    """A phone a tenant claimed (ADR 0009): name and interface are unique across all tenants."""

    __tablename__ = "endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = _tenant_column()
    technology: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64))
    interface: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        # Claimed once: ``Local/<n>@<agents context>`` rings ``PJSIP/<n>``, so the name is
        # the phone and is unique too, not only the interface string.
        UniqueConstraint("interface", name="uq_endpoints_interface"),
        UniqueConstraint("name", name="uq_endpoints_name"),
        Index("ix_endpoints_tenant_id_name", "tenant_id", "name"),
    )
