"""Per-tenant report settings (RPT-03) and the 15-minute report tallies (ADR 0019)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.seat_tables import StateIntervalRow
from ccbridge.db.tables import Base, CallRow, UTCDateTime


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


def _tenant_fk() -> Mapped[str]:
    return mapped_column(String(64), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)


class ReportCallBucketRow(Base):
    """15-minute call tally of one (tenant, skill group, agent): what reports sum (ADR 0019)."""

    __tablename__ = "report_call_buckets"

    tenant_id: Mapped[str] = _tenant_fk()
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    skill_group: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    offered: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    answered_within_t: Mapped[int] = mapped_column(Integer)
    abandoned: Mapped[int] = mapped_column(Integer)
    short_abandoned: Mapped[int] = mapped_column(Integer)
    wait_answered_s: Mapped[float] = mapped_column(Float)
    longest_wait_s: Mapped[float] = mapped_column(Float)
    talk_s: Mapped[float] = mapped_column(Float)
    wrap_s: Mapped[float] = mapped_column(Float)
    transfers: Mapped[int] = mapped_column(Integer)
    billable: Mapped[int] = mapped_column(Integer)
    outbound: Mapped[int] = mapped_column(Integer)


class ReportSeatBucketRow(Base):
    """15-minute seat time and work of one agent (closed state intervals only)."""

    __tablename__ = "report_seat_buckets"

    tenant_id: Mapped[str] = _tenant_fk()
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    agent_no: Mapped[str] = mapped_column(String(64), primary_key=True)
    signed_in_s: Mapped[float] = mapped_column(Float)
    ready_s: Mapped[float] = mapped_column(Float)
    not_ready_s: Mapped[float] = mapped_column(Float)
    break_s: Mapped[float] = mapped_column(Float)
    talk_s: Mapped[float] = mapped_column(Float)
    wrap_s: Mapped[float] = mapped_column(Float)
    handled: Mapped[int] = mapped_column(Integer)
    billable: Mapped[int] = mapped_column(Integer)
    outbound: Mapped[int] = mapped_column(Integer)
    not_ready_by_reason: Mapped[dict[str, float]] = mapped_column(JSON)


class ReportTallyStateRow(Base):
    """How far a tenant's tallies are maintained: coverage, settings and change cursors."""

    __tablename__ = "report_tally_state"

    tenant_id: Mapped[str] = _tenant_fk()
    fingerprint: Mapped[str] = mapped_column(String(64))
    covered_from: Mapped[datetime] = mapped_column(UTCDateTime())
    calls_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    spans_seen_id: Mapped[int] = mapped_column(Integer)
    open_spans: Mapped[list[int]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportTallyDirtyRow(Base):
    """A UTC day whose tallies must be recomputed (reports compute it from raw rows till then)."""

    __tablename__ = "report_tally_dirty"

    tenant_id: Mapped[str] = _tenant_fk()
    day_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)


class ReportCallLineRow(Base):
    """One call's flat report line (``domain.reports.call_lines.CallLine``), kept per UTC day
    of its queue entry (or start) by the tally job beside that day's tallies (migration 0020)."""

    __tablename__ = "report_call_lines"

    tenant_id: Mapped[str] = _tenant_fk()
    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    """When the call counts (queue entry, else start): the day the line belongs to."""
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_local: Mapped[str] = mapped_column(String(40))
    queued_local: Mapped[str | None] = mapped_column(String(40))
    answered_local: Mapped[str | None] = mapped_column(String(40))
    ended_local: Mapped[str | None] = mapped_column(String(40))
    agent_no: Mapped[str | None] = mapped_column(String(64))
    call_agent: Mapped[str | None] = mapped_column(String(64))
    agents: Mapped[str] = mapped_column(Text)
    skill_group: Mapped[str | None] = mapped_column(String(64))
    caller: Mapped[str | None] = mapped_column(String(255))
    callee: Mapped[str | None] = mapped_column(String(255))
    wait_s: Mapped[float | None] = mapped_column(Float)
    talk_s: Mapped[float] = mapped_column(Float)
    transfers: Mapped[int] = mapped_column(Integer)
    disposition: Mapped[str] = mapped_column(String(32))
    recorded: Mapped[bool] = mapped_column(Boolean)
    inbound: Mapped[bool] = mapped_column(Boolean)
    answered: Mapped[bool] = mapped_column(Boolean)
    answered_within_t: Mapped[bool] = mapped_column(Boolean)
    abandoned: Mapped[bool] = mapped_column(Boolean)
    short_abandoned: Mapped[bool] = mapped_column(Boolean)
    billable: Mapped[bool] = mapped_column(Boolean)
    region: Mapped[str] = mapped_column(Text)
    carrier: Mapped[str] = mapped_column(Text)
    ivr_path: Mapped[str] = mapped_column(Text)
    vip_tier: Mapped[str] = mapped_column(Text)
    """From a channel variable: any length (like the IVR path)."""
    hour: Mapped[str] = mapped_column(String(2))

    __table_args__ = (Index("ix_report_call_lines_tenant_id_at", "tenant_id", "at"),)


Index("ix_calls_tenant_updated_at", CallRow.tenant, CallRow.updated_at)
"""Change detection for the tallies: calls written since the cursor (migration 0018)."""
Index(
    "ix_state_intervals_tenant_ended_at",
    StateIntervalRow.tenant_id,
    StateIntervalRow.ended_at,
    StateIntervalRow.started_at,
)
"""Long state intervals still running at a window's start, found by their end (0018)."""


class ReportArchiveRow(Base):
    """One generated report of a completed period, kept as a file with its SHA-256."""

    __tablename__ = "report_archives"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), ForeignKey("tenants.id", ondelete="CASCADE"))
    report: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(16))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    format: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "report", "period", "first_day", name="uq_report_archives_period"
        ),
        Index("ix_report_archives_tenant_id_first_day", "tenant_id", "first_day"),
    )
