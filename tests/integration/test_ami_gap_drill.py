"""Issue 14's AMI-outage drill on the fake PBX: no call is lost to an AMI gap.

The link to the PBX runs through a TCP fault proxy and is cut three times, once per shape a
real network cut takes: reset (every connection RST, reconnects reset too), refused (the port
closed) and half-open (nothing arrives, the sockets stay up). Each cut lasts 20 PBX seconds
(the fake's clock runs 100 times faster, so 0.2 s here). Around each cut: a call answered
live that ends in the gap; two calls that start and end in the gap; one abandoned in the gap;
two answered in the gap and still up at resync. Afterwards every call of the PBX's queue log
is in ``/api/v1/calls`` with the right four variables and agent, each of its journal events
exactly once and in order, and ``calls audit`` finds no difference. With the backfill off the
audit names the calls that were lost. The same holds when ccbridge itself is stopped for 60
PBX seconds while calls go on, and then started.

Recordings (ADR 0025): FastAGI names every call's file and the PBX's app_queue records it when
a member answers (the queues have ``monitor-format``), so a t1 call that starts and ends inside
a gap has its recording, indexed from the backfill, with no ``missing`` row; a call answered in
a gap and still up is indexed after the resync; ccbridge never starts a MixMonitor of its own.
Tenant t2's policy records nothing: its queue has no ``monitor-format``, and none of its calls
has a recording or a ``recording.missing``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.asterisk.queue_log_file import QueueLogFile
from ccbridge.cli import app as cli_app
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.pbx_cursors import SqlRecordCursors
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.calls.audit import MISSING
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.pbx_records import PbxCall, assemble_calls, parse_queue_log_line
from ccbridge.domain.calls.tracker import agent_no_from_member
from ccbridge.domain.recordings.model import RecordingPolicy, RecordingStatus, recording_path
from ccbridge.domain.time import SystemClock
from ccbridge.services.call_audit import audit_period
from ccbridge.services.call_backfill import CallBackfill
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.pbx_recording_names import PbxRecordingNames
from ccbridge.storage.recording_files import LocalRecordingFiles
from ccbridge.testing.call_generator import CallHandle, DidRoute, SimulatorConfig
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import MemberSpec, QueueSpec
from tests.support.ami_rig import fake_pbx_client
from tests.support.event_rig import EventWorld, build_world
from tests.support.fault_proxy import FaultProxy
from tests.support.gap_drill import (
    CallPath,
    api_calls,
    assert_every_call_whole,
    cut,
    heal,
    journal_by_call,
)
from tests.support.recording_rig import wired_recordings

SCALE = 0.01
"""Real seconds per PBX second: a 20 s cut takes 0.2 s."""
CUT_SECONDS = 20.0
# Long enough to outlast any resync; the drill hangs these calls up itself.
HELD_TALK_SECONDS = 360_000.0
DOWNTIME_SECONDS = 60.0
DIDS = {"4008001234": DidRoute("t1", "t1-sales"), "4008005678": DidRoute("t2", "t2-service")}
QUEUES = [
    QueueSpec(
        "t1-sales",
        "rrmemory",
        [MemberSpec(f"Local/20{i:02d}@agents", f"10{i:02d} 坐席{i}") for i in range(1, 11)],
        monitor_format="wav",  # what ccbridge renders for a group its tenant's policy records
    ),
    QueueSpec(
        "t2-service",
        "rrmemory",
        [MemberSpec(f"Local/21{i:02d}@agents", f"20{i:02d} Agent {i}") for i in range(1, 11)],
    ),
]


@dataclass
class Drill:
    """The fake PBX (keeping its queue log), the proxy in front of its AMI, the API's world."""

    world: EventWorld
    engine: AsyncEngine
    pbx: FakeAsterisk
    proxy: FaultProxy
    records: Path
    files: LocalRecordingFiles
    handles: list[CallHandle] = field(default_factory=list)

    def queue_log(self) -> QueueLogFile:
        return QueueLogFile(self.records / "queue_log")

    async def start_process(self, *, port: int, backfill: bool = True) -> CallPath:
        """Start ccbridge's call path like bootstrap wires it; open calls restored first."""
        writer = CallBatchWriter(self.world.calls, flush_interval=0.02)
        tracking = CallTrackingService(writer)
        tracking.restore(await self.world.calls.open_calls())
        sessions = create_session_factory(self.engine)
        filler = (
            CallBackfill(
                self.queue_log(),
                SqlRecordCursors(sessions),
                self.world.calls,
                tracking,
                SystemClock().now,
                lookback=timedelta(hours=2),
            )
            if backfill
            else None
        )
        client = fake_pbx_client(port, ping_interval=0.1, action_timeout=1.0)
        feed = AmiCallFeed(tracking, SystemClock().now, filler)

        async def lookup(call_id: str) -> CallRecord | None:
            return tracking.get(call_id) or await self.world.calls.get(call_id)

        recordings, recording_feed = wired_recordings(
            sessions,
            RecordingRepository(sessions, self.world.journal),
            self.files,
            client,
            lookup,
            tracking=tracking,
            finalise_delay=0.02,
        )
        if filler is not None:
            filler.use_recordings(recordings)
        pbx = PbxCoordinator(client, calls=feed, recordings=recording_feed)
        pbx.add_login_step(recording_feed.after_login)
        pbx.attach()
        proc = CallPath(tracking, writer, client, feed, recordings)
        proc.tasks = [
            asyncio.create_task(writer.run()),
            asyncio.create_task(client.run()),
            asyncio.create_task(recording_feed.run()),
        ]
        await client.wait_synced(5)
        return proc

    async def call(self, did: str, **kw: Any) -> CallHandle:
        handle = await self.pbx.simulator.place_call(did=did, agent_hangs_up=False, **kw)
        self.handles.append(handle)
        return handle

    async def answered_live(self, proc: CallPath, handle: CallHandle) -> None:
        """Wait until ccbridge saw the agent answer on the live stream."""
        async with asyncio.timeout(5):
            while True:
                rec = proc.tracking.get(handle.linkedid)
                if rec is not None and rec.answered_at is not None:
                    return
                await asyncio.sleep(0.005)

    async def in_gap_calls(self) -> tuple[list[CallHandle], list[CallHandle]]:
        """Calls placed while ccbridge is away: three short ones (two answered, one abandoned)
        and two that stay up until :meth:`hang_up` ends them, whatever the machine's speed."""
        short = [
            await self.call("4008001234", talk_seconds=3),
            await self.call("4008005678", talk_seconds=4),
            await self.call("4008005678", abandon_after=0.5),
        ]
        up = [
            await self.call("4008001234", talk_seconds=HELD_TALK_SECONDS),
            await self.call("4008005678", talk_seconds=HELD_TALK_SECONDS),
        ]
        await self.routed([*short, *up])
        return short, up

    async def over(self, handles: list[CallHandle]) -> None:
        """Wait until these calls have ended on the PBX (a loaded machine may be slow)."""
        async with asyncio.timeout(60):
            await asyncio.gather(*(h.task for h in handles))

    def hang_up(self, handles: list[CallHandle]) -> None:
        """The callers of these calls hang up now, as a caller would (the PBX's own events)."""
        server = self.pbx.simulator.server
        for handle in handles:
            channel = server.model.find_channel(handle.channel)
            if channel is not None:
                server.hangup_channel(channel)

    async def routed(self, handles: list[CallHandle]) -> None:
        """Wait until FastAGI has routed every call (its ``CCBCALL`` line is written): on a
        loaded machine the routing may otherwise outlast the gap, and the call would not start
        inside it."""
        log = self.records / "queue_log"
        async with asyncio.timeout(10):
            while True:
                text = log.read_text(encoding="utf-8") if log.exists() else ""
                if all(f"|{h.linkedid}|" in text for h in handles):
                    return
                await asyncio.sleep(0.01)

    async def pbx_seconds(self, seconds: float) -> None:
        await asyncio.sleep(seconds * SCALE)

    async def settle(self, *procs: CallPath) -> None:
        """Every call over, every record written."""
        async with asyncio.timeout(15):
            await asyncio.gather(*(h.task for h in self.handles))
        await asyncio.sleep(0.1)
        for proc in procs:
            await proc.writer.flush()

    def pbx_calls(self) -> list[PbxCall]:
        text = (self.records / "queue_log").read_text(encoding="utf-8")
        return assemble_calls(e for line in text.split("\n") if (e := parse_queue_log_line(line)))

    async def assert_recordings(self, calls: list[PbxCall]) -> None:
        """Every answered t1 call has one recording, the PBX's file, ``ok``, with its agent
        and group; t2 records nothing; no ``recording.missing``; ccbridge sent no MixMonitor."""
        store = RecordingRepository(create_session_factory(self.engine))
        answered = [c for c in calls if c.outcome == "answered"]
        assert any(c.tenant == "t1" for c in answered)
        for call in answered:
            rows = await store.of_call(call.linkedid)
            if call.tenant == "t2":
                assert rows == [], call
                continue
            assert len(rows) == 1, (call, rows)
            (row,) = rows
            assert row.status is RecordingStatus.OK, (call, row)
            assert row.path == recording_path("t1", call.linkedid, call.started_at), row
            assert (row.agent_no, row.skill_group) == (
                agent_no_from_member(call.agent_member or "", ""),
                "t1-sales",
            ), row
            assert (self.files.root / row.path).stat().st_size > 44
        for call in calls:
            if call.outcome != "answered":
                assert await store.of_call(call.linkedid) == [], call
        for tenant in ("t1", "t2"):
            flags = await self.world.journal.list_after(
                tenant, 0, 1000, types=["recording.missing"]
            )
            assert flags == []
        ready = await self.world.journal.list_after("t1", 0, 1000, types=["recording.ready"])
        assert sorted(str(e.call_id) for e in ready) == sorted(
            c.linkedid for c in answered if c.tenant == "t1"
        )
        assert [a for a in self.pbx.ami.actions if a.get("Action") == "MixMonitor"] == []


