"""Issue 14's sticky edge (ADR 0025): the PBX records the owner's answer on the sticky ring.

The owner's ring is a ``Dial`` in ``[ccbridge-route]``, not a queue, so app_queue's
``monitor-format`` never records it. FastAGI says whether the tenant's policy records the
group (``CCB_STICKY_RECORD=yes``); the shipped dialplan then hands the owner's leg the call's
file name (``__CCB_STICKY_FILE``) and ``Dial``'s ``U(ccbridge-record-answer)`` starts
MixMonitor on that leg when it answers, with or without AMI. The fake PBX plays that dialplan.

- Link up: one ``ok`` recording, indexed from the PBX's ``MixMonitorStart``; ccbridge sends no
  MixMonitor although it sees the owner's leg go up first (the leg carries
  ``CCB_STICKY_FILE``), so there is no second recording.
- A policy that does not record the group: no file, no row, no flag.
- The caller transferred to a recording group after the owner's answer: the queue's answer
  records the next take, ``-q2``, and the owner's take is kept whole.
- AMI cut: a sticky call answered and ended inside the gap has its recording, indexed by the
  backfill, and no ``recording.missing``; one answered in the gap and still up at the resync
  is indexed then, not recorded a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.ami.actions import blind_transfer, hangup
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.queue_log_file import QueueLogFile
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.pbx_cursors import SqlRecordCursors
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.recordings.model import (
    Recording,
    RecordingPolicy,
    RecordingStatus,
    recording_path,
)
from ccbridge.domain.time import SystemClock
from ccbridge.services.call_backfill import CallBackfill
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.pbx_recording_names import PbxRecordingNames
from ccbridge.storage.recording_files import LocalRecordingFiles
from ccbridge.testing.call_generator import CallHandle, SimulatorConfig
from ccbridge.testing.fake_pbx import FakeAsterisk, demo_queues
from ccbridge.testing.pbx_model import QueueSpec
from tests.integration.test_sticky_route_fakepbx import DID, StickyPolicy
from tests.support.ami_rig import fake_pbx_client
from tests.support.event_rig import EventWorld, build_world
from tests.support.fault_proxy import FaultProxy
from tests.support.gap_drill import CallPath, cut, heal
from tests.support.recording_rig import wired_recordings

SCALE = 0.01
"""Real seconds per PBX second."""
OWNER = "PJSIP/1101"


@dataclass
class Rig:
    """ccbridge's FastAGI route (sticky policy, recording names) and a fake PBX behind a
    fault proxy, keeping its queue log."""

    world: EventWorld
    engine: AsyncEngine
    pbx: FakeAsterisk
    proxy: FaultProxy
    store: RecordingRepository
    files: LocalRecordingFiles
    records: Path

    async def start(self) -> CallPath:
        writer = CallBatchWriter(self.world.calls, flush_interval=0.02)
        tracking = CallTrackingService(writer)
        sessions = create_session_factory(self.engine)
        backfill = CallBackfill(
            QueueLogFile(self.records / "queue_log"),
            SqlRecordCursors(sessions),
            self.world.calls,
            tracking,
            SystemClock().now,
            lookback=timedelta(hours=2),
        )
        client = fake_pbx_client(self.proxy.port, ping_interval=0.1, action_timeout=1.0)
        feed = AmiCallFeed(tracking, SystemClock().now, backfill)

        async def lookup(call_id: str) -> CallRecord | None:
            return tracking.get(call_id) or await self.world.calls.get(call_id)

        recordings, recording_feed = wired_recordings(
            sessions, self.store, self.files, client, lookup, tracking=tracking
        )
        backfill.use_recordings(recordings)
        coordinator = PbxCoordinator(client, calls=feed, recordings=recording_feed)
        coordinator.add_login_step(recording_feed.after_login)
        coordinator.attach()
        proc = CallPath(tracking, writer, client, feed, recordings)
        proc.tasks = [
            asyncio.create_task(writer.run()),
            asyncio.create_task(client.run()),
            asyncio.create_task(recording_feed.run()),
        ]
        await client.wait_synced(5)
        return proc

    async def sticky_call(self, talk_seconds: float) -> CallHandle:
        return await self.pbx.simulator.place_call(
            "13800138000", did=DID, talk_seconds=talk_seconds, agent_hangs_up=False
        )

    async def settled(self, proc: CallPath, call_id: str) -> list[Recording]:
        """The call's rows once none is still recording (5 s at most)."""
        async with asyncio.timeout(5):
            while True:
                await proc.recordings.idle()
                rows = await self.store.of_call(call_id)
                if rows and all(r.status is not RecordingStatus.RECORDING for r in rows):
                    return rows
                await asyncio.sleep(0.02)

    def mixmonitors_sent(self) -> list[str]:
        """The MixMonitor actions ccbridge sent the PBX."""
        actions = self.pbx.ami.actions
        return [a.get("Channel") or "" for a in actions if a.get("Action") == "MixMonitor"]

    async def flags(self) -> list[str | None]:
        found = await self.world.journal.list_after("t1", 0, 500, types=["recording.missing"])
        return [e.call_id for e in found]


