"""ADR 0025 on the fake PBX: app_queue records a queue call itself, ccbridge indexes it.

FastAGI names the file (``MONITOR_FILENAME``) and the queue has ``monitor-format = wav``, so
when the member answers the PBX starts MixMonitor on the caller and emits ``MixMonitorStart``.
ccbridge starts no MixMonitor of its own, indexes that file once with the four variables,
pauses and resumes it over AMI (``MixMonitorMute``), and finalises it at hang-up. A tenant
whose policy is off gets no file name and a queue without ``monitor-format``: nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.ami.actions import blind_transfer, hangup
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.access import Principal, Role
from ccbridge.domain.acd.membership import QueueMemberSpec
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.recordings.model import RecordingPolicy, RecordingStatus, recording_path
from ccbridge.domain.time import SystemClock
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.pbx_recording_names import PbxRecordingNames
from ccbridge.services.recordings import RecordingService
from ccbridge.storage.recording_files import LocalRecordingFiles
from ccbridge.testing.call_generator import SimulatorConfig
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import QueueSpec
from tests.fakes.calls import MemoryCallStore
from tests.support.ami_rig import fake_pbx_client, running
from tests.support.event_rig import EventWorld, build_world
from tests.support.recording_rig import settled_recording, wired_recordings

ROUTES = {
    "4008001234": InboundRoute("t1", "t1-sales"),
    "4008005678": InboundRoute("t2", "t2-service"),
}
QUEUES = [QueueSpec("t1-sales", monitor_format="wav"), QueueSpec("t2-service")]


@dataclass
class Rig:
    """ccbridge's FastAGI route and recording path, as bootstrap wires them, on a fake PBX."""

    pbx: FakeAsterisk
    client: AmiClient
    service: RecordingService
    store: RecordingRepository
    files: LocalRecordingFiles
    world: EventWorld
    sessions: async_sessionmaker[AsyncSession]

    async def members(self, *members: tuple[str, str, str]) -> None:
        queues = AmiQueueControl(self.client)
        for queue, interface, name in members:
            await queues.add_member(QueueMemberSpec(queue, interface, name, 0, False, ""))


@contextlib.asynccontextmanager
async def rig(
    engine: AsyncEngine, root: Path, queues: list[QueueSpec], seed: int
) -> AsyncIterator[Rig]:
    """Tenant t2's policy records nothing; t1 the default (every call)."""
    world = await build_world(engine)
    sessions = create_session_factory(engine)
    clock = SystemClock()
    store = RecordingRepository(sessions, world.journal)
    await store.set_policy(RecordingPolicy("t2", auto_record=False), clock.now())
    files = LocalRecordingFiles(root)
    router = AgiRouter()
    names = PbxRecordingNames(store, str(files.root), clock.now)
    router.add_route(SCRIPT, InboundRouteHandler(ROUTES, None, recording=names))
    agi = FastAgiServer(AgiServerConfig(port=0), router)
    await agi.start()
    config = SimulatorConfig(ring_seconds=(0.2, 0.3), poll_interval=0.002)
    config.agi_url = f"agi://127.0.0.1:{agi.port}/{SCRIPT}"
    calls = CallTrackingService(MemoryCallStore())

    async def lookup(call_id: str) -> CallRecord | None:
        return calls.get(call_id)

    try:
        async with FakeAsterisk(queues=queues, seed=seed, config=config) as pbx:
            client = fake_pbx_client(pbx.ami_port)
            service, feed = wired_recordings(sessions, store, files, client, lookup)
            PbxCoordinator(client, calls=AmiCallFeed(calls, clock.now), recordings=feed).attach()
            async with running(client):
                runner = asyncio.create_task(feed.run())
                try:
                    yield Rig(pbx, client, service, store, files, world, sessions)
                finally:
                    runner.cancel()
    finally:
        await agi.stop()


