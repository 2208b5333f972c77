"""Ports of the recording feature: index, files, PBX control, FTP accounts, exports.

Implemented by ``ccbridge.db`` (stores), ``ccbridge.storage`` (files), ``ccbridge.asterisk``
(MixMonitor control) and ``ccbridge.ftp`` (the push client).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ccbridge.domain.access import AuditEntry
from ccbridge.domain.journal.types import NewEvent
from ccbridge.domain.recordings.export import ExportFile, ExportJob, Offboarding
from ccbridge.domain.recordings.model import (
    ExportTarget,
    FtpAccount,
    Recording,
    RecordingPolicy,
    RecordingQuery,
)
from ccbridge.errors import CcbridgeError, NotFoundError


class RecordingNotFoundError(NotFoundError):
    """No such recording (or another tenant's)."""


class RecordingGoneError(CcbridgeError):
    """The recording was deleted by retention or off-boarding (HTTP 410)."""

    status = 410
    title = "Gone"


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the file on disk holds, measured off the event loop."""

    size_bytes: int
    sha256: str
    audio_bytes: int
    """Bytes after the WAV header (0: empty or header-only)."""


class SecretCipher(Protocol):
    """Encrypts secrets at rest (export passwords), bound to a context such as the tenant."""

    def encrypt(self, plaintext: str, context: str) -> str:
        """An opaque token holding *plaintext*; only *context* opens it again."""
        ...

    def decrypt(self, token: str, context: str) -> str:
        """The plaintext of *token*; raises ``ValueError`` when no configured key opens it."""
        ...

    def is_current(self, token: str) -> bool:
        """Say whether *token* uses the current key (else it is re-encrypted on rotation)."""
        ...


class ReportSigner(Protocol):
    """Signs purge reports so a client can verify them with our public key alone."""

    algorithm: str
    key_id: str

    def sign(self, manifest: dict[str, Any]) -> str:
        """The signature (base64) over the report bytes of *manifest*."""
        ...

    def verify(self, manifest: dict[str, Any], signature: str) -> bool:
        """Say whether *signature* is ours over *manifest*."""
        ...

    def public_key_pem(self) -> str:
        """The public key, PEM (SubjectPublicKeyInfo)."""
        ...


@dataclass(frozen=True, slots=True)
class SignedReport:
    """A purge report as stored: its manifest (what was deleted) and signature."""

    id: str
    tenant: str
    created_at: datetime
    manifest: dict[str, Any]
    signature: str


SealReport = Callable[[Mapping[str, int]], SignedReport]
"""Given the rows deleted per kind (``recording``, ``call``, ``event``, …), build and sign the
report (same transaction)."""


class RecorderControl(Protocol):
    """Start, stop and mute MixMonitor on a channel."""

    async def start(self, channel: str, path: str) -> None:
        """Record *channel* (both directions) into the absolute *path*."""
        ...

    async def stop(self, channel: str) -> None:
        """Stop the recording on *channel* (the file is closed shortly after)."""
        ...

    async def mute(self, channel: str, muted: bool) -> None:
        """Write silence (muted) or audio again, e.g. around card data."""
        ...


class RecordingFiles(Protocol):
    """The recordings tree on disk; every method is safe to await from the event loop."""

    def absolute(self, relative: str) -> str:
        """The absolute path of a relative recording path (confined to the root)."""
        ...

    def absolute_root(self) -> str:
        """The root itself, absolute: the PBX's MixMonitor writes under the same path."""
        ...

    async def inspect(self, relative: str) -> FileFacts | None:
        """Size, SHA-256 and audio length, or ``None`` when the file does not exist."""
        ...

    async def delete(self, relative: str) -> bool:
        """Delete the file (and empty parent folders); False when it was already gone."""
        ...

    async def delete_tree(self, tenant: str) -> int:
        """Delete a tenant's whole recordings folder; return the files removed."""
        ...


class RecordingStore(Protocol):
    """The recording index (see ``db.repositories.recordings``)."""

    async def add(self, rec: Recording, now: datetime) -> Recording: ...
    async def save(
        self, rec: Recording, now: datetime, events: Sequence[NewEvent] = ()
    ) -> None: ...
    async def get(self, recording_id: str, tenant: str | None = None) -> Recording | None: ...
    async def of_call(
        self, call_id: str, tenant: str | None = None
    ) -> builtins.list[Recording]: ...
    async def unfinished(
        self, limit: int = 10_000, *, pbx: str | None = None
    ) -> builtins.list[Recording]: ...
    async def search(
        self, query: RecordingQuery, before: tuple[datetime, str] | None = None, limit: int = 50
    ) -> builtins.list[Recording]: ...
    async def set_held(self, recording_id: str, tenant: str, held: bool, now: datetime) -> bool: ...
    async def hold_call(
        self, tenant: str, call_id: str, held: bool, reason: str, actor: str, now: datetime
    ) -> int: ...
    async def policy(self, tenant: str) -> RecordingPolicy: ...
    async def policies(self) -> builtins.list[RecordingPolicy]: ...
    async def set_policy(self, policy: RecordingPolicy, now: datetime) -> None: ...
    async def reencrypt_secrets(self) -> int: ...
    async def tenant_timezone(self, tenant: str) -> str | None: ...
    async def tenant_status(self, tenant: str) -> str | None: ...
    async def mark_for_purge(
        self, tenant: str, started_before: datetime, now: datetime, limit: int = 1000
    ) -> int: ...
    async def count_eligible(self, tenant: str, started_before: datetime) -> int: ...
    async def purging(
        self, tenant: str | None = None, limit: int = 1000
    ) -> builtins.list[Recording]: ...
    async def finish_purge(
        self, recording_id: str, reason: str, now: datetime, audit: AuditEntry
    ) -> bool: ...
    async def all_of_tenant(self, tenant: str) -> builtins.list[Recording]: ...
    async def erase_tenant(
        self, tenant: str, audit: AuditEntry, seal: SealReport
    ) -> SignedReport: ...


class FtpAccountStore(Protocol):
    """FTP logins (see ``db.repositories.ftp_accounts``)."""

    async def get(self, username: str) -> FtpAccount | None: ...
    async def add(self, account: FtpAccount) -> bool: ...
    async def of_tenant(self, tenant: str) -> builtins.list[FtpAccount]: ...
    async def disable(self, username: str, tenant: str, now: datetime) -> bool: ...


class ExportStore(Protocol):
    """Export jobs and purge reports (see ``db.repositories.recording_exports``)."""

    async def create(self, job: ExportJob, files: Sequence[ExportFile]) -> None: ...
    async def get(self, job_id: str, tenant: str | None = None) -> ExportJob | None: ...
    async def of_tenant(self, tenant: str, limit: int = 50) -> builtins.list[ExportJob]: ...
    async def unfinished(self) -> builtins.list[ExportJob]: ...
    async def files(self, job_id: str) -> builtins.list[ExportFile]: ...
    async def mark_sent(self, job_id: str, recording_id: str, now: datetime) -> None: ...
    async def update(self, job_id: str, **values: Any) -> None: ...
    async def purge_report(self, report_id: str) -> tuple[dict[str, Any], str] | None: ...
    async def purge_reports_of(self, tenant: str) -> builtins.list[SignedReport]: ...


class OffboardingStore(Protocol):
    """Off-boarding state per tenant (see ``db.repositories.recording_exports``)."""

    async def get(self, tenant: str) -> Offboarding | None: ...
    async def put(self, offboarding: Offboarding) -> None: ...
    async def unfinished(self) -> builtins.list[Offboarding]: ...


class ExportSession(Protocol):
    """One open connection to a tenant's FTP(S) server."""

    async def remote_size(self, path: str) -> int | None:
        """Bytes the server already has at *path* (``None``: no such file)."""
        ...

    async def upload(
        self, local: str, path: str, offset: int, progress: Callable[[int], None]
    ) -> None:
        """Send *local* from byte *offset* to *path* (resuming with REST when offset > 0)."""
        ...

    async def put_text(self, path: str, text: str) -> None:
        """Write a small text file (the manifest, the report)."""
        ...

    async def close(self) -> None:
        """Say goodbye and close the connection."""
        ...


class ExportTransport(Protocol):
    """Opens sessions to tenants' servers."""

    async def connect(self, target: ExportTarget, allow: Sequence[str] = ()) -> ExportSession:
        """Open a session; only to addresses the egress policy (plus *allow*) permits."""
        ...
