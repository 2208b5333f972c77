"""Recording index, retention policies, holds, FTP accounts, exports and purge reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.tables import Base, UTCDateTime


class RecordingRow(Base):
    """One recording file; a purged row stays as a tombstone without customer data (410)."""

    __tablename__ = "recordings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512))
    channel: Mapped[str | None] = mapped_column(String(255))
    agent_no: Mapped[str | None] = mapped_column(String(64))
    skill_group: Mapped[str | None] = mapped_column(String(64))
    caller: Mapped[str | None] = mapped_column(String(255))
    callee: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    held: Mapped[bool] = mapped_column(Boolean)
    muted: Mapped[bool] = mapped_column(Boolean)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    purge_reason: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        # Newest-first search per tenant and per variable; id breaks ties for keyset paging.
        Index("ix_recordings_tenant_started_at", "tenant", "started_at", "id"),
        Index("ix_recordings_tenant_agent_no", "tenant", "agent_no", "started_at", "id"),
        Index("ix_recordings_tenant_caller", "tenant", "caller", "started_at", "id"),
        Index("ix_recordings_tenant_callee", "tenant", "callee", "started_at", "id"),
        Index("ix_recordings_tenant_skill_group", "tenant", "skill_group", "started_at", "id"),
        Index("ix_recordings_call_id", "call_id"),
        # The purge job: oldest rows of a status first.
        Index("ix_recordings_status_started_at", "status", "started_at"),
    )


class RecordingPolicyRow(Base):
    """Per-tenant recording settings: retention, automatic recording, the push-export target."""

    __tablename__ = "recording_policies"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    retention_months: Mapped[int] = mapped_column(Integer)
    auto_record: Mapped[bool] = mapped_column(Boolean)
    auto_record_groups: Mapped[list[str] | None] = mapped_column(JSON)
    export_host: Mapped[str | None] = mapped_column(String(255))
    export_port: Mapped[int | None] = mapped_column(Integer)
    export_username: Mapped[str | None] = mapped_column(String(128))
    export_password: Mapped[str | None] = mapped_column(String(1024))
    """AES-GCM token (``v1.<kid>.<data>``, ``crypto.secret_box``); never the password."""
    export_tls: Mapped[bool] = mapped_column(Boolean)
    export_dir: Mapped[str | None] = mapped_column(String(255))
    export_ca_pem: Mapped[str | None] = mapped_column(Text)
    export_time: Mapped[str | None] = mapped_column(String(5))
    """``HH:MM`` in the tenant's time zone: push the previous local day then."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CallHoldRow(Base):
    """A legal hold on every recording of one call (also ones finished later)."""

    __tablename__ = "recording_call_holds"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class FtpAccountRow(Base):
    """A read-only FTP login of one tenant; only a scrypt hash of the password is stored."""

    __tablename__ = "ftp_accounts"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    tls_required: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_ftp_accounts_tenant", "tenant"),)


class ExportJobRow(Base):
    """One push export of a tenant's recordings to its own FTP(S) server."""

    __tablename__ = "recording_exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    range_from: Mapped[datetime] = mapped_column(UTCDateTime())
    range_to: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    total_files: Mapped[int] = mapped_column(Integer)
    sent_files: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    sent_bytes: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1000))
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_recording_exports_tenant_created_at", "tenant", "created_at"),)


class ExportFileRow(Base):
    """Per-file state of an export, so a restart resumes instead of sending twice."""

    __tablename__ = "recording_export_files"

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    recording_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    remote_path: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PurgeReportRow(Base):
    """A signed report of what an off-boarding purge deleted (kept after the tenant's data)."""

    __tablename__ = "purge_reports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("ix_purge_reports_tenant", "tenant"),)


class OffboardingRow(Base):
    """Off-boarding of one terminated tenant: where it is, so a restart resumes it."""

    __tablename__ = "tenant_offboardings"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    skip_export: Mapped[bool] = mapped_column(Boolean)
    requested_by: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    export_job: Mapped[str | None] = mapped_column(String(32))
    purge_done: Mapped[int] = mapped_column(Integer)
    purge_total: Mapped[int] = mapped_column(Integer)
    report_id: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(1000))