@pytest.fixture
async def drill(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Drill]:
    world = await build_world(engine)
    sessions = create_session_factory(engine)
    clock = SystemClock()
    policies = RecordingRepository(sessions, world.journal)
    await policies.set_policy(RecordingPolicy("t2", auto_record=False), clock.now())
    files = LocalRecordingFiles(tmp_path / "recordings")
    # ccbridge's FastAGI route, up through the AMI gaps: it tags the call and names its file.
    router = AgiRouter()
    routes = {did: InboundRoute(r.tenant, r.queue) for did, r in DIDS.items()}
    names = PbxRecordingNames(policies, str(files.root), clock.now)
    router.add_route(SCRIPT, InboundRouteHandler(routes, None, recording=names))
    agi = FastAgiServer(AgiServerConfig(port=0), router)
    await agi.start()
    config = SimulatorConfig(ring_seconds=(1.0, 2.0), poll_interval=0.002)
    config.agi_url = f"agi://127.0.0.1:{agi.port}/{SCRIPT}"
    records = tmp_path / "pbx-records"
    try:
        async with FakeAsterisk(
            seed=14,
            time_scale=SCALE,
            queues=QUEUES,
            dids=DIDS,
            config=config,
            records_dir=records,
        ) as pbx:
            proxy = await FaultProxy("127.0.0.1", pbx.ami_port).start()
            try:
                yield Drill(world, engine, pbx, proxy, records, files)
            finally:
                await proxy.close()
    finally:
        await agi.stop()