async def test_the_pbx_records_the_queue_call_and_ccbridge_indexes_it_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    agent = Principal("user:agent", Role.AGENT, "t1", frozenset({"recordings:control"}), "1101")
    started = datetime.now(UTC)
    async with rig(engine, tmp_path / "rec", QUEUES, 25) as r:
        store, service = r.store, r.service
        await r.members(
            ("t1-sales", "PJSIP/1101", "1101 张三"), ("t2-service", "PJSIP/2101", "2101 Agent")
        )
        handle = await r.pbx.simulator.place_call(
            "13800138000", did="4008001234", talk_seconds=1.2, agent_hangs_up=False
        )
        off = await r.pbx.simulator.place_call(
            "13900139000", did="4008005678", talk_seconds=0.5, agent_hangs_up=False
        )
        async with asyncio.timeout(5):
            while not (found := await store.of_call(handle.linkedid)):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        paused = await service.control(agent, "t1", handle.linkedid, "pause")
        assert paused.muted
        await asyncio.sleep(0.3)
        await service.control(agent, "t1", handle.linkedid, "resume")
        outcome, off_outcome = await handle, await off
        rec = await settled_recording(service, store, found[0].id)
        actions = list(r.pbx.ami.actions)
        caller = outcome.linkedid
    files, world, sessions = r.files, r.world, r.sessions

    assert outcome.answered
    assert off_outcome.answered
    # The PBX started the recording; ccbridge only muted and unmuted it.
    assert [a.get("Action") for a in actions if "MixMonitor" in (a.get("Action") or "")] == [
        "MixMonitorMute",
        "MixMonitorMute",
    ]
    assert [a.get("State") for a in actions if a.get("Action") == "MixMonitorMute"] == ["1", "0"]
    (rec,) = await store.of_call(caller)
    assert rec.status is RecordingStatus.OK
    assert rec.path == recording_path("t1", caller, started)
    assert (rec.agent_no, rec.skill_group, rec.caller, rec.callee) == (
        "1101",
        "t1-sales",
        "13800138000",
        "4008001234",
    )
    pcm = (files.root / rec.path).read_bytes()[44:]
    assert any(pcm)
    assert sum(1 for i in range(0, len(pcm) - 1600, 1600) if not any(pcm[i : i + 1600])) >= 2
    ready = await world.journal.list_after("t1", 0, 100, types=["recording.ready"])
    assert [(e.call_id, e.data["recording_id"]) for e in ready] == [(caller, rec.id)]
    async with SqlAccessUnitOfWork(sessions) as uow:
        entries = await uow.audit.list(tenant_id="t1", limit=20)
    starts = [e for e in entries if e.action == "recording.start"]
    assert [(e.object_id, e.detail) for e in starts] == [(rec.id, {"call_id": caller, "by": "pbx"})]
    # Policy off: no file name, no monitor-format, no recording of any kind.
    assert await store.of_call(off_outcome.linkedid) == []
    assert not (files.root / "t2").exists()


async def test_a_recorded_caller_transferred_to_a_group_gets_its_next_take(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """``[ccbridge-record-take]``: the first take ends at the transfer, the next answer records
    ``<call-id>-q2.wav``; both are indexed, neither by a MixMonitor ccbridge started."""
    queues = [*QUEUES, QueueSpec("t1-support", monitor_format="wav")]
    async with rig(engine, tmp_path / "rec", queues, 26) as r:
        store, service, client, pbx = r.store, r.service, r.client, r.pbx
        await r.members(
            ("t1-sales", "PJSIP/1101", "1101 张三"), ("t1-support", "PJSIP/1102", "1102 李四")
        )
        handle = await pbx.simulator.place_call(
            "13800138000", did="4008001234", talk_seconds=1.0, agent_hangs_up=False
        )
        async with asyncio.timeout(5):
            while not (first := await store.of_call(handle.linkedid)):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        caller_leg = pbx.model.find_channel(handle.channel)
        assert caller_leg is not None
        (agent_leg,) = pbx.model.bridged_with(caller_leg)
        await client.send_action(blind_transfer(agent_leg.name, "t1-support", "ccbridge-queue"))
        async with asyncio.timeout(10):
            while len(rows := await store.of_call(handle.linkedid)) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            await client.send_action(hangup(handle.channel))
            while any(r.status is RecordingStatus.RECORDING for r in rows):
                await service.idle()
                await asyncio.sleep(0.02)
                rows = await store.of_call(handle.linkedid)
        actions = [a.get("Action") for a in pbx.ami.actions]

    call_id = handle.linkedid
    day = first[0].started_at
    assert [(row.path, row.status) for row in rows] == [
        (recording_path("t1", call_id, day), RecordingStatus.OK),
        (recording_path("t1", call_id, day).replace(".wav", "-q2.wav"), RecordingStatus.OK),
    ]
    assert "MixMonitor" not in actions
