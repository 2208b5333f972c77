"""Per-tenant report settings: KPI thresholds, targets and export templates (RPT-03)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.tables import Base, UTCDateTime


class ReportSettingsRow(Base):
    """One tenant's thresholds (JSON object) and templates (JSON object by report kind)."""

    __tablename__ = "report_settings"

    tenant_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    templates: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))
