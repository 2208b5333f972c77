"""Recording control, index and the coordinator's recordings handler, wired as bootstrap does
(ADR 0025: the PBX's own MixMonitor is indexed, and probed for after a resync)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.recording_control import AmiRecorderControl, AmiRecordingFeed
from ccbridge.bootstrap import recordings_after_resync
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.recordings.model import Recording, RecordingStatus
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.domain.time import SystemClock
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.recordings import RecordingService
from ccbridge.storage.recording_files import LocalRecordingFiles


def wired_recordings(
    sessions: async_sessionmaker[AsyncSession],
    store: RecordingRepository,
    files: LocalRecordingFiles,
    client: AmiClient,
    lookup: Callable[[str], Awaitable[CallRecord | None]],
    *,
    tracking: CallTrackingService | None = None,
    finalise_delay: float = 0.05,
) -> tuple[RecordingService, AmiRecordingFeed]:
    """The service and its feed; with *tracking*, the feed's login step finalises what hung
    up in a gap and records (or indexes the PBX's recording of) calls still up."""
    clock = SystemClock()
    control = AmiRecorderControl(client)
    service = RecordingService(
        store,
        files,
        control,
        lookup,
        AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now),
        clock,
        LinkSigner(b"recording-rig-link-key-0123456"),
        finalise_delay=finalise_delay,
        pbx_file=control.recording_file,
    )
    feed = AmiRecordingFeed(
        service.on_agent_connect,
        service.on_channel_gone,
        on_pbx_recording=service.on_pbx_recording,
        on_hangup=service.on_hangup,
        after_resync=recordings_after_resync(service, tracking) if tracking else None,
    )
    return service, feed


async def settled_recording(
    service: RecordingService, store: RecordingRepository, recording_id: str
) -> Recording:
    """Wait (5 s at most) until the service has finalised the recording (row not RECORDING)."""
    async with asyncio.timeout(5):
        while True:
            await service.idle()
            rec = await store.get(recording_id)
            assert rec is not None
            if rec.status is not RecordingStatus.RECORDING:
                return rec
            await asyncio.sleep(0.02)
