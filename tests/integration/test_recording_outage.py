"""A recording whose call hangs up while the database is away is finalised once it returns."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.recordings.model import Recording, RecordingStatus
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.domain.time import SystemClock
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.recording_ports import RecordingNotFoundError
from ccbridge.services.recordings import SYSTEM, RecordingService
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.integration.recording_support import CIPHER, write_wav
from tests.support.event_rig import build_world

CHANNEL = "PJSIP/1101-00000001"


class FlakyStore:
    """The recording repository, with reads failing while ``down`` (the database is away)."""

    def __init__(self, inner: RecordingRepository) -> None:
        self.inner = inner
        self.down = False

    async def get(self, recording_id: str, tenant: str | None = None) -> Recording | None:
        if self.down:
            raise ConnectionResetError(104, "Connection reset by peer")
        return await self.inner.get(recording_id, tenant)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Recorder:
    """MixMonitor stand-in: nothing to do, the test writes the file."""

    async def start(self, channel: str, path: str) -> None:
        return None

    async def stop(self, channel: str) -> None:
        return None

    async def mute(self, channel: str, muted: bool) -> None:
        return None


async def test_a_hangup_during_an_outage_is_finalised_by_the_job_afterwards(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    world = await build_world(engine)
    sessions = create_session_factory(engine)
    store = FlakyStore(RecordingRepository(sessions, world.journal, cipher=CIPHER))
    files = LocalRecordingFiles(tmp_path / "rec")
    clock = SystemClock()
    call = CallRecord(
        call_id="1796000000.1",
        started_at=datetime.now(UTC),
        state=CallState.CONNECTED,
        tenant="t1",
        agent_no="1101",
    )

    async def lookup(call_id: str) -> CallRecord | None:
        return call

    service = RecordingService(
        store,  # type: ignore[arg-type]
        files,
        Recorder(),
        lookup,
        AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now),
        clock,
        LinkSigner(b"outage-test-key-0123456789"),
        finalise_delay=0.01,
    )
    rec = await service.start(SYSTEM, "t1", call.call_id, CHANNEL)
    write_wav(files.root, rec.path)
    store.down = True
    service.on_channel_gone(CHANNEL)  # the hang-up arrives while the database is away
    await service.idle()
    assert (await store.inner.get(rec.id)).status is RecordingStatus.RECORDING  # type: ignore[union-attr]

    store.down = False
    call = replace(call, state=CallState.ENDED, ended_at=datetime.now(UTC))
    assert await service.finalise_stale() == 1
    done = await store.inner.get(rec.id)
    assert done is not None
    assert done.status is RecordingStatus.OK


async def test_a_hangup_ends_api_control_of_the_calls_answered_on_that_channel_only(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    world = await build_world(engine)
    sessions = create_session_factory(engine)
    clock = SystemClock()
    calls = {
        cid: CallRecord(
            call_id=cid,
            started_at=datetime.now(UTC),
            state=CallState.CONNECTED,
            tenant="t1",
            agent_no="1101",
        )
        for cid in ("1796000000.1", "1796000000.2", "1796000000.3")
    }

    answering = True

    async def lookup(call_id: str) -> CallRecord | None:
        return None if answering else calls.get(call_id)  # no auto-recording on answer

    service = RecordingService(
        RecordingRepository(sessions, world.journal, cipher=CIPHER),
        LocalRecordingFiles(tmp_path / "rec"),
        Recorder(),
        lookup,
        AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now),
        clock,
        LinkSigner(b"outage-test-key-0123456789"),
    )
    other = "PJSIP/1102-00000002"
    await service.on_agent_connect("1796000000.1", CHANNEL)
    await service.on_agent_connect("1796000000.2", other)
    await service.on_agent_connect("1796000000.3", CHANNEL)
    third = "PJSIP/1103-00000003"
    await service.on_agent_connect("1796000000.3", third)  # transferred: now on a third
    answering = False
    service.on_channel_gone(CHANNEL)
    with pytest.raises(RecordingNotFoundError):
        await service.control(SYSTEM, "t1", "1796000000.1", "start")
    for still_up, channel in (("1796000000.2", other), ("1796000000.3", third)):
        rec = await service.control(SYSTEM, "t1", still_up, "start")
        assert rec.channel == channel
