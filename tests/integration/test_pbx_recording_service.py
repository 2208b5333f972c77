"""ADR 0025, the recording service's side: what it does with a MixMonitor the PBX started.

It indexes the PBX's file and starts nothing; it asks the PBX for the file when channelvars
lacks ``MIXMONITOR_FILENAME``; after a resync it indexes a call's running MixMonitor instead of
starting a second one, and finalises a recording whose channel hung up in the gap; its own
start never reuses the name of a file that exists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.access import Principal, Role
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.recordings.model import RecordingStatus, recording_path
from ccbridge.domain.recordings.signing import LinkSigner
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.recording_policy import PolicyChange, RecordingPolicyService
from ccbridge.services.recordings import RecordingService
from ccbridge.storage.recording_files import LocalRecordingFiles
from tests.integration.recording_support import CIPHER, SettableClock, write_wav
from tests.support.event_rig import EventWorld, build_world

NOW = datetime.now(UTC).replace(microsecond=0)
CHANNEL = "PJSIP/trunk-00000001"


class Recorder:
    """AMI MixMonitor stand-in: remembers what ccbridge asked for."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    async def start(self, channel: str, path: str) -> None:
        self.started.append((channel, path))

    async def stop(self, channel: str) -> None:
        return None

    async def mute(self, channel: str, muted: bool) -> None:
        return None


class World:
    def __init__(self, engine: AsyncEngine, root: Path, pbx_files: dict[str, str]) -> None:
        self.calls: dict[str, CallRecord] = {}
        self.recorder = Recorder()
        self.files = LocalRecordingFiles(root)
        self.pbx_files = pbx_files
        self.engine = engine
        self.world: EventWorld | None = None

    async def service(self) -> tuple[RecordingService, RecordingRepository]:
        """A new service (a restarted ccbridge) over the same database."""
        world = self.world = self.world or await build_world(self.engine)
        sessions = create_session_factory(self.engine)
        clock = SettableClock(NOW)
        store = RecordingRepository(sessions, world.journal, cipher=CIPHER)

        async def lookup(call_id: str) -> CallRecord | None:
            return self.calls.get(call_id)

        async def probe(channel: str) -> str | None:
            if "no-getvar" in channel:
                raise TimeoutError("Getvar")
            return self.pbx_files.get(channel)

        service = RecordingService(
            store,
            self.files,
            self.recorder,
            lookup,
            AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now),
            clock,
            LinkSigner(b"pbx-recording-service-key-01"),
            finalise_delay=0.01,
            pbx_file=probe,
        )
        return service, store


def _call(call_id: str, state: CallState = CallState.CONNECTED) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        started_at=NOW - timedelta(seconds=30),
        state=state,
        tenant="t1",
        caller="13800138000",
        callee="4008001234",
        skill_group="t1-sales",
        agent_no="1001",
        answered_at=NOW - timedelta(seconds=20),
        ended_at=NOW if state.is_final else None,
        learned_at=NOW,
    )


@pytest.fixture
def world(engine: AsyncEngine, tmp_path: Path) -> World:
    return World(engine, tmp_path / "rec", {})


async def test_a_pbx_recording_is_indexed_and_the_answer_starts_nothing(world: World) -> None:
    service, store = await world.service()
    world.calls["1.1"] = _call("1.1")
    path = recording_path("t1", "1.1", NOW)
    # channelvars without MIXMONITOR_FILENAME: the service asks the PBX (Getvar).
    world.pbx_files[CHANNEL] = f"{world.files.root}/{path}"
    rec = await service.on_pbx_recording("1.1", CHANNEL, "", "t1")
    assert rec is not None
    assert (rec.path, rec.status, rec.agent_no) == (path, RecordingStatus.RECORDING, "1001")
    assert await service.on_agent_connect("1.1", CHANNEL) is None
    assert world.recorder.started == []
    write_wav(world.files.root, path, seconds=1.0)
    service.on_channel_gone(CHANNEL)
    await service.idle()
    (done,) = await store.of_call("1.1")
    assert (done.status, done.duration_ms) == (RecordingStatus.OK, 1000)


async def test_a_file_that_is_not_a_generated_name_of_the_call_is_not_indexed(
    world: World,
) -> None:
    service, store = await world.service()
    world.calls["1.2"] = _call("1.2")
    spool = "/var/spool/asterisk/monitor/1.2.wav"
    assert await service.on_pbx_recording("1.2", CHANNEL, spool, "t1") is None
    other = f"{world.files.root}/{recording_path('t1', '1.3', NOW)}"
    assert await service.on_pbx_recording("1.2", CHANNEL, other, "t1") is None
    assert await store.of_call("1.2") == []


