"""Agent-dialled calls of the last hour per tenant: the outbound rate and concurrency caps
count here, so they survive a restart and hold for every process (ADR 0014)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.access_tables import TENANT_ID_LENGTH  # also registers ``tenants``
from ccbridge.db.tables import Base, UTCDateTime


class OutboundDialRow(Base):
    """One agent-dialled call (click-to-call, a 3-way party, a transfer out) of a tenant."""

    __tablename__ = "outbound_dials"

    tenant_id: Mapped[str] = mapped_column(
        String(TENANT_ID_LENGTH), ForeignKey("tenants.id"), primary_key=True
    )
    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_no: Mapped[str] = mapped_column(String(32))
    dialled_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_outbound_dials_tenant_id_dialled_at", "tenant_id", "dialled_at"),)
