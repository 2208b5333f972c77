"""Issue 14's AMI-outage drill against a real Asterisk 22: no call is lost to an AMI gap.

ccbridge's AMI link runs through the fault proxy and is cut three times for 20 s (reset, refused,
half-open) while a second, direct AMI session places calls into ``[drill-test-queue]``
(asterisk/test-tier): per cut, one answered live that ends in the gap, two answered and ended in
the gap, one abandoned in it, two answered in it and still up at resync. The PBX writes its own
queue log (``CCBRIDGE_TEST_QUEUE_LOG``, default ``/var/log/asterisk/queue_log``), which the
backfill reads. Needs the test-tier dialplan and queue ``ccbridge-drill`` loaded (docs/asterisk.md).

Recordings (ADR 0025): each call carries the ``MONITOR_FILENAME`` ccbridge's FastAGI would set,
and ``ccbridge-drill`` has ``monitor-format = wav``, so the PBX's app_queue records every
answered call itself, AMI or not. Every answered call then has exactly one ``ok`` recording, the
PBX's file, with no ``recording.missing``, and ccbridge never sent a MixMonitor of its own.
Needs ``CCBRIDGE_TEST_RECORDINGS_DIR`` (default ``/var/lib/ccbridge-test/recordings``) writable
by the PBX, and ``MIXMONITOR_FILENAME`` in ``channelvars``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.queue_log_file import QueueLogFile
from ccbridge.asterisk.recording_control import AmiRecordingFeed
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories.pbx_cursors import SqlRecordCursors
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.pbx_records import PbxCall, assemble_calls
from ccbridge.domain.recordings.model import RecordingStatus
from ccbridge.domain.recordings.pbx_names import monitor_filename
from ccbridge.domain.time import SystemClock
from ccbridge.services.call_audit import audit_period
from ccbridge.services.call_backfill import CallBackfill
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.recordings import RecordingService
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.support.event_rig import EventWorld, build_world
from tests.support.fault_proxy import FaultProxy
from tests.support.gap_drill import api_calls, assert_every_call_whole, cut, heal, journal_by_call
from tests.support.recording_rig import wired_recordings

QUEUE = "ccbridge-drill"
MEMBERS = [(f"Local/23{i:02d}@ccbridge-test-agents", f"91{i:02d} 演练{i}") for i in range(1, 7)]
"""``23NN`` ring 1.5 s, then answer and talk 20 s (asterisk/test-tier)."""
QUEUE_LOG = Path(os.environ.get("CCBRIDGE_TEST_QUEUE_LOG", "/var/log/asterisk/queue_log"))
CUT_SECONDS = float(os.environ.get("CCBRIDGE_TEST_GAP_SECONDS", "20"))
DOWNTIME_SECONDS = float(os.environ.get("CCBRIDGE_TEST_DOWNTIME_SECONDS", "60"))
RECORDINGS = Path(
    os.environ.get("CCBRIDGE_TEST_RECORDINGS_DIR", "/var/lib/ccbridge-test/recordings")
).resolve()
"""The PBX writes here and ccbridge reads here: one absolute path, symlinks resolved."""


def _need_pbx_files() -> None:
    if not os.access(QUEUE_LOG, os.R_OK):
        pytest.skip(f"the PBX's queue log {QUEUE_LOG} is not readable here")
    if not RECORDINGS.is_dir():
        pytest.skip(f"no recordings directory {RECORDINGS} writable by the PBX")


def _named(call_id: str) -> dict[str, str]:
    """What ccbridge's FastAGI sets on a t1 call (its policy records): the file app_queue
    records to when a member answers."""
    root = str(RECORDINGS)
    return {"MONITOR_FILENAME": monitor_filename(root, "t1", call_id, datetime.now(UTC))}


def _recording_service(
    world: EventWorld, engine: AsyncEngine, client: AmiClient, tracking: CallTrackingService
) -> tuple[RecordingService, AmiRecordingFeed]:
    """Recording control, index and the coordinator's recordings handler, as bootstrap wires
    them (a login step records or indexes what the gap left up)."""
    sessions = create_session_factory(engine)

    async def lookup(call_id: str) -> CallRecord | None:
        return tracking.get(call_id) or await world.calls.get(call_id)

    return wired_recordings(
        sessions,
        RecordingRepository(sessions, world.journal),
        LocalRecordingFiles(RECORDINGS),
        client,
        lookup,
        tracking=tracking,
        finalise_delay=0.3,
    )


async def _assert_recordings(
    world: EventWorld, engine: AsyncEngine, calls: list[PbxCall], names: dict[str, str]
) -> None:
    """Every answered call: one ``ok`` recording, the PBX's file under the name it was given;
    an abandoned one: none; no ``recording.missing`` for any of them."""
    store = RecordingRepository(create_session_factory(engine))
    root = str(RECORDINGS)
    for call in calls:
        rows = await store.of_call(call.linkedid)
        if call.outcome != "answered":
            assert rows == [], call
            continue
        assert [r.status for r in rows] == [RecordingStatus.OK], (call, rows)
        assert f"{root}/{rows[0].path}" == f"{names[call.linkedid]}.wav"
        assert rows[0].agent_no is not None
        assert (RECORDINGS / rows[0].path).stat().st_size > 44
    # Only the drill's calls: the shared queue log also holds the other tests' calls.
    flags = await world.journal.list_after("t1", 0, 1000, types=["recording.missing"])
    assert [e for e in flags if e.call_id in names] == []


async def _until(cond: Callable[[], bool], limit: float) -> None:
    """Poll a condition on state the PBX changes (nothing to wait on but time)."""
    async with asyncio.timeout(limit):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.1)


@dataclass
class ProxiedCcbridge:
    """ccbridge's call path (backfill on) and recording path, wired as bootstrap does, with
    its AMI link through a fault proxy in front of the real PBX."""

    engine: AsyncEngine
    world: EventWorld
    writer: CallBatchWriter
    tracking: CallTrackingService
    proxy: FaultProxy
    client: AmiClient
    feed: AmiCallFeed
    recordings: RecordingService
    recording_feed: AmiRecordingFeed
    sent: list[str] = field(default_factory=list)
    """The names of the AMI actions ccbridge sent."""


async def proxied_ccbridge(ami_config: AmiConfig, database: Path) -> ProxiedCcbridge:
    """A fresh SQLite database at *database*, and ccbridge attached to the proxied link (its
    tasks are the caller's to start)."""
    url = f"sqlite+aiosqlite:///{database}"
    await run_migrations_async(url)
    engine = create_engine(url)
    world = await build_world(engine)
    writer = CallBatchWriter(world.calls, flush_interval=0.05)
    tracking = CallTrackingService(writer)
    proxy = await FaultProxy(ami_config.host, ami_config.port).start()
    client = AmiClient(
        AmiConfig(
            host="127.0.0.1",
            port=proxy.port,
            username=ami_config.username,
            secret=ami_config.secret,
            ping_interval=2.0,
            connect_timeout=2.0,
            action_timeout=5.0,
            backoff_initial=0.2,
            backoff_max=1.0,
        )
    )
    backfill = CallBackfill(
        QueueLogFile(QUEUE_LOG),
        SqlRecordCursors(create_session_factory(engine)),
        world.calls,
        tracking,
        SystemClock().now,
        lookback=timedelta(minutes=10),
    )
    feed = AmiCallFeed(tracking, SystemClock().now, backfill)
    recordings, recording_feed = _recording_service(world, engine, client, tracking)
    backfill.use_recordings(recordings)
    wired = ProxiedCcbridge(
        engine, world, writer, tracking, proxy, client, feed, recordings, recording_feed
    )
    client.action_observer = lambda name, _s, _o: wired.sent.append(name)
    pbx = PbxCoordinator(client, calls=feed, recordings=recording_feed)
    pbx.add_login_step(recording_feed.after_login)
    pbx.attach()
    return wired


async def test_real_pbx_loses_no_call_to_an_ami_gap(
    real_ami: AmiClient, ami_config: AmiConfig, tmp_path: Path
) -> None:
    _need_pbx_files()
    c = await proxied_ccbridge(ami_config, tmp_path / "drill.db")
    engine, world, writer, tracking = c.engine, c.world, c.writer, c.tracking
    proxy, client, feed, recordings = c.proxy, c.client, c.feed, c.recordings
    recording_feed, sent = c.recording_feed, c.sent
    placed: list[str] = []
    names: dict[str, str] = {}

    async def caller(wait_s: float) -> str:
        call_id = f"ccb-drill-{uuid.uuid4().hex[:12]}"
        names[call_id] = _named(call_id)["MONITOR_FILENAME"]
        await real_ami.send_action(
            act.originate(
                "Local/s@drill-test-queue",
                application="Wait",
                data=str(wait_s),
                caller_id='"drill" <13800138000>',
                channel_id=call_id,
                variables=_named(call_id),
            )
        )
        placed.append(call_id)
        return call_id

    def answered_live(call_id: str) -> bool:
        rec = tracking.get(call_id)
        return rec is not None and rec.answered_at is not None

    for interface, name in MEMBERS:
        await real_ami.send_action(act.queue_add(QUEUE, interface, member_name=name))
    tasks = [
        asyncio.create_task(writer.run()),
        asyncio.create_task(client.run()),
        asyncio.create_task(recording_feed.run()),
    ]
    started = datetime.now(UTC) - timedelta(seconds=1)
    still_up: set[str] = set()
    try:
        await client.wait_synced(10)
        for n, shape in enumerate(("reset", "refused", "half_open"), start=2):
            pre = await caller(10)
            await _until(lambda pre=pre: answered_live(pre), 10)
            await cut(proxy, shape, ami_config.port)
            if shape == "half_open":
                await _until(lambda: not client.status.logged_in, CUT_SECONDS)
            await caller(6)
            await caller(6)
            await caller(1)  # hangs up while the member still rings: abandoned
            await asyncio.sleep(CUT_SECONDS - 6)
            up = [await caller(30), await caller(30)]
            await asyncio.sleep(5)
            await heal(proxy, shape, ami_config.port)
            await _until(lambda n=n: feed.resyncs >= n, 30)
            still_up |= set(up)
        ended = lambda: all(  # noqa: E731
            (rec := tracking.get(c)) is not None and rec.state.is_final for c in placed
        )
        await _until(ended, 90)
        await writer.flush()
        entries = await QueueLogFile(QUEUE_LOG).read_since(started)
        calls = [c for c in assemble_calls(entries) if c.linkedid in set(placed)]
        assert len(calls) == len(placed) == 18
        assert_every_call_whole(calls, await api_calls(world, calls), await journal_by_call(world))
        assert all(tracking.get(c) is not None for c in still_up)
        _, diffs = await audit_period(
            QueueLogFile(QUEUE_LOG), world.calls, started, datetime.now(UTC)
        )
        assert [d for d in diffs if d.call_id in set(placed)] == []
        await recordings.idle()
        await _assert_recordings(world, engine, calls, names)
        assert "MixMonitor" not in sent  # the PBX started every recording
    finally:
        await client.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await writer.stop()
        await proxy.close()
        for interface, _ in MEMBERS:
            with contextlib.suppress(Exception):
                await real_ami.send_action(act.queue_remove(QUEUE, interface))
        await engine.dispose()


async def test_real_pbx_ccbridge_stopped_for_a_minute_then_started(
    real_ami: AmiClient, ami_config: AmiConfig, tmp_path: Path
) -> None:
    """ccbridge is down for 60 s while calls go on; started again, it has every one of them,
    and every answered one has its recording (the PBX made it)."""
    _need_pbx_files()
    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    await run_migrations_async(url)
    engine = create_engine(url)
    world = await build_world(engine)
    placed: list[str] = []
    names: dict[str, str] = {}
    services: list[RecordingService] = []

    async def start() -> tuple[CallTrackingService, CallBatchWriter, AmiClient, list[object]]:
        writer = CallBatchWriter(world.calls, flush_interval=0.05)
        tracking = CallTrackingService(writer)
        tracking.restore(await world.calls.open_calls())
        client = AmiClient(ami_config)
        backfill = CallBackfill(
            QueueLogFile(QUEUE_LOG),
            SqlRecordCursors(create_session_factory(engine)),
            world.calls,
            tracking,
            SystemClock().now,
            lookback=timedelta(minutes=10),
        )
        recordings, recording_feed = _recording_service(world, engine, client, tracking)
        backfill.use_recordings(recordings)
        services.append(recordings)
        pbx = PbxCoordinator(
            client,
            calls=AmiCallFeed(tracking, SystemClock().now, backfill),
            recordings=recording_feed,
        )
        pbx.add_login_step(recording_feed.after_login)
        pbx.attach()
        tasks: list[object] = [
            asyncio.create_task(writer.run()),
            asyncio.create_task(client.run()),
            asyncio.create_task(recording_feed.run()),
        ]
        await client.wait_synced(10)
        return tracking, writer, client, tasks

    async def stop(writer: CallBatchWriter, client: AmiClient, tasks: list[object]) -> None:
        await client.stop()
        for task in tasks:
            assert isinstance(task, asyncio.Task)
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await writer.stop()

    async def caller(wait_s: float) -> str:
        call_id = f"ccb-down-{uuid.uuid4().hex[:12]}"
        names[call_id] = _named(call_id)["MONITOR_FILENAME"]
        await real_ami.send_action(
            act.originate(
                "Local/s@drill-test-queue",
                application="Wait",
                data=str(wait_s),
                caller_id='"drill" <13800138000>',
                channel_id=call_id,
                variables=_named(call_id),
            )
        )
        placed.append(call_id)
        return call_id

    for interface, name in MEMBERS:
        await real_ami.send_action(act.queue_add(QUEUE, interface, member_name=name))
    started = datetime.now(UTC) - timedelta(seconds=1)
    try:
        tracking, writer, client, tasks = await start()
        pre = await caller(20)

        def pre_answered() -> bool:
            rec = tracking.get(pre)
            return rec is not None and rec.answered_at is not None

        await _until(pre_answered, 10)
        await stop(writer, client, tasks)  # ccbridge is down; the PBX goes on
        await caller(6)
        await caller(6)
        await caller(1)
        await asyncio.sleep(DOWNTIME_SECONDS - 12)
        await caller(30)
        await caller(30)
        await asyncio.sleep(10)
        tracking, writer, client, tasks = await start()
        try:
            ended = lambda: all(  # noqa: E731
                (rec := tracking.get(c)) is not None and rec.state.is_final for c in placed
            )
            await _until(ended, 90)
            await writer.flush()
            await services[-1].idle()
        finally:
            await stop(writer, client, tasks)
        entries = await QueueLogFile(QUEUE_LOG).read_since(started)
        calls = [c for c in assemble_calls(entries) if c.linkedid in set(placed)]
        assert len(calls) == len(placed) == 6
        assert_every_call_whole(calls, await api_calls(world, calls), await journal_by_call(world))
        _, diffs = await audit_period(
            QueueLogFile(QUEUE_LOG), world.calls, started, datetime.now(UTC)
        )
        assert [d for d in diffs if d.call_id in set(placed)] == []
        await _assert_recordings(world, engine, calls, names)
    finally:
        for interface, _ in MEMBERS:
            with contextlib.suppress(Exception):
                await real_ami.send_action(act.queue_remove(QUEUE, interface))
        await engine.dispose()
