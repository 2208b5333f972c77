"""Per-tenant floor rules and the floor alerts they raised (docs/wallboard.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.tables import Base, UTCDateTime


class FloorRulesRow(Base):
    """A tenant's overrides of the platform's floor rules (JSON, as the API took them)."""

    __tablename__ = "floor_rules"

    tenant_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))


class FloorAlertRow(Base):
    """One alert episode: open while ``cleared_at`` is null."""

    __tablename__ = "floor_alerts"
    __table_args__ = (
        Index("ix_floor_alerts_tenant_raised", "tenant_id", "raised_at"),
        Index("ix_floor_alerts_open", "cleared_at", "tenant_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), ForeignKey("tenants.id", ondelete="CASCADE"))
    episode_key: Mapped[str] = mapped_column(String(255))
    rule: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    agent_no: Mapped[str | None] = mapped_column(String(32))
    skill_group: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    message: Mapped[str] = mapped_column(Text)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
