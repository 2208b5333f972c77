"""A PBX owner reads only the tenants placed on its PBX (ADR 0033), over SQLite and PostgreSQL.

Open calls restored at takeover, the queues it publishes, the seats it reconciles and the
numbers FastAGI routes: another PBX's tenants are never among them; ``pbx=None`` (the API's
reads) still sees every tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.asterisk.queue_log_file import queue_log_source
from ccbridge.db.access_tables import TenantRow
from ccbridge.db.pbx_scope import PbxTenants, SqlTenantPlacement
from ccbridge.db.recording_tables import RecordingRow
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.pbx_cursors import SqlRecordCursors
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.db.repositories.routing import CallbackRepository, InboundNumberRepository
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.db.routing_tables import CallbackRequestRow
from ccbridge.domain.agents.state import AgentState, AgentStatus
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.inbound_numbers import InboundNumber, NumberKind
from ccbridge.domain.leases.model import SeatKind
from ccbridge.services.inbound_numbers import NumberDirectory
from ccbridge.services.seat_ports import SeatSession, SkillGroupRecord

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PLACED = {"ta": "pbx-a", "tb": "pbx-b"}


async def _tenants(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as s:
        await s.execute(
            insert(TenantRow),
            [
                {
                    "id": tid,
                    "name": tid,
                    "status": "active",
                    "timezone": "Asia/Shanghai",
                    "created_at": T0,
                    "pbx_id": pbx,
                }
                for tid, pbx in PLACED.items()
            ],
        )


async def test_open_calls_of_another_pbx_are_not_restored(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _tenants(session_factory)
    repo = CallRepository(session_factory)
    await repo.upsert_many(
        [
            CallRecord(call_id=cid, started_at=T0, state=CallState.QUEUED, tenant=t, version=1)
            for cid, t in (("c-a", "ta"), ("c-b", "tb"), ("c-unrouted", None))
        ]
    )
    on_a = {c.call_id for c in await repo.open_calls(pbx="pbx-a")}
    assert on_a == {"c-a", "c-unrouted"}  # a call with no tenant yet may be this PBX's
    assert {c.call_id for c in await repo.open_calls()} == {"c-a", "c-b", "c-unrouted"}


async def test_queues_and_seats_of_another_pbx_are_left_to_its_owner(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _tenants(session_factory)
    groups = SkillGroupRepository(session_factory)
    seats = SeatSessionRepository(session_factory)
    for tid in PLACED:
        await groups.create(SkillGroupRecord(tenant_id=tid, name="sales", queue=f"{tid}-sales"))
        await seats.open(
            SeatSession(
                id=f"s-{tid}",
                tenant_id=tid,
                agent_no="1001",
                kind=SeatKind.INBOUND,
                interface=f"PJSIP/{tid}-1001",
                signed_in_at=T0,
                signed_out_at=None,
                status=AgentStatus(since=T0, state=AgentState.READY),
            )
        )
    assert [g.queue for g in await groups.live_groups("pbx-a")] == ["ta-sales"]
    assert [g.queue for g in await groups.live_groups("pbx-b")] == ["tb-sales"]
    assert [g.queue for g in await groups.live_groups()] == ["ta-sales", "tb-sales"]
    assert [s.tenant_id for s in await seats.list_open(None, pbx="pbx-b")] == ["tb"]
    assert {s.tenant_id for s in await seats.list_open(None)} == {"ta", "tb"}
    assert await seats.list_open("tb", pbx="pbx-a") == []


async def test_fastagi_does_not_route_a_number_of_another_pbx(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _tenants(session_factory)
    repo = InboundNumberRepository(session_factory)
    for did, tid in (("4008001001", "ta"), ("4008002002", "tb")):
        await repo.add(
            InboundNumber(did, tid, NumberKind.TOLL_FREE_400, None, "", T0, "t", T0, "t")
        )
    directory = NumberDirectory(repo, pbx="pbx-a")
    found = await directory.lookup("4008001001")
    assert found is not None
    assert found.tenant_id == "ta"
    assert await directory.lookup("4008002002") is None  # the unrouted treatment on PBX a
    assert {n.number for n in await repo.every()} == {"4008001001", "4008002002"}


async def test_the_tenants_placed_on_a_pbx(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    await _tenants(session_factory)
    assert await PbxTenants(session_factory, "pbx-a").ids() == {"ta"}
    assert await PbxTenants(session_factory, "pbx-c").ids() == frozenset()
    placement = SqlTenantPlacement(session_factory)
    assert [await placement(t) for t in ("ta", "tb", "nobody")] == ["pbx-a", "pbx-b", None]


async def test_recordings_and_call_back_attempts_of_another_pbx_are_left_to_its_owner(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """A recording or a call-back attempt of PBX b is never finalised or settled by a's
    owner, which holds none of its channels or calls."""
    await _tenants(session_factory)
    async with session_factory.begin() as s:
        for tid in PLACED:
            await s.execute(
                insert(RecordingRow).values(
                    id=f"r-{tid}",
                    tenant=tid,
                    call_id=f"c-{tid}",
                    path=f"{tid}/r.wav",
                    started_at=T0,
                    status="recording",
                    held=False,
                    muted=False,
                    updated_at=T0,
                )
            )
            await s.execute(
                insert(CallbackRequestRow).values(
                    id=f"cb-{tid}",
                    tenant_id=tid,
                    caller="13800000000",
                    did="4008001001",
                    skill_group="sales",
                    call_id=f"c-{tid}",
                    waited_seconds=30,
                    status="dialing",
                    requested_at=T0,
                )
            )
    recordings = RecordingRepository(session_factory)
    assert [r.id for r in await recordings.unfinished(pbx="pbx-a")] == ["r-ta"]
    assert {r.id for r in await recordings.unfinished()} == {"r-ta", "r-tb"}
    callbacks = CallbackRepository(session_factory)
    assert [c.id for c in await callbacks.dialing(pbx="pbx-b")] == ["cb-tb"]
    assert {c.id for c in await callbacks.dialing()} == {"cb-ta", "cb-tb"}


async def test_each_pbx_reads_its_queue_log_from_its_own_position(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    """Two PBXs' logs, two cursors: one PBX's backfill never moves the other's position."""
    longest = "p" * 64
    names = [queue_log_source(p) for p in ("default", "pbx-b", longest)]
    assert names == ["queue_log", "queue_log@pbx-b", f"queue_log@{longest}"]
    cursors = SqlRecordCursors(session_factory)
    for hours, name in enumerate(names, start=1):
        await cursors.save(name, T0 + timedelta(hours=hours))
    assert [await cursors.load(n) for n in names] == [T0 + timedelta(hours=h) for h in (1, 2, 3)]
