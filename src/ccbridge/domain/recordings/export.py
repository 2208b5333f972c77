"""Push exports: a job, its files and the manifest the tenant's server receives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class ExportStatus(StrEnum):
    """Where an export is; ``done`` and ``failed`` are final (a failed job can be retried)."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ExportJob:
    """One push of a tenant's recordings in ``[range_from, range_to)`` to its server."""

    id: str
    tenant: str
    kind: str
    """``scheduled``, ``on_demand`` or ``final`` (off-boarding)."""
    range_from: datetime
    range_to: datetime
    status: ExportStatus
    created_at: datetime
    total_files: int = 0
    sent_files: int = 0
    total_bytes: int = 0
    sent_bytes: int = 0
    attempts: int = 0
    error: str | None = None
    report: dict[str, Any] | None = None
    finished_at: datetime | None = None

    @property
    def progress(self) -> float:
        """Share of bytes delivered, 0..1 (1 for an empty export)."""
        return 1.0 if not self.total_bytes else self.sent_bytes / self.total_bytes


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One file of an export and whether the tenant's server has it in full."""

    job_id: str
    recording_id: str
    remote_path: str
    size_bytes: int
    sha256: str
    sent: bool = False
    sent_at: datetime | None = None


MANIFEST_NAME = "MANIFEST.sha256"


def manifest_text(files: Sequence[ExportFile]) -> str:
    """``sha256sum``-compatible lines (``<hex>  <path>``), so ``sha256sum -c`` verifies them."""
    return "".join(f"{f.sha256}  {f.remote_path.lstrip('/')}\n" for f in files)


class OffboardingStatus(StrEnum):
    """Where a tenant's off-boarding is; ``done`` and ``failed`` are final (failed: retry)."""

    PENDING = "pending"
    EXPORTING = "exporting"
    PURGING = "purging"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Offboarding:
    """A terminated tenant's final export and purge (REC-06), resumable after a restart."""

    tenant: str
    status: OffboardingStatus
    skip_export: bool
    requested_by: str
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    export_job: str | None = None
    purge_done: int = 0
    purge_total: int = 0
    report_id: str | None = None
    error: str | None = None
