"""Tables of tenants, API keys and the append-only audit log.

``audit_log`` is append-only in the database itself: migration 0002 installs triggers on SQLite
and PostgreSQL that make every UPDATE and DELETE fail.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.tables import Base, UTCDateTime
from ccbridge.domain.ha.placement import DEFAULT_PBX_ID

TENANT_ID_LENGTH = 64
"""Column width (the slug itself is at most 32 characters); matches ``calls.tenant``."""


class TenantRow(Base):
    """A client company; ``id`` is the slug used as ``CCB_TENANT`` and queue prefix."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(TENANT_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    business_contact: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    technical_contact: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pbx_id: Mapped[str] = mapped_column(String(64), server_default=DEFAULT_PBX_ID)
    """The PBX the tenant is placed on (ADR 0033)."""


class ApiKeyRow(Base):
    """An API key; only the SHA-256 of its secret is stored. ``tenant_id`` NULL = platform."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(
        String(TENANT_ID_LENGTH), ForeignKey("tenants.id")
    )
    role: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    name: Mapped[str] = mapped_column(String(200))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_api_keys_tenant_id", "tenant_id"),)


class AuditRow(Base):
    """One audit entry: who (actor) did what (action on object) when (at), in which tenant."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    tenant_id: Mapped[str | None] = mapped_column(String(TENANT_ID_LENGTH))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_log_tenant_id_id", "tenant_id", "id"),)