async def test_after_a_resync_the_running_pbx_recording_is_indexed_not_doubled(
    world: World,
) -> None:
    service, store = await world.service()
    up, gone = _call("2.1"), _call("2.2")
    world.calls |= {"2.1": up, "2.2": gone}
    written = f"{world.files.root}/{recording_path('t1', '2.1', NOW)}"
    world.pbx_files["PJSIP/up-1"] = written
    # 2.2 was indexed live, then its channel hung up while AMI was away.
    live = f"{world.files.root}/{recording_path('t1', '2.2', NOW)}"
    assert await service.on_pbx_recording("2.2", "PJSIP/gone-1", live, "t1") is not None
    write_wav(world.files.root, recording_path("t1", "2.2", NOW))
    assert service.forget_channels_gone({"PJSIP/up-1"}) == 1
    await service.idle()
    assert [r.status for r in await store.of_call("2.2")] == [RecordingStatus.OK]
    assert await service.record_calls_answered_in_gap([(up, "PJSIP/up-1")]) == 0
    assert world.recorder.started == []
    (row,) = await store.of_call("2.1")
    assert (row.status, row.channel) == (RecordingStatus.RECORDING, "PJSIP/up-1")


async def test_ccbridges_own_start_never_reuses_an_existing_file_name(world: World) -> None:
    service, _ = await world.service()
    world.calls["3.1"] = _call("3.1")
    write_wav(world.files.root, recording_path("t1", "3.1", NOW))  # the PBX's, not indexed
    rec = await service.on_agent_connect("3.1", CHANNEL)
    assert rec is not None
    assert rec.path == recording_path("t1", "3.1", NOW, take=2)
    assert world.recorder.started == [(CHANNEL, str(world.files.root / rec.path))]


async def test_the_backfill_finalises_a_row_left_recording_when_its_call_ended(
    world: World,
) -> None:
    service, store = await world.service()
    world.calls["4.1"] = _call("4.1")
    path = recording_path("t1", "4.1", NOW)
    written = f"{world.files.root}/{path}"
    assert await service.on_pbx_recording("4.1", CHANNEL, written, "t1") is not None
    # ccbridge restarted: a new service has no channel, the call ended meanwhile.
    service, store = await world.service()
    write_wav(world.files.root, path)
    assert await service.register_gap_recording(_call("4.1", CallState.ENDED)) is None
    assert [r.status for r in await store.of_call("4.1")] == [RecordingStatus.OK]


async def test_a_policy_change_that_touches_recording_re_renders_the_queues(
    world: World,
) -> None:
    await world.service()
    assert world.world is not None
    sessions = create_session_factory(world.engine)
    store = RecordingRepository(sessions, world.world.journal, cipher=CIPHER)
    clock = SettableClock(NOW)
    synced: list[str] = []

    async def sync() -> None:
        synced.append("queues")

    policies = RecordingPolicyService(
        store, AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now), clock
    )
    policies.on_change = sync
    admin = Principal("user:admin", Role.TENANT_ADMIN, "t1", frozenset({"recordings:admin"}))
    await policies.replace(admin, "t1", PolicyChange(2, True, None, None))
    assert synced == []  # retention only: the queues' monitor-format does not change
    await policies.replace(admin, "t1", PolicyChange(2, False, None, None))
    assert synced == ["queues"]
    await policies.replace(admin, "t1", PolicyChange(2, True, ("t1-vip",), None))
    assert synced == ["queues", "queues"]


async def test_without_an_answer_from_the_pbx_the_file_on_disk_tells_it_records(
    world: World,
) -> None:
    """MixMonitor creates its file when it starts: a call still up after the gap whose
    Getvar fails is indexed from the generated name on disk, not recorded a second time."""
    service, store = await world.service()
    up = _call("5.1")
    world.calls["5.1"] = up
    write_wav(world.files.root, recording_path("t1", "5.1", up.started_at), seconds=0.0)
    assert await service.record_calls_answered_in_gap([(up, "PJSIP/no-getvar-1")]) == 0
    assert world.recorder.started == []
    (row,) = await store.of_call("5.1")
    assert (row.path, row.status) == (
        recording_path("t1", "5.1", up.started_at),
        RecordingStatus.RECORDING,
    )


async def test_a_pbx_recording_indexed_after_its_hangup_is_finalised_at_once(
    world: World,
) -> None:
    """Held while the database was away, the ``MixMonitorStart`` is applied after the
    channel's ``Hangup``: no hang-up will come again, so the row is finalised right away."""
    service, store = await world.service()
    world.calls["6.1"] = _call("6.1")
    path = recording_path("t1", "6.1", NOW)
    write_wav(world.files.root, path)
    service.on_hangup(CHANNEL)
    assert await service.on_pbx_recording("6.1", CHANNEL, f"{world.files.root}/{path}") is not None
    await service.idle()
    assert [r.status for r in await store.of_call("6.1")] == [RecordingStatus.OK]
