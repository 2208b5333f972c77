"""Declarative tables; the single source of truth that Alembic revisions must match."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names so SQLite batch migrations can find and alter them."""


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC and always hand back aware UTC, even from SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive values (ambiguous wall time) and normalise to UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; pass an aware UTC time")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite keeps text without an offset; uniform naive-UTC text sorts correctly.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self,
        value: datetime | None,
        dialect: Dialect,  # noqa: ARG002  (signature fixed by SQLAlchemy)
    ) -> datetime | None:
        """Attach UTC to SQLite's naive values and convert others to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        """Tell SQLAlchemy the Python type this column yields."""
        return datetime


class Base(DeclarativeBase):
    """Declarative base sharing one MetaData with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime()}  # noqa: RUF012


class CallRow(Base):
    """One conversation (Asterisk ``Linkedid``) as last reported by the call tracker."""

    __tablename__ = "calls"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    caller: Mapped[str | None] = mapped_column(String(255))
    caller_name: Mapped[str | None] = mapped_column(String(255))
    callee: Mapped[str | None] = mapped_column(String(255))
    skill_group: Mapped[str | None] = mapped_column(String(64))
    agent_no: Mapped[str | None] = mapped_column(String(64))
    agent_interface: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(255))
    legs: Mapped[list[str]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        # Newest-first listing per tenant; call_id breaks ties for keyset pagination. Both
        # SQLite and PostgreSQL scan a B-tree backwards for ORDER BY started_at DESC, call_id
        # DESC, so ascending columns serve it; a DESC index is not reflected by SQLite and
        # would make migration-vs-metadata comparison report a false diff.
        Index(
            "ix_calls_tenant_started_at",
            "tenant",
            "started_at",
            "call_id",
        ),
        # Cross-tenant listing (operator view) and retention sweeps by age.
        Index("ix_calls_started_at", "started_at", "call_id"),
        # Sticky routing: the last agent who answered a tenant's caller (migration 0015).
        Index("ix_calls_tenant_caller_started_at", "tenant", "caller", "started_at"),
    )


class PbxRecordCursorRow(Base):
    """How far ccbridge has read a PBX record source (the backfill after an AMI gap, ADR 0013)."""

    __tablename__ = "pbx_record_cursors"

    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    """``queue_log``, or ``queue_log@<pbx id>`` for each PBX but the default (ADR 0033)."""
    position: Mapped[datetime] = mapped_column(UTCDateTime())
    """Time of the newest record read; the next backfill rereads from a lookback before it."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
