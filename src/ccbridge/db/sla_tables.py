"""The stability incident log (contract F1): outages, affected tenants, exclusions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.tables import Base, UTCDateTime


class SlaIncidentRow(Base):
    """One incident; ``tenants`` NULL means every tenant, ``exclusion`` NULL means it counts."""

    __tablename__ = "sla_incidents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cause: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))
    tenants: Mapped[list[str] | None] = mapped_column(JSON)
    exclusion: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("ix_sla_incidents_started_at", "started_at"),)


class SlaFaultReportRow(Base):
    """A tenant's fault report (5×8 hotline, 000:188): open, then promoted or rejected."""

    __tablename__ = "sla_fault_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), ForeignKey("tenants.id", ondelete="CASCADE"))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reported_by: Mapped[str] = mapped_column(String(128))
    noticed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    incident_id: Mapped[str | None] = mapped_column(String(36))
    decided_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        Index("ix_sla_fault_reports_tenant_id_reported_at", "tenant_id", "reported_at"),
    )


class StatementRow(Base):
    """A tenant's monthly statement: its computed body and its audit trail (JSON)."""

    __tablename__ = "statements"

    tenant_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    """``YYYY-MM``."""
    model: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    trail: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
