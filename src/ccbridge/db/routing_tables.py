"""Tables of inbound numbers, routing policies and call-back requests (migration 0015)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.access_tables import TENANT_ID_LENGTH  # also registers ``tenants``
from ccbridge.db.tables import Base, UTCDateTime

NUMBER_LENGTH = 16
_TENANT_FK = "tenants.id"


class InboundNumberRow(Base):
    """A dialled number assigned to one tenant (the primary key makes it unique across
    tenants), and the flow or skill group its calls go to (NULL: not chosen yet)."""

    __tablename__ = "inbound_numbers"

    number: Mapped[str] = mapped_column(String(NUMBER_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LENGTH), ForeignKey(_TENANT_FK))
    kind: Mapped[str] = mapped_column(String(8))
    target_type: Mapped[str | None] = mapped_column(String(8))
    target_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    assigned_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("ix_inbound_numbers_tenant_id_number", "tenant_id", "number"),)


class RoutingPolicyRow(Base):
    """The routing policy of one skill group (its entry group) as the API stored it."""

    __tablename__ = "routing_policies"

    tenant_id: Mapped[str] = mapped_column(
        String(TENANT_ID_LENGTH), ForeignKey(_TENANT_FK), primary_key=True
    )
    skill_group: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))


class CallbackRequestRow(Base):
    """A caller who waited the maximum time and asked to be called back."""

    __tablename__ = "callback_requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LENGTH), ForeignKey(_TENANT_FK))
    caller: Mapped[str] = mapped_column(String(32))
    did: Mapped[str] = mapped_column(String(NUMBER_LENGTH))
    skill_group: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str] = mapped_column(String(64))
    waited_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    agent_no: Mapped[str | None] = mapped_column(String(32))
    attempt_call_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        Index("ix_callback_requests_tenant_id_requested_at", "tenant_id", "requested_at", "id"),
        Index("ix_callback_requests_status", "status"),
    )
