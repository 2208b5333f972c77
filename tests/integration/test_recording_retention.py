"""Retention on both databases with a controllable clock: horizon, holds, restart mid-purge."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.recordings.model import RecordingQuery, RecordingStatus
from ccbridge.services.retention import RetentionService
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.integration.recording_support import SettableClock, make_recording


class CrashingFiles(LocalRecordingFiles):
    """Real deletes, but the process 'dies' (raises) on the n-th delete."""

    def __init__(self, root: Path, crash_on: int) -> None:
        super().__init__(root)
        self.calls = 0
        self.crash_on = crash_on

    async def delete(self, relative: str) -> bool:
        self.calls += 1
        if self.calls == self.crash_on:
            deleted = await super().delete(relative)  # file gone, tombstone + audit not yet
            raise RuntimeError(f"simulated crash after deleting {relative} ({deleted})")
        return await super().delete(relative)


async def purge_audit(sessions: async_sessionmaker[AsyncSession], tenant: str) -> list[str]:
    async with SqlAccessUnitOfWork(sessions) as uow:
        entries = await uow.audit.list(tenant_id=tenant, limit=1000)
    return [e.object_id for e in entries if e.action == "recording.purge"]


async def test_purge_past_horizon_keeps_held_and_audits_once_across_a_crash(
    session_factory: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    repo = RecordingRepository(session_factory)
    files = LocalRecordingFiles(tmp_path / "rec")
    clock = SettableClock(datetime(2026, 2, 28, 23, 0, tzinfo=UTC))
    old = [
        await make_recording(files, "t1", datetime(2026, 1, d, 9, 0, tzinfo=UTC))
        for d in range(10, 16)
    ]
    jan31 = await make_recording(files, "t1", datetime(2026, 1, 31, 9, 0, tzinfo=UTC))
    recent = await make_recording(files, "t1", datetime(2026, 2, 20, 9, 0, tzinfo=UTC))
    other = await make_recording(files, "t2", datetime(2026, 1, 10, 9, 0, tzinfo=UTC))
    for rec in [*old, jan31, recent, other]:
        await repo.add(rec, clock.now())
    held_rec = old[0]
    assert await repo.set_held(held_rec.id, "t1", True, clock.now())
    assert await repo.hold_call("t2", other.call_id, True, "litigation", "user:x", clock.now())

    # Dry run counts and deletes nothing.
    dry = await RetentionService(repo, files, clock).purge(dry_run=True)
    assert dry.eligible == {"t1": 5, "t2": 0}
    assert all((files.root / r.path).exists() for r in old)

    # First run "crashes" on its 3rd deletion, after the file is gone.
    crashing = CrashingFiles(files.root, crash_on=3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        await RetentionService(repo, crashing, clock).purge()
    assert len(await purge_audit(session_factory, "t1")) == 2

    # Restart: a new service over the same DB and disk finishes the job.
    progress: list[tuple[int, int]] = []
    result = await RetentionService(repo, files, clock).purge(
        progress=lambda d, t: progress.append((d, t))
    )
    assert result.deleted == 3
    assert progress[-1][0] == 3

    purged = old[1:]
    audited = await purge_audit(session_factory, "t1")
    assert sorted(audited) == sorted(r.id for r in purged)  # each deletion exactly once
    for rec in purged:
        assert not (files.root / rec.path).exists()
        stored = await repo.get(rec.id)
        assert stored is not None
        assert stored.status is RecordingStatus.PURGED
        assert stored.caller is None
        assert stored.agent_no is None
    for rec in (held_rec, jan31, recent, other):
        assert (files.root / rec.path).exists()
        stored = await repo.get(rec.id)
        assert stored is not None
        assert stored.status is RecordingStatus.OK
    found = await repo.search(RecordingQuery(tenant="t1"), limit=100)
    assert {r.id for r in found} == {held_rec.id, jan31.id, recent.id}

    # 2026-01-31 + 1 calendar month = kept through 2026-02-28; gone from 2026-03-01T00:00Z.
    clock.at = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    again = await RetentionService(repo, files, clock).purge()
    assert again.deleted == 1
    assert not (files.root / jan31.path).exists()
    assert sorted(await purge_audit(session_factory, "t1")) == sorted(
        [*(r.id for r in purged), jan31.id]
    )
    # A rerun changes nothing and audits nothing more.
    assert (await RetentionService(repo, files, clock).purge()).deleted == 0
    assert len(await purge_audit(session_factory, "t1")) == 6
