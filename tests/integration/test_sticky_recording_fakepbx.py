"""Issue 15: a call the owner agent answers on the sticky ring is recorded like a queue call.
No ``AgentConnect`` comes for it, so the recording feed starts MixMonitor when the owner's leg
goes up; the file is indexed with the owner as 工号 and the routed group as 技能组."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.recording_control import AmiRecorderControl, AmiRecordingFeed
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
from tests.integration.test_sticky_route_fakepbx import DID, StickyPolicy
from tests.support.ami_rig import fake_pbx_client, running
from tests.support.event_rig import build_world


async def test_the_owners_sticky_answer_is_recorded_and_indexed(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    world = await build_world(engine)
    sessions = create_session_factory(engine)
    router = AgiRouter()
    handler = InboundRouteHandler(
        {DID: InboundRoute("t1", group="sales")}, None, policies=StickyPolicy()
    )
    router.add_route(SCRIPT, handler)
    agi = FastAgiServer(AgiServerConfig(port=0), router)
    await agi.start()
    config = SimulatorConfig(ring_seconds=(1.0, 2.0), talk_seconds=(5.0, 5.0), poll_interval=0.002)
    config.agi_url = f"agi://127.0.0.1:{agi.port}/{SCRIPT}"
    clock = SystemClock()
    calls = CallTrackingService(MemoryCallStore())
    store = RecordingRepository(sessions, world.journal)
    files = LocalRecordingFiles(tmp_path / "rec")

    async def lookup(call_id: str) -> CallRecord | None:
        return calls.get(call_id)

    try:
        async with FakeAsterisk(seed=15, time_scale=0.05, config=config) as pbx:
            client = fake_pbx_client(pbx.ami_port)
            call_feed = AmiCallFeed(calls, clock.now)
            service = RecordingService(
                store,
                files,
                AmiRecorderControl(client),
                lookup,
                AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now),
                clock,
                LinkSigner(b"sticky-recording-key-0123"),
                finalise_delay=0.05,
            )
            feed = AmiRecordingFeed(service.on_agent_connect, service.on_channel_gone)
            PbxCoordinator(client, calls=call_feed, recordings=feed).attach()
            started = datetime.now(UTC)
            async with running(client):
                runner = asyncio.create_task(feed.run())
                handle = await pbx.simulator.place_call("13800138000", did=DID)
                outcome = await handle
                async with asyncio.timeout(10):
                    while True:
                        await service.idle()
                        found = await store.of_call(handle.linkedid)
                        if found and found[0].status is not RecordingStatus.RECORDING:
                            break
                        await asyncio.sleep(0.02)
                runner.cancel()
                mix = [a for a in pbx.ami.actions if a.get("Action") == "MixMonitor"]
    finally:
        await agi.stop()

    assert outcome.member == "PJSIP/1101"
    assert [a.get("Channel", "").rsplit("-", 1)[0] for a in mix] == ["PJSIP/1101"]
    (rec,) = found
    assert rec.status is RecordingStatus.OK
    assert rec.path.startswith(f"t1/{started:%Y/%m/%d}/{handle.linkedid}")
    assert (rec.agent_no, rec.skill_group, rec.caller, rec.callee) == (
        "1101",
        "t1-sales",
        "13800138000",
        DID,
    )
    assert (files.root / rec.path).stat().st_size > 44