async def _resynced(proc: CallPath, count: int) -> None:
    async with asyncio.timeout(10):
        while proc.feed.resyncs < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await proc.client.wait_synced(5)


async def run_cuts(drill: Drill, proc: CallPath) -> tuple[set[str], set[str]]:
    """Three cuts (reset, refused, half-open); returns the Linkedids of the calls placed in a
    gap and of those still up when it closed.

    Each gap lasts until its short calls are over, and its long calls are hung up only after
    ccbridge has resynced, so both kinds exist on any machine, however loaded."""
    in_gap: set[str] = set()
    still_up: set[str] = set()
    for n, shape in enumerate(("reset", "refused", "half_open"), start=2):
        pre = await drill.call("4008001234", talk_seconds=12)
        await drill.answered_live(proc, pre)
        await cut(drill.proxy, shape, drill.pbx.ami_port)
        if shape == "half_open":
            async with asyncio.timeout(5):
                while proc.client.status.logged_in:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        placed = len(drill.handles)
        short, up = await drill.in_gap_calls()
        in_gap |= {h.linkedid for h in drill.handles[placed:]}
        await drill.pbx_seconds(CUT_SECONDS)
        await drill.over(short)
        await heal(drill.proxy, shape, drill.pbx.ami_port)
        await _resynced(proc, n)
        still_up |= {h.linkedid for h in up if not h.task.done()}
        drill.hang_up(up)
    return in_gap, still_up


