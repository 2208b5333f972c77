"""Retention: delete recordings past their tenant's horizon, unless held; audited exactly once.

Mark-then-delete makes the purge idempotent across restarts: rows are first marked
``purging`` (a restart picks them up again), then each file is deleted (a file already gone is
fine), then the row becomes a tombstone and its audit entry is written in the same
transaction, guarded by ``status = 'purging'``, so no deletion is ever audited twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from ccbridge.domain.access import AuditEntry
from ccbridge.domain.recordings.model import Recording
from ccbridge.domain.recordings.retention import started_before_for_purge
from ccbridge.domain.time import Clock
from ccbridge.services.recording_ports import RecordingFiles, RecordingStore

log = structlog.get_logger(__name__)

PURGE_ACTOR = "system:retention"
BATCH = 500

Progress = Callable[[int, int], None]
"""``(done, total)`` after each deleted recording (CLI progress bar, status endpoint)."""


@dataclass(slots=True)
class PurgeResult:
    """What one purge run did (or, dry, would do) per tenant."""

    dry_run: bool
    eligible: dict[str, int] = field(default_factory=dict)
    deleted: int = 0
    files_missing: int = 0


class RetentionService:
    """Runs the purge; safe to run concurrently with recording and after any crash."""

    def __init__(self, store: RecordingStore, files: RecordingFiles, clock: Clock) -> None:
        self._store = store
        self._files = files
        self._clock = clock
        self.last: PurgeResult | None = None
        self.progress: tuple[int, int] = (0, 0)
        """``(done, total)`` of the running or last purge (the status endpoint shows it)."""
        self.running = False

    async def purge(
        self, *, dry_run: bool = False, progress: Progress | None = None
    ) -> PurgeResult:
        """Purge every tenant's recordings past its horizon (or only count them when dry)."""
        if dry_run:
            return await self._purge(dry_run=True, progress=progress)
        self.running = True
        try:
            return await self._purge(dry_run=False, progress=progress)
        finally:
            self.running = False

    async def _purge(self, *, dry_run: bool, progress: Progress | None) -> PurgeResult:
        now = self._clock.now()
        result = PurgeResult(dry_run=dry_run)
        for policy in await self._store.policies():
            cutoff = started_before_for_purge(now, policy.retention_months)
            result.eligible[policy.tenant] = await self._store.count_eligible(policy.tenant, cutoff)
        total = sum(result.eligible.values())
        if dry_run:
            self.last = result
            return result
        done = 0
        self.progress = (0, total)
        # Rows marked by an earlier, interrupted run go first.
        done = await self._drain(result, done, total, progress)
        for policy in await self._store.policies():
            cutoff = started_before_for_purge(now, policy.retention_months)
            while await self._store.mark_for_purge(policy.tenant, cutoff, self._clock.now(), BATCH):
                done = await self._drain(result, done, total, progress)
        self.last = result
        if result.deleted:
            log.info("recordings_purged", deleted=result.deleted, missing=result.files_missing)
        return result

    async def _drain(
        self, result: PurgeResult, done: int, total: int, progress: Progress | None
    ) -> int:
        while batch := await self._store.purging(limit=BATCH):
            for rec in batch:
                if await self.delete_one(rec, "retention"):
                    result.deleted += 1
                done += 1
                self.progress = (done, max(total, done))
                if progress is not None:
                    progress(done, max(total, done))
        return done

    async def delete_one(self, rec: Recording, reason: str) -> bool:
        """Delete one marked recording's file, then tombstone it with its audit entry."""
        existed = await self._files.delete(rec.path)
        now = self._clock.now()
        entry = AuditEntry(
            at=now,
            tenant_id=rec.tenant,
            actor=PURGE_ACTOR,
            action="recording.purge",
            object_type="recording",
            object_id=rec.id,
            detail={
                "reason": reason,
                "call_id": rec.call_id,
                "path": rec.path,
                "started_at": rec.started_at.isoformat(),
                "sha256": rec.sha256,
                "file_existed": existed,
            },
        )
        return await self._store.finish_purge(rec.id, reason, now, entry)
