"""The stability incident log (contract F1): outages, affected tenants, exclusions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
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
