"""Issue 14: a call answered while ccbridge was not listening, still up when AMI comes back,
is recorded from the resync on: nobody saw its ``AgentConnect``, so the resync's agent leg is
the answer the recording feed acts on. A call already being recorded is not recorded twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.recording_control import AmiRecorderControl, AmiRecordingFeed
from ccbridge.bootstrap import live_answered_calls
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.recordings.model import RecordingStatus
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.domain.time import SystemClock
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.recordings import RecordingService
from ccbridge.storage.recording_files import LocalRecordingFiles
from ccbridge.testing.call_generator import SimulatorConfig
from ccbridge.testing.fake_pbx import FakeAsterisk
from tests.fakes.calls import MemoryCallStore
from tests.support.ami_rig import fake_pbx_client, running
from tests.support.event_rig import build_world


def _bridged(pbx: FakeAsterisk, channel: str) -> bool:
    found = pbx.model.find_channel(channel)
    return found is not None and bool(found.bridge_id)


async def test_a_call_answered_in_the_gap_is_recorded_from_the_resync(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    world = await build_world(engine)
    sessions = create_session_factory(engine)
    clock = SystemClock()
    store = RecordingRepository(sessions, world.journal)
    files = LocalRecordingFiles(tmp_path / "rec")
    config = SimulatorConfig(ring_seconds=(1.0, 1.5), poll_interval=0.002)
    async with FakeAsterisk(seed=14, agi_url=None, time_scale=0.05, config=config) as pbx:
        # The call is answered while nothing listens to AMI (ccbridge down, or the link cut).
        handle = await pbx.simulator.place_call(
            "13800138000", did="4008001234", talk_seconds=40, agent_hangs_up=False
        )
        async with asyncio.timeout(10):
            while not _bridged(pbx, handle.channel):  # noqa: ASYNC110 (the PBX has no event)
                await asyncio.sleep(0.01)

        client = fake_pbx_client(pbx.ami_port)
        calls = CallTrackingService(MemoryCallStore())
        call_feed = AmiCallFeed(calls, clock.now)

        async def lookup(call_id: str) -> CallRecord | None:
            return calls.get(call_id)

        service = RecordingService(
            store,
            files,
            AmiRecorderControl(client),
            lookup,
            AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now),
            clock,
            LinkSigner(b"gap-live-recording-key-01"),
            finalise_delay=0.05,
        )
        feed = AmiRecordingFeed(
            service.on_agent_connect,
            service.on_channel_gone,
            after_resync=lambda: service.record_calls_answered_in_gap(live_answered_calls(calls)),
        )
        pbx_coordinator = PbxCoordinator(client, calls=call_feed, recordings=feed)
        pbx_coordinator.add_login_step(feed.after_login)
        pbx_coordinator.attach()
        async with running(client):
            runner = asyncio.create_task(feed.run())
            (rec,) = await store.of_call(handle.linkedid)
            assert rec.status is RecordingStatus.RECORDING
            assert (rec.channel, rec.agent_no, rec.skill_group) == (
                handle.channel,
                "1001",
                "t1-sales",
            )
            mix = [a for a in pbx.ami.actions if a.get("Action") == "MixMonitor"]
            assert [a.get("Channel") for a in mix] == [handle.channel]
            # Another resync (the next reconnect) starts nothing more.
            assert await service.record_calls_answered_in_gap(live_answered_calls(calls)) == 0
            await handle
            async with asyncio.timeout(10):
                while True:
                    await service.idle()
                    done = await store.get(rec.id)
                    assert done is not None
                    if done.status is not RecordingStatus.RECORDING:
                        break
                    await asyncio.sleep(0.02)
            runner.cancel()
    assert done.status is RecordingStatus.OK
    assert len([a for a in pbx.ami.actions if a.get("Action") == "MixMonitor"]) == 1
