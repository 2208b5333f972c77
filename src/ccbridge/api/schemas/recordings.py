"""Recording resources: the index row with the four call variables, links, holds, FTP, exports."""

from __future__ import annotations

import base64
import ssl
from datetime import datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ccbridge.domain.recordings.export import (
    ExportJob,
    ExportStatus,
    Offboarding,
    OffboardingStatus,
)
from ccbridge.domain.recordings.model import (
    FtpAccount,
    Recording,
    RecordingPolicy,
    RecordingStatus,
)
from ccbridge.services.recording_policy import ExportTargetChange, PolicyChange


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

    @field_validator("range_to")
    @classmethod
    def _after_range_from(cls, value: datetime, info: ValidationInfo) -> datetime:
        """An empty or inverted range is a faulty field (422 on ``body.range_to``)."""
        start = info.data.get("range_from")
        if start is None:
            return value
        if (start.tzinfo is None) != (value.tzinfo is None):
            raise ValueError("give range_from and range_to both with a UTC offset, or neither")
        if value <= start:
            raise ValueError("range_to must be after range_from")
        return value


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


_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class ExportTargetIn(BaseModel):
    """The tenant's own FTP(S) server that recordings are pushed to, and when."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=253, description="host name or IP address")
    port: int = Field(21, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=128)
    password: str | None = Field(
        None,
        max_length=255,
        description="write-only (encrypted at rest, never returned); omit to keep the stored one",
    )
    tls: bool = Field(True, description="require explicit FTPS (AUTH TLS); false: plain FTP")
    directory: str = Field("/", max_length=255, description="absolute remote directory")
    ca_pem: str | None = Field(
        None,
        max_length=65536,
        description="PEM certificate(s) to trust for this server (e.g. its self-signed cert); "
        "omitted: the system CA store",
    )
    schedule_time: str | None = Field(
        None,
        pattern=_HHMM,
        description="HH:MM in the tenant's time zone: push the previous local day nightly then; "
        "omitted: on-demand exports only",
    )

    @field_validator("ca_pem")
    @classmethod
    def _loads_as_certificates(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ssl.create_default_context(cadata=value)
        except (ssl.SSLError, ValueError):
            raise ValueError("must be PEM certificate(s) that load as a CA") from None
        return value

    def change(self) -> ExportTargetChange:
        """The service's view."""
        at = None
        if self.schedule_time is not None:
            hour, minute = self.schedule_time.split(":")
            at = time(int(hour), int(minute))
        return ExportTargetChange(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            tls=self.tls,
            directory=self.directory,
            ca_pem=self.ca_pem,
            schedule_time=at,
        )


class RecordingPolicyIn(BaseModel):
    """A tenant's whole recording policy (PUT replaces it; the password is kept if omitted)."""

    model_config = ConfigDict(extra="forbid")

    retention_months: int = Field(
        1, ge=1, le=120, description="calendar months (docs/recordings.md#retention)"
    )
    auto_record: bool = Field(True, description="record answered queue calls automatically")
    auto_record_groups: list[str] | None = Field(
        None, max_length=200, description="only these skill groups; null: every group"
    )
    export: ExportTargetIn | None = Field(None, description="null: no push export")

    def change(self) -> PolicyChange:
        """The service's view."""
        groups = self.auto_record_groups
        return PolicyChange(
            retention_months=self.retention_months,
            auto_record=self.auto_record,
            auto_record_groups=None if groups is None else tuple(groups),
            export=None if self.export is None else self.export.change(),
        )


class ExportTargetOut(BaseModel):
    """The export target as stored (the password only as ``password_set``)."""

    host: str
    port: int
    username: str
    password_set: bool
    tls: bool
    directory: str
    ca_pem: str | None
    schedule_time: str | None = Field(description="HH:MM in the tenant's time zone")


class RecordingPolicyOut(BaseModel):
    """A tenant's recording policy."""

    tenant: str
    timezone: str = Field(description="the tenant's zone, in which schedule_time is read")
    retention_months: int
    auto_record: bool
    auto_record_groups: list[str] | None
    export: ExportTargetOut | None

    @classmethod
    def of(cls, policy: RecordingPolicy) -> RecordingPolicyOut:
        """Map the domain record (never the password)."""
        t = policy.export_target
        at = policy.export_time
        export = None
        if t is not None:
            export = ExportTargetOut(
                host=t.host,
                port=t.port,
                username=t.username,
                password_set=bool(t.password),
                tls=t.tls,
                directory=t.directory,
                ca_pem=t.ca_pem,
                schedule_time=None if at is None else at.strftime("%H:%M"),
            )
        groups = policy.auto_record_groups
        return cls(
            tenant=policy.tenant,
            timezone=policy.timezone,
            retention_months=policy.retention_months,
            auto_record=policy.auto_record,
            auto_record_groups=None if groups is None else list(groups),
            export=export,
        )


class OffboardingIn(BaseModel):
    """Start off-boarding a terminated tenant: final export, then purge."""

    model_config = ConfigDict(extra="forbid")

    skip_export: bool = Field(
        False, description="purge without a final export (the client waived it)"
    )


class PurgeProgressOut(BaseModel):
    """Recordings deleted so far of those the purge found."""

    done: int
    total: int


class OffboardingOut(BaseModel):
    """Where a tenant's off-boarding is, with the final export's and the purge's progress."""

    tenant: str
    status: OffboardingStatus
    skip_export: bool
    requested_by: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    export: ExportOut | None = Field(description="the final export job (progress in bytes)")
    purge: PurgeProgressOut
    report_id: str | None = Field(description="the signed purge report, once done")
    error: str | None

    @classmethod
    def of(cls, state: Offboarding, export: ExportJob | None) -> OffboardingOut:
        """Map the domain record."""
        return cls(
            tenant=state.tenant,
            status=state.status,
            skip_export=state.skip_export,
            requested_by=state.requested_by,
            started_at=state.started_at,
            updated_at=state.updated_at,
            finished_at=state.finished_at,
            export=None if export is None else ExportOut.of(export),
            purge=PurgeProgressOut(done=state.purge_done, total=state.purge_total),
            report_id=state.report_id,
            error=state.error,
        )


class PurgeReportOut(BaseModel):
    """A signed purge report: verify ``signature`` over ``purge-report|`` + canonical JSON."""

    manifest: dict[str, Any]
    signature: str = Field(description="base64 Ed25519 (legacy reports: HMAC-SHA256 hex)")


class PublicKeyOut(BaseModel):
    """The key clients verify purge reports with."""

    algorithm: str
    key_id: str
    public_key_pem: str


class RetentionStatusOut(BaseModel):
    """The hourly retention purge: running now, its progress, and what the last run did."""

    running: bool
    progress: PurgeProgressOut
    last_deleted: int | None
    last_eligible: dict[str, int] | None
