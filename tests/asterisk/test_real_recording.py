"""Recording on a real Asterisk 22: an answered queue call is recorded through MixMonitor and
the file lands in the index with the four call variables, and ``recording.ready`` lands in the
event journal in the same transaction.

Needs context ``rec-test-queue`` from asterisk/test-tier/ (sets CCB_TENANT=t1 and
CCB_DID=4008001234, then queues in ``ccbridge-test``; see docs/asterisk.md, section 5) and a
recordings directory the PBX writes to (``CCBRIDGE_TEST_RECORDINGS_DIR``, default
``/var/lib/ccbridge-test/recordings``).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ccbridge.asterisk.ami import actions as act
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.asterisk.recording_control import AmiRecorderControl, AmiRecordingFeed
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.journal import SqlJournal
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories.recordings import RecordingRepository
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

QUEUE = "ccbridge-test"
MEMBER = "Local/2001@ccbridge-test-agents"
ROOT = Path(os.environ.get("CCBRIDGE_TEST_RECORDINGS_DIR", "/var/lib/ccbridge-test/recordings"))
ROOT_EXISTS = ROOT.is_dir()


class Sink:
    def submit(self, record: CallRecord) -> None:
        pass


async def test_answered_call_is_recorded_and_indexed(real_ami: AmiClient, tmp_path: Path) -> None:
    if not ROOT_EXISTS:
        pytest.skip(f"no recordings directory {ROOT} writable by the PBX")
    url = f"sqlite+aiosqlite:///{tmp_path / 'rec.db'}"
    await run_migrations_async(url)
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    clock = SystemClock()
    calls = CallTrackingService(Sink())
    call_feed = AmiCallFeed(calls, clock.now)
    journal = SqlJournal(sessions)
    store = RecordingRepository(sessions, journal)
    files = LocalRecordingFiles(ROOT)

    async def lookup(call_id: str) -> CallRecord | None:
        return calls.get(call_id)

    service = RecordingService(
        store,
        files,
        AmiRecorderControl(real_ami),
        lookup,
        AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now),
        clock,
        LinkSigner(b"real-pbx-test-link-key"),
        finalise_delay=0.3,
    )
    feed = AmiRecordingFeed(service.on_agent_connect, service.on_channel_gone)
    PbxCoordinator(real_ami, calls=call_feed, recordings=feed).attach()
    runner = asyncio.create_task(feed.run())
    control = AmiQueueControl(real_ami)
    await control.add_member(QueueMemberSpec(QUEUE, MEMBER, "9001 测试", 0, False, ""))
    found = []
    try:
        started = datetime.now(UTC)
        await real_ami.send_action(
            act.originate(
                "Local/s@rec-test-queue",
                application="Wait",
                data="4",
                caller_id='"ccbridge test" <13800138000>',
            )
        )
        async with asyncio.timeout(30):
            while True:
                await service.idle()
                found = await store.search(
                    RecordingQuery(tenant="t1", started_from=started, include_unavailable=True)
                )
                if found and found[0].status is not RecordingStatus.RECORDING:
                    break
                await asyncio.sleep(0.2)
        ready = await journal.list_after("t1", 0, 100, types=["recording.ready"])
    finally:
        runner.cancel()
        await control.remove_member(QUEUE, MEMBER)
        await engine.dispose()
    rec = found[0]
    (event,) = ready
    assert event.call_id == rec.call_id
    assert event.data["recording_id"] == rec.id
    params = event.data["params"]
    assert (params["agent_no"], params["skill_group"], params["caller_original"]) == (
        "9001",
        QUEUE,
        "13800138000",
    )
    assert params["callee_original"] == "4008001234"
    try:
        assert rec.status is RecordingStatus.OK
        assert rec.path.startswith("t1/")
        assert rec.path.endswith(f"{rec.call_id}.wav")
        assert (rec.agent_no, rec.skill_group, rec.caller, rec.callee) == (
            "9001",
            QUEUE,
            "13800138000",
            "4008001234",
        )
        data = (ROOT / rec.path).read_bytes()
        assert rec.size_bytes == len(data)
        data_size = parse_data_size(data[:44])
        assert data_size is not None
        assert data_size > 0
        assert rec.duration_ms is not None
        assert rec.duration_ms > 1000
    finally:
        (ROOT / rec.path).unlink(missing_ok=True)
