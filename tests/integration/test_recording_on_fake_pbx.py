"""Recording against the fake PBX over real AMI: auto-start on answer, pause/resume, the WAV
file the fake's MixMonitor writes, finalisation into the index with the four variables."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.asterisk.recording_control import AmiRecorderControl, AmiRecordingFeed
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.access import Principal, Role
from ccbridge.domain.acd.membership import QueueMemberSpec
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.recordings.model import RecordingQuery, RecordingStatus
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.domain.recordings.wav import parse_data_size
from ccbridge.domain.time import SystemClock
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.recordings import RecordingService
from ccbridge.storage.recording_files import LocalRecordingFiles
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import QueueSpec
from tests.support.ami_rig import fake_pbx_client, running
from tests.support.event_rig import build_world
from tests.support.recording_rig import settled_recording


class Sink:
    def submit(self, record: CallRecord) -> None:
        pass


async def test_answered_call_recorded_paused_and_indexed(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    world = await build_world(engine)
    session_factory = create_session_factory(engine)
    pbx = FakeAsterisk(queues=[QueueSpec("t1-sales")], agi_url=None, seed=5, auth_fail_delay=0)
    await pbx.start()
    client = fake_pbx_client(pbx.ami_port)
    clock = SystemClock()
    calls = CallTrackingService(Sink())
    call_feed = AmiCallFeed(calls, clock.now)
    store = RecordingRepository(session_factory, world.journal)
    files = LocalRecordingFiles(tmp_path / "rec")

    async def lookup(call_id: str) -> CallRecord | None:
        return calls.get(call_id)

    service = RecordingService(
        store,
        files,
        AmiRecorderControl(client),
        lookup,
        AuditRecorder(lambda: SqlAccessUnitOfWork(session_factory), clock.now),
        clock,
        LinkSigner(b"fake-pbx-test-key-0123"),
        finalise_delay=0.05,
    )
    feed = AmiRecordingFeed(service.on_agent_connect, service.on_channel_gone)
    PbxCoordinator(client, calls=call_feed, recordings=feed).attach()
    started = datetime.now(UTC)
    try:
        async with running(client):
            runner = asyncio.create_task(feed.run())
            await AmiQueueControl(client).add_member(
                QueueMemberSpec("t1-sales", "PJSIP/1101", "1101 张三", 0, False, "")
            )
            handle = await pbx.simulator.place_call(
                "13800138000", did="4008001234", queue="t1-sales", talk_seconds=1.2
            )
            async with asyncio.timeout(5):
                while not (found := await store.of_call(handle.linkedid)):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            agent = Principal(
                "user:agent", Role.AGENT, "t1", frozenset({"recordings:control"}), "1101"
            )
            await asyncio.sleep(0.3)
            paused = await service.control(agent, "t1", handle.linkedid, "pause")
            assert paused.muted
            await asyncio.sleep(0.3)
            await service.control(agent, "t1", handle.linkedid, "resume")
            await handle
            rec = await settled_recording(service, store, found[0].id)
            runner.cancel()
    finally:
        await pbx.stop()
    assert rec.status is RecordingStatus.OK
    assert rec.path.startswith(f"t1/{started:%Y/%m/%d}/")
    assert (rec.agent_no, rec.skill_group, rec.caller, rec.callee) == (
        "1101",
        "t1-sales",
        "13800138000",
        "4008001234",
    )
    data = (files.root / rec.path).read_bytes()
    assert rec.size_bytes == len(data)
    pcm = data[44:]
    assert parse_data_size(data[:44]) == len(pcm)
    silent = sum(1 for i in range(0, len(pcm) - 1600, 1600) if not any(pcm[i : i + 1600]))
    assert silent >= 2  # the paused stretch (~0.3 s = 3 blocks of 0.1 s) is silence
    assert any(pcm)  # and the rest is audio
    hits = await store.search(RecordingQuery(tenant="t1", agent_no="1101"))
    assert [r.id for r in hits] == [rec.id]
    async with SqlAccessUnitOfWork(session_factory) as uow:
        entries = await uow.audit.list(tenant_id="t1", limit=20)
    actions = [e.action for e in entries if e.action.startswith("recording.")]
    assert sorted(actions) == ["recording.pause", "recording.resume", "recording.start"]

    # recording.ready went into the journal with the row: a CRM sees it by polling.
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        resp = await http.get("/api/v1/events?type=recording.ready", headers=world.keys["t1:crm"])
        assert resp.status_code == 200, resp.text
        items = resp.json()["items"]
        other = await http.get("/api/v1/events", headers=world.keys["t2:crm"])
        assert other.json()["items"] == []
    assert len(items) == 1
    data = items[0]["data"]
    assert items[0]["call_id"] == handle.linkedid
    assert data["recording_id"] == rec.id
    assert data["url"] == f"/api/v1/recordings/{rec.id}"
    assert data["duration_s"] == (rec.duration_ms or 0) / 1000 > 1
    params = data["params"]
    assert (params["agent_no"], params["skill_group"]) == ("1101", "t1-sales")
    assert (params["caller_original"], params["callee_original"]) == ("13800138000", "4008001234")
    again = await service.finalise(rec.id)  # a second finalise adds no second event
    assert again.status is RecordingStatus.OK
    assert len(await world.journal.list_after("t1", 0, 100, types=["recording.ready"])) == 1
