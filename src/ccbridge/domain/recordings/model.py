"""A recording as indexed: where its file lives, the four call variables and its state."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from pathlib import PurePosixPath

CALL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""An Asterisk ``Linkedid``, the only text that reaches a file name.

Usually epoch seconds, a dot and a counter (``1768000000.12``); with ``systemname`` set in
asterisk.conf it is ``<systemname>-1768000000.12``, and a call placed by ``Originate`` with a
``ChannelId`` takes that id (often a UUID). Letters, digits, ``.``, ``_`` and ``-`` only, never a
leading dot, at most 64 characters (the ``call_id`` columns), so it is one path component and
safe in an AMI header.
"""
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
"""The tenant slug (same rule as ``domain.access.TENANT_ID_RE``)."""
WAV_HEADER_BYTES = 44
"""A canonical PCM WAV header; a file no longer than this holds no audio."""


class RecordingStatus(StrEnum):
    """Lifecycle of an indexed recording; only ``ok`` is offered for download."""

    RECORDING = "recording"
    OK = "ok"
    EMPTY = "empty"
    """Zero-length or header-only file: flagged, never offered."""
    MISSING = "missing"
    """The PBX never produced the file."""
    PURGING = "purging"
    """Marked for deletion; the purge resumes it after a restart."""
    PURGED = "purged"
    """File deleted; the row is a tombstone without customer data (the API answers 410)."""


class BadRecordingNameError(ValueError):
    """A tenant or call id that must never reach a path or an AMI header."""


@dataclass(frozen=True, slots=True)
class Recording:
    """One recording file of one call, as the index knows it."""

    id: str
    tenant: str
    call_id: str
    path: str
    """Relative to the recordings root: ``<tenant>/<yyyy>/<mm>/<dd>/<call-id>.wav``."""
    started_at: datetime
    status: RecordingStatus = RecordingStatus.RECORDING
    channel: str | None = None
    agent_no: str | None = None
    skill_group: str | None = None
    caller: str | None = None
    callee: str | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    held: bool = False
    muted: bool = False
    purged_at: datetime | None = None
    purge_reason: str | None = None

    @property
    def downloadable(self) -> bool:
        """Say whether the file may be offered (a finished, non-empty, unpurged recording)."""
        return self.status is RecordingStatus.OK


def check_tenant(tenant: str) -> str:
    """Return *tenant* when it is a valid slug; raise otherwise."""
    if not TENANT_RE.match(tenant):
        raise BadRecordingNameError(f"bad tenant id {tenant!r}")
    return tenant


def check_call_id(call_id: str) -> str:
    """Return *call_id* when it looks like an Asterisk Linkedid; raise otherwise."""
    if not CALL_ID_RE.match(call_id):
        raise BadRecordingNameError(f"bad call id {call_id!r}")
    return call_id


def recording_path(tenant: str, call_id: str, started_at: datetime, take: int = 1) -> str:
    """The generated relative path ``<tenant>/<yyyy>/<mm>/<dd>/<call-id>[-<take>].wav`` (UTC date).

    Only validated slugs and Linkedids go in, so no caller-supplied text ever names a file.
    """
    check_tenant(tenant)
    check_call_id(call_id)
    if take < 1:
        raise BadRecordingNameError(f"take must be >= 1, got {take}")
    day = started_at.strftime("%Y/%m/%d")
    stem = call_id if take == 1 else f"{call_id}-{take}"
    return str(PurePosixPath(tenant) / day / f"{stem}.wav")


def audio_bytes(size: int) -> int:
    """Bytes of audio in a WAV file of *size* bytes (0 for empty or header-only files)."""
    return max(0, size - WAV_HEADER_BYTES)


@dataclass(frozen=True, slots=True)
class ExportTarget:
    """A tenant's own FTP(S) server that recordings are pushed to."""

    host: str
    port: int = 21
    username: str = "anonymous"
    password: str = ""
    tls: bool = True
    """Explicit FTPS (``AUTH TLS``) required; plain FTP only when the tenant says so."""
    directory: str = "/"
    ca_pem: str | None = None
    """PEM certificate(s) to trust for this server (e.g. its self-signed cert); ``None``:
    the system CA store. Host names are checked either way."""


@dataclass(frozen=True, slots=True)
class RecordingPolicy:
    """Per-tenant recording settings (defaults: record every answered call, keep 1 month)."""

    tenant: str
    retention_months: int = 1
    auto_record: bool = True
    auto_record_groups: tuple[str, ...] | None = None
    """``None``: every skill group; otherwise only calls answered in these groups."""
    export_target: ExportTarget | None = None
    export_time: time | None = None
    """Push the tenant's previous local day nightly at this local time; ``None``: never."""
    timezone: str = "UTC"
    """The tenant's IANA zone (from the tenant record), in which ``export_time`` is read."""

    def records(self, skill_group: str | None) -> bool:
        """Say whether a call answered in *skill_group* is recorded automatically."""
        if not self.auto_record:
            return False
        if self.auto_record_groups is None:
            return True
        return skill_group is not None and skill_group in self.auto_record_groups


@dataclass(frozen=True, slots=True)
class RecordingQuery:
    """Search filters (all optional, combined with AND) within one tenant."""

    tenant: str | None
    agent_no: str | None = None
    caller: str | None = None
    callee: str | None = None
    skill_group: str | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None
    call_id: str | None = None
    include_unavailable: bool = False
    """Also list empty/missing/purged rows (flagged), not only downloadable ones."""


@dataclass(frozen=True, slots=True)
class FtpAccount:
    """A read-only FTP login of one tenant (the password is only ever stored hashed)."""

    username: str
    tenant: str
    password_hash: str
    tls_required: bool
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None
