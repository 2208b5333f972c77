"""Recording resources: the index row with the four call variables, links, holds, FTP, exports."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ccbridge.domain.recordings.export import ExportJob, ExportStatus
from ccbridge.domain.recordings.model import FtpAccount, Recording, RecordingStatus


class RecordingOut(BaseModel):
    """One indexed recording."""

    id: str
    call_id: str = Field(description="Asterisk Linkedid of the recorded call")
    tenant: str
    status: RecordingStatus = Field(description="only `ok` recordings are offered")
    agent_no: str | None = Field(description="工号")
    skill_group: str | None = Field(description="技能组")
    caller: str | None = Field(description="主叫")
    callee: str | None = Field(description="被叫")
    started_at: datetime
    ended_at: datetime | None
    duration_ms: int | None
    size_bytes: int | None
    sha256: str | None
    held: bool
    muted: bool = Field(description="paused (writing silence) right now")
    path: str = Field(
        description="relative path, as the FTP service shows it under the tenant root"
    )

    @classmethod
    def of(cls, rec: Recording) -> RecordingOut:
        """Map the domain record."""
        return cls(
            id=rec.id,
            call_id=rec.call_id,
            tenant=rec.tenant,
            status=rec.status,
            agent_no=rec.agent_no,
            skill_group=rec.skill_group,
            caller=rec.caller,
            callee=rec.callee,
            started_at=rec.started_at,
            ended_at=rec.ended_at,
            duration_ms=rec.duration_ms,
            size_bytes=rec.size_bytes,
            sha256=rec.sha256,
            held=rec.held,
            muted=rec.muted,
            path="/" + rec.path.split("/", 1)[1],
        )


class RecordingPage(BaseModel):
    """A page of recordings, newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[RecordingOut]
    next_cursor: str | None


def encode_cursor(rec: Recording) -> str:
    """The keyset position after *rec* (same format as the calls cursor)."""
    raw = f"{rec.started_at.isoformat()}|{rec.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class LinkOut(BaseModel):
    """A short-lived signed download URL (works without an Authorization header)."""

    url: str
    expires_at: datetime


class ControlIn(BaseModel):
    """Start/stop/pause/resume the recording of an agent's current call."""

    action: str = Field(pattern="^(start|stop|pause|resume)$")


class HoldIn(BaseModel):
    """A legal hold: the purge skips held recordings."""

    held: bool = True
    reason: str = Field("", max_length=255)


class FtpAccountIn(BaseModel):
    """A new read-only FTP login for the tenant."""

    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    tls_required: bool = True


class FtpAccountOut(BaseModel):
    """An FTP login (the password is only in the create response, once)."""

    username: str
    tenant: str
    tls_required: bool
    created_at: datetime
    disabled_at: datetime | None
    password: str | None = Field(None, description="shown once, at creation")

    @classmethod
    def of(cls, account: FtpAccount, password: str | None = None) -> FtpAccountOut:
        """Map the domain record."""
        return cls(
            username=account.username,
            tenant=account.tenant,
            tls_required=account.tls_required,
            created_at=account.created_at,
            disabled_at=account.disabled_at,
            password=password,
        )


class ExportIn(BaseModel):
    """An on-demand export of recordings started in ``[range_from, range_to)``."""

    range_from: datetime
    range_to: datetime


class ExportOut(BaseModel):
    """An export job and its progress."""

    id: str
    tenant: str
    kind: str
    status: ExportStatus
    range_from: datetime
    range_to: datetime
    total_files: int
    sent_files: int
    total_bytes: int
    sent_bytes: int
    progress: float = Field(description="share of bytes delivered, 0..1")
    attempts: int
    error: str | None
    report: dict[str, Any] | None

    @classmethod
    def of(cls, job: ExportJob) -> ExportOut:
        """Map the domain record."""
        return cls(
            id=job.id,
            tenant=job.tenant,
            kind=job.kind,
            status=job.status,
            range_from=job.range_from,
            range_to=job.range_to,
            total_files=job.total_files,
            sent_files=job.sent_files,
            total_bytes=job.total_bytes,
            sent_bytes=job.sent_bytes,
            progress=round(job.progress, 4),
            attempts=job.attempts,
            error=job.error,
            report=job.report,
        )
