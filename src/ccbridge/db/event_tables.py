"""Tables of the CRM event journal (outbox), call parameters and webhook delivery state.

``events`` is append-only per tenant: ``(tenant, seq)`` is the public cursor. ``seq`` comes
from ``event_counters``, one row per tenant that each writing transaction locks until it
commits, so a tenant's events become visible strictly in ``seq`` order (ADR 0008).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.tables import Base, UTCDateTime

TENANT_LENGTH = 64


class EventCounterRow(Base):
    """The last ``seq`` handed out per tenant; its row lock orders the tenant's commits."""

    __tablename__ = "event_counters"

    tenant: Mapped[str] = mapped_column(String(TENANT_LENGTH), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class EventRow(Base):
    """One journal event; never updated, deleted only by the retention job."""

    __tablename__ = "events"

    tenant: Mapped[str] = mapped_column(String(TENANT_LENGTH), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """NULL where ``envelope`` holds the event (every row from migration 0023 on: the JSON is
    stored once, and readers take ``data`` from the envelope; ADR 0029). Only rows written
    before migration 0011, which have no envelope, keep it."""
    envelope: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The compact JSON envelope, encoded once at append and served as is (NULL on rows
    written before migration 0011, which are encoded on read)."""
    has_extras: Mapped[bool | None] = mapped_column(Boolean)
    """Whether ``data.extras`` is non-empty (then the tenant's switches filter it)."""

    __table_args__ = (
        # A call's events in order (replay, export) and the retention sweep by age.
        Index("ix_events_tenant_call_id", "tenant", "call_id", "seq"),
        Index("ix_events_recorded_at", "recorded_at"),
    )


class CallParamsRow(Base):
    """The four variables per leg, offers, transfers and extras of one call (JSON detail)."""

    __tablename__ = "call_params"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(TENANT_LENGTH))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventSettingsRow(Base):
    """Per-tenant switches: extras exposed, sandbox mode, private webhook targets allowed."""

    __tablename__ = "event_settings"

    tenant: Mapped[str] = mapped_column(String(TENANT_LENGTH), primary_key=True)
    extras: Mapped[list[str]] = mapped_column(JSON)
    sandbox: Mapped[bool] = mapped_column(Boolean)
    allow_private: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookEndpointRow(Base):
    """A tenant's webhook subscription and its delivery cursor (survives a restart)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(TENANT_LENGTH), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    secrets: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    cursor: Mapped[int] = mapped_column(BigInteger)
    """Last journal ``seq`` of the tenant handled (delivered, or given up after 3 days)."""
    attempts: Mapped[int] = mapped_column(Integer)
    """Failed attempts of the event after ``cursor`` (the head of this endpoint's queue)."""
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claim_seq: Mapped[int | None] = mapped_column(BigInteger)
    """The head event a node is sending (ADR 0030); cleared by the mark of its outcome."""
    claim_node: Mapped[str | None] = mapped_column(String(128))
    claim_epoch: Mapped[int | None] = mapped_column(BigInteger)
    """The claimant's fencing term (0 with a single node)."""
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookDeliveryRow(Base):
    """One delivery attempt (the delivery log) or a queued manual redelivery/replay."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(String(36))
    tenant: Mapped[str] = mapped_column(String(TENANT_LENGTH))
    event_seq: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    """``queued`` (manual, not yet sent), ``succeeded`` or ``failed``."""
    manual: Mapped[bool] = mapped_column(Boolean)
    attempt: Mapped[int] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_id", "endpoint_id", "id"),
        # The delivery-log retention sweep by age.
        Index("ix_webhook_deliveries_at", "at"),
    )