async def test_three_cuts_lose_no_call(drill: Drill) -> None:
    proc = await drill.start_process(port=drill.proxy.port)
    try:
        _, still_up = await run_cuts(drill, proc)
        await drill.settle(proc)
    finally:
        await proc.stop()
    assert still_up, "the drill must leave calls up at resync"
    calls = drill.pbx_calls()
    assert len(calls) == 3 * 6
    assert sorted({c.outcome for c in calls}) == ["abandoned", "answered"]
    api = await api_calls(drill.world, calls)
    journal = await journal_by_call(drill.world)
    assert_every_call_whole(calls, api, journal)
    # Calls that lived wholly inside a gap were learned late, and the journal says so.
    late = [
        e
        for c in calls
        for e in journal[c.linkedid]
        if c.linkedid not in still_up and e["data"].get("reconstructed")
    ]
    assert late
    assert all(e["data"]["learned_at"] for e in late)
    start = min(c.started_at for c in calls) - timedelta(seconds=1)
    end = max(c.started_at for c in calls) + timedelta(seconds=1)
    checked, diffs = await audit_period(drill.queue_log(), drill.world.calls, start, end)
    assert (len(checked), diffs) == (len(calls), [])
    await drill.assert_recordings(calls)


async def test_without_backfill_the_audit_names_the_lost_calls(
    drill: Drill, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = await drill.start_process(port=drill.proxy.port, backfill=False)
    try:
        in_gap, up_ids = await run_cuts(drill, proc)
        await drill.settle(proc)
    finally:
        await proc.stop()
    calls = drill.pbx_calls()
    # Live calls are resynced whole even without the records: their agent is known.
    for rec in await asyncio.gather(*(drill.world.calls.get(i) for i in up_ids)):
        assert rec is not None
        assert rec.agent_no is not None
        assert rec.answered_at is not None
    start = min(c.started_at for c in calls) - timedelta(seconds=1)
    end = max(c.started_at for c in calls) + timedelta(seconds=1)
    _, diffs = await audit_period(drill.queue_log(), drill.world.calls, start, end)
    missing = {d.call_id for d in diffs if d.field == MISSING}
    # The calls that started and ended inside a gap (at least 3 per cut) never reached
    # ccbridge; those still up at resync did.
    assert missing == in_gap - up_ids
    assert len(missing) >= 9
    # The command line says the same and fails.
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", db_url)
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli_app,
        [
            "calls",
            "audit",
            "--from",
            start.isoformat(),
            "--to",
            end.isoformat(),
            "--queue-log",
            str(drill.records / "queue_log"),
        ],
    )
    assert result.exit_code == 1, result.output
    named = {line.split("\t", 1)[0] for line in result.output.splitlines() if "\tmissing\t" in line}
    assert named == missing


async def test_ccbridge_stopped_for_a_minute_then_started(drill: Drill) -> None:
    proc = await drill.start_process(port=drill.pbx.ami_port)
    pre = await drill.call("4008001234", talk_seconds=30)
    await drill.answered_live(proc, pre)
    await proc.stop()  # ccbridge goes down; the PBX goes on
    short, up = await drill.in_gap_calls()
    await drill.pbx_seconds(DOWNTIME_SECONDS)
    await drill.over(short)
    proc = await drill.start_process(port=drill.pbx.ami_port)
    try:
        assert proc.feed.resyncs == 1
        assert all(not h.task.done() for h in up)
        drill.hang_up(up)
        await drill.settle(proc)
    finally:
        await proc.stop()
    calls = drill.pbx_calls()
    assert len(calls) == 6
    assert_every_call_whole(
        calls, await api_calls(drill.world, calls), await journal_by_call(drill.world)
    )
    start = min(c.started_at for c in calls) - timedelta(seconds=1)
    end = max(c.started_at for c in calls) + timedelta(seconds=1)
    _, diffs = await audit_period(drill.queue_log(), drill.world.calls, start, end)
    assert diffs == []
    await drill.assert_recordings(calls)
