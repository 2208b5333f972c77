"""Stored answers of telephony POSTs by ``Idempotency-Key``: a replay gets the first answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.access_tables import TENANT_ID_LENGTH  # also registers ``tenants``
from ccbridge.db.tables import Base, UTCDateTime

KEY_LENGTH = 128


class IdempotencyKeyRow(Base):
    """One key of one tenant: who sent it, the request's fingerprint and the stored answer.

    ``status`` is NULL while the first request is still running (a concurrent replay then
    answers 409 instead of dialling a second time).
    """

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(
        String(TENANT_ID_LENGTH), ForeignKey("tenants.id"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    actor: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
