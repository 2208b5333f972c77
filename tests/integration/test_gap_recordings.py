"""Issue 14: a call answered while AMI was away gets its recording from the backfill.

Nobody saw its ``AgentConnect``, so ccbridge never indexed a recording. The backfill that
rebuilds the call from the queue log finds the PBX's file at the call's generated name and
indexes it (``recording.ready``); when there is no file although the tenant's policy records
the call, it flags the loss (a ``missing`` row and ``recording.missing``); a call still up is
left to the resync, which starts its recording. Rerunning the backfill adds nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.asterisk.queue_log_file import QueueLogFile
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.pbx_cursors import SqlRecordCursors
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.recordings.model import RecordingPolicy, RecordingStatus, recording_path
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.domain.time import SystemClock
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.call_backfill import CallBackfill
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.recordings import RecordingService
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.integration.recording_support import CIPHER, write_wav
from tests.support.event_rig import build_world

T0 = int(datetime.now(UTC).timestamp()) - 600
WITH_FILE, WITHOUT_FILE, NOT_RECORDED = f"{T0}.1", f"{T0}.5", f"{T0}.9"
STILL_UP = f"{T0}.12"


def _call(callid: str, tenant: str, queue: str, agent: str, offset: int) -> list[str]:
    t = T0 + offset
    ident = f"{callid}|{tenant}|4008001234|13800138000|{t}"
    return [
        f"{t}|{callid}|{queue}|NONE|CCBCALL|{ident}",
        f"{t}|{callid}|{queue}|NONE|ENTERQUEUE||13800138000|1",
        f"{t + 3}|{callid}|{queue}|{agent}|CONNECT|3|{callid}1|1",
        f"{t + 20}|{callid}|{queue}|{agent}|COMPLETECALLER|3|17|1",
        f"{t + 21}|{callid}|{queue}|NONE|CCBEND|{ident}",
    ]


class Recorder:
    """MixMonitor stand-in (the backfill never starts one)."""

    async def start(self, channel: str, path: str) -> None:
        raise AssertionError("a backfill never starts MixMonitor")

    async def stop(self, channel: str) -> None:
        return None

    async def mute(self, channel: str, muted: bool) -> None:
        return None


async def test_the_backfill_indexes_a_gap_calls_file_or_flags_it_missing(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    world = await build_world(engine)
    sessions = create_session_factory(engine)
    clock = SystemClock()
    store = RecordingRepository(sessions, world.journal, cipher=CIPHER)
    await store.set_policy(RecordingPolicy("t2", auto_record=False), clock.now())
    files = LocalRecordingFiles(tmp_path / "rec")
    writer = CallBatchWriter(world.calls, flush_interval=0.01)
    tracking = CallTrackingService(writer)

    async def lookup(call_id: str) -> CallRecord | None:
        return tracking.get(call_id) or await world.calls.get(call_id)

    recordings = RecordingService(
        store,
        files,
        Recorder(),
        lookup,
        AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now),
        clock,
        LinkSigner(b"gap-recordings-key-0123456789"),
        finalise_delay=0.01,
    )
    queue_log = tmp_path / "queue_log"
    queue_log.write_text(
        "\n".join(
            [
                *_call(WITH_FILE, "t1", "t1-sales", "1001 张伟", 0),
                *_call(WITHOUT_FILE, "t1", "t1-sales", "1002 李娜", 5),
                *_call(NOT_RECORDED, "t2", "t2-service", "2001 Agent", 9),
                *_call(STILL_UP, "t1", "t1-sales", "1003 王磊", 12)[:3],  # answered, still up
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    # The dialplan's MixMonitor wrote the first call's file under the generated name.
    answered = datetime.fromtimestamp(T0 + 3, UTC)
    write_wav(files.root, recording_path("t1", WITH_FILE, answered), seconds=2.0)
    backfill = CallBackfill(
        QueueLogFile(queue_log),
        SqlRecordCursors(sessions),
        world.calls,
        tracking,
        clock.now,
        lookback=timedelta(hours=2),
    )
    backfill.use_recordings(recordings)

    assert (await backfill.run()).calls == 4
    found = await store.of_call(WITH_FILE, "t1")
    assert [(r.status, r.path, r.agent_no, r.skill_group) for r in found] == [
        (RecordingStatus.OK, recording_path("t1", WITH_FILE, answered), "1001", "t1-sales")
    ]
    assert found[0].duration_ms == 2000
    assert found[0].sha256 is not None
    flagged = await store.of_call(WITHOUT_FILE, "t1")
    assert [(r.status, r.agent_no, r.caller) for r in flagged] == [
        (RecordingStatus.MISSING, "1002", "13800138000")
    ]
    assert await store.of_call(NOT_RECORDED, "t2") == []  # the policy does not record t2
    assert await store.of_call(STILL_UP, "t1") == []  # not flagged: the resync records it

    t1_events = await world.journal.list_after(
        "t1", 0, 500, types=["recording.ready", "recording.missing"]
    )
    assert [(e.type, e.call_id, e.data["recording_id"]) for e in t1_events] == [
        ("recording.ready", WITH_FILE, found[0].id),
        ("recording.missing", WITHOUT_FILE, flagged[0].id),
    ]
    assert t1_events[1].data["params"]["agent_no"] == "1002"
    assert await world.journal.list_after("t2", 0, 500, types=["recording.missing"]) == []

    # A later backfill over the same lines (after the next reconnect) adds nothing.
    await backfill.run()
    assert len(await store.of_call(WITH_FILE, "t1")) == 1
    assert len(await store.of_call(WITHOUT_FILE, "t1")) == 1
    again = await world.journal.list_after(
        "t1", 0, 500, types=["recording.ready", "recording.missing"]
    )
    assert len(again) == 2
    await writer.stop()