@contextlib.asynccontextmanager
async def rig(
    engine: AsyncEngine,
    tmp_path: Path,
    policy: RecordingPolicy | None = None,
    queues: list[QueueSpec] | None = None,
) -> AsyncIterator[Rig]:
    world = await build_world(engine)
    sessions = create_session_factory(engine)
    clock = SystemClock()
    store = RecordingRepository(sessions, world.journal)
    if policy is not None:
        await store.set_policy(policy, clock.now())
    files = LocalRecordingFiles(tmp_path / "rec")
    router = AgiRouter()
    names = PbxRecordingNames(store, str(files.root), clock.now)
    route = InboundRouteHandler(
        {DID: InboundRoute("t1", group="sales")}, None, policies=StickyPolicy(), recording=names
    )
    router.add_route(SCRIPT, route)
    agi = FastAgiServer(AgiServerConfig(port=0), router)
    await agi.start()
    config = SimulatorConfig(ring_seconds=(1.0, 2.0), poll_interval=0.002)
    config.agi_url = f"agi://127.0.0.1:{agi.port}/{SCRIPT}"
    records = tmp_path / "pbx-records"
    try:
        async with FakeAsterisk(
            seed=41, time_scale=SCALE, config=config, records_dir=records, queues=queues
        ) as pbx:
            proxy = await FaultProxy("127.0.0.1", pbx.ami_port).start()
            try:
                yield Rig(world, engine, pbx, proxy, store, files, records)
            finally:
                await proxy.close()
    finally:
        await agi.stop()


def _assert_the_pbx_recording(row: Recording, call_id: str, day: datetime) -> None:
    assert row.status is RecordingStatus.OK, row
    assert row.path == recording_path("t1", call_id, day)
    assert (row.agent_no, row.skill_group, row.caller, row.callee) == (
        "1101",
        "t1-sales",
        "13800138000",
        DID,
    )


