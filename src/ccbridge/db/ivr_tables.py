"""Tables of IVR flows: drafts, immutable published revisions, prompts and per-call IVR logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.access_tables import TENANT_ID_LENGTH  # also registers ``tenants``
from ccbridge.db.tables import Base, UTCDateTime

FLOW_ID_LENGTH = 64


class IvrFlowRow(Base):
    """A tenant's flow and its editable draft (``draft_version`` guards concurrent edits)."""

    __tablename__ = "ivr_flows"

    tenant_id: Mapped[str] = mapped_column(
        String(TENANT_ID_LENGTH), ForeignKey("tenants.id"), primary_key=True
    )
    flow_id: Mapped[str] = mapped_column(String(FLOW_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    draft: Mapped[dict[str, Any]] = mapped_column(JSON)
    draft_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))


class IvrRevisionRow(Base):
    """A published revision; the document never changes, only ``activated_at`` is set once."""

    __tablename__ = "ivr_revisions"

    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LENGTH), primary_key=True)
    flow_id: Mapped[str] = mapped_column(String(FLOW_ID_LENGTH), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rollback_of: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "flow_id"],
            ["ivr_flows.tenant_id", "ivr_flows.flow_id"],
            name="fk_ivr_revisions_flow",
            ondelete="CASCADE",
        ),
        # The activation job scans pending revisions by due time.
        Index("ix_ivr_revisions_effective_at", "effective_at"),
    )


class IvrPromptRow(Base):
    """An uploaded prompt: flows use ``prompt_id``; the file name on disk is generated."""

    __tablename__ = "ivr_prompts"

    tenant_id: Mapped[str] = mapped_column(
        String(TENANT_ID_LENGTH), ForeignKey("tenants.id"), primary_key=True
    )
    prompt_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    file_name: Mapped[str] = mapped_column(String(128))
    bytes: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class IvrCallLogRow(Base):
    """One call's walk through a flow: path, steps (choices), outcome and drop-off node."""

    __tablename__ = "ivr_call_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(TENANT_ID_LENGTH))
    flow_id: Mapped[str] = mapped_column(String(FLOW_ID_LENGTH))
    revision: Mapped[int] = mapped_column(Integer)
    uniqueid: Mapped[str] = mapped_column(String(64))
    caller: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    path: Mapped[list[str]] = mapped_column(JSON)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    route: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    drop_off_node: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_ivr_call_logs_tenant_id_started_at", "tenant_id", "started_at", "id"),
    )