async def test_with_the_link_up_the_owners_answer_is_recorded_once_by_the_pbx(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    started = datetime.now(UTC)
    async with rig(engine, tmp_path) as r:
        proc = await r.start()
        try:
            handle = await r.sticky_call(talk_seconds=30)
            outcome = await handle
            rows = await r.settled(proc, handle.linkedid)
        finally:
            await proc.stop()
        sent = r.mixmonitors_sent()
        async with SqlAccessUnitOfWork(create_session_factory(engine)) as uow:
            audit = await uow.audit.list(tenant_id="t1", limit=20)
        ready = await r.world.journal.list_after("t1", 0, 100, types=["recording.ready"])
        flags = await r.flags()

    assert (outcome.answered, outcome.member) == (True, OWNER)
    (row,) = rows  # one recording: the PBX's, not a second one of ccbridge's
    _assert_the_pbx_recording(row, handle.linkedid, started)
    assert (row.channel or "").startswith(f"{OWNER}-")  # the owner's leg, as ccbridge records
    assert (r.files.root / row.path).stat().st_size > 44
    assert sent == []
    starts = [e for e in audit if e.action == "recording.start"]
    assert [e.detail for e in starts] == [{"call_id": handle.linkedid, "by": "pbx"}]
    assert [e.call_id for e in ready] == [handle.linkedid]
    assert flags == []


async def test_a_policy_that_does_not_record_the_group_records_no_sticky_answer(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    policy = RecordingPolicy("t1", auto_record_groups=("t1-support",))
    async with rig(engine, tmp_path, policy) as r:
        proc = await r.start()
        try:
            handle = await r.sticky_call(talk_seconds=20)
            outcome = await handle
            await asyncio.sleep(0.1)
            await proc.recordings.idle()
            rows = await r.store.of_call(handle.linkedid)
        finally:
            await proc.stop()
        sent = r.mixmonitors_sent()

    assert (outcome.answered, outcome.member) == (True, OWNER)
    assert rows == []
    assert sent == []
    assert not (r.files.root / "t1").exists()


async def test_a_sticky_answer_inside_an_ami_gap_keeps_its_recording(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    started = datetime.now(UTC)
    async with rig(engine, tmp_path) as r:
        proc = await r.start()
        try:
            await cut(r.proxy, "reset", r.pbx.ami_port)
            ended_in_gap = await r.sticky_call(talk_seconds=5)
            assert (await ended_in_gap).answered
            still_up = await r.sticky_call(talk_seconds=200)
            await asyncio.sleep(20 * SCALE)  # rung (at most 2 PBX seconds) and answered
            assert not still_up.task.done()
            await heal(r.proxy, "reset", r.pbx.ami_port)
            async with asyncio.timeout(10):
                while proc.feed.resyncs < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            await proc.client.wait_synced(5)
            assert (await still_up).answered
            gap_rows = await r.settled(proc, ended_in_gap.linkedid)
            up_rows = await r.settled(proc, still_up.linkedid)
        finally:
            await proc.stop()
        sent = r.mixmonitors_sent()
        flags = await r.flags()

    (gap_row,) = gap_rows
    _assert_the_pbx_recording(gap_row, ended_in_gap.linkedid, started)
    (up_row,) = up_rows
    _assert_the_pbx_recording(up_row, still_up.linkedid, started)
    for row in (gap_row, up_row):
        assert (r.files.root / row.path).stat().st_size > 44
    assert flags == []
    assert sent == []


async def test_a_transfer_after_the_owners_answer_records_the_next_take(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """The owner's take is on the owner's leg, not on the caller, so ``[ccbridge-record-take]``
    finds it on disk and the queue's MixMonitor writes ``<call-id>-q2.wav``, not over it."""
    queues = [
        dataclasses.replace(q, monitor_format="wav") if q.name == "t1-support" else q
        for q in demo_queues()
    ]
    async with rig(engine, tmp_path, queues=queues) as r:
        proc = await r.start()
        try:
            handle = await r.sticky_call(talk_seconds=300)
            async with asyncio.timeout(5):
                while not (await r.store.of_call(handle.linkedid)):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            caller = r.pbx.model.find_channel(handle.channel)
            assert caller is not None
            (owner_leg,) = r.pbx.model.bridged_with(caller)
            await proc.client.send_action(
                blind_transfer(owner_leg.name, "t1-support", "ccbridge-queue")
            )
            async with asyncio.timeout(10):
                while len(await r.store.of_call(handle.linkedid)) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            await proc.client.send_action(hangup(handle.channel))
            rows = await r.settled(proc, handle.linkedid)
        finally:
            await proc.stop()
        sent = r.mixmonitors_sent()

    first = recording_path("t1", handle.linkedid, rows[0].started_at)
    assert [(row.path, row.status) for row in rows] == [
        (first, RecordingStatus.OK),
        (first.replace(".wav", "-q2.wav"), RecordingStatus.OK),
    ]
    assert (rows[0].channel or "").startswith(f"{OWNER}-")
    assert sent == []
