"""Seats end to end: real database → SeatService → AmiQueueControl → AMI over TCP → fake
Asterisk 22; and the DB-backed reconciler healing drift and a PBX restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.config.publisher import QueueConfigPublisher
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.asterisk.seat_feed import AmiSeatFeed
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.endpoints import EndpointRepository
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository, StateIntervalRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.domain.access import ROLE_SCOPES, Principal, Role, TenantStatus
from ccbridge.domain.acd.membership import DriftKind, queue_name
from ccbridge.domain.agents.state import AgentState, SetNotReady, StartBreak
from ccbridge.domain.endpoints import Endpoint, Technology
from ccbridge.domain.leases.model import SeatKind, SeatLease
from ccbridge.services.acd import DriftLog, Reconciler
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.endpoints import EndpointGuard
from ccbridge.services.seat_ports import AgentRecord, SkillGroupRecord, SkillLevel
from ccbridge.services.seats import DesiredSeats, SeatService
from ccbridge.services.tenant_retirement import PbxRetirement
from ccbridge.services.tenant_status import TenantStatusCache
from ccbridge.services.tenants import AccessService, TenantChanges
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import QueueSpec
from tests.support.ami_rig import fake_pbx_client, running

GROUPS = ("sales", "support")
QUEUES = [queue_name("t1", g) for g in GROUPS]


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Rig:
    pbx: FakeAsterisk
    client: AmiClient
    seats: SeatService
    reconciler: Reconciler
    drift: DriftLog
    engine: AsyncEngine

    def members(self) -> dict[tuple[str, str], tuple[bool, str, int]]:
        return {
            (q.name, m.interface): (m.paused, m.paused_reason, m.penalty)
            for q in self.pbx.model.queues.values()
            if q.name in QUEUES
            for m in q.members.values()
        }


@pytest.fixture
async def rig(engine: AsyncEngine) -> AsyncIterator[Rig]:
    sessions = create_session_factory(engine)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (id, name, business_contact, technical_contact, status, "
                "timezone, created_at) VALUES ('t1', 'T1', NULL, NULL, 'active', "
                "'Asia/Shanghai', :at)"
            ),
            {"at": datetime.now(UTC)},
        )
    agents, groups = AgentRepository(sessions), SkillGroupRepository(sessions)
    phones = EndpointRepository(sessions)
    for n in range(4):
        await phones.create(
            Endpoint(
                f"ep{n}",
                "t1",
                Technology.PJSIP,
                f"100{n}",
                f"PJSIP/100{n}",
                datetime.now(UTC),
                "test",
            )
        )
    guard = EndpointGuard(
        phones, AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), WallClock().now)
    )
    for g in GROUPS:
        await groups.create(SkillGroupRecord("t1", g, queue_name("t1", g)))
    for n in range(4):
        await agents.create(
            AgentRecord(
                "t1",
                f"100{n}",
                f"坐席{n}",
                True,
                f"PJSIP/100{n}",
                SeatKind.INBOUND,
                (SkillLevel("sales", 10), SkillLevel("support", 6)),
            )
        )
    leases = LeaseRepository(sessions)
    await leases.create(SeatLease("t1", {SeatKind.INBOUND: 10}, date(2026, 1, 1)))
    seat_sessions = SeatSessionRepository(sessions)
    pbx = FakeAsterisk(
        queues=[QueueSpec(q) for q in QUEUES], agi_url=None, seed=3, auth_fail_delay=0
    )
    await pbx.start()
    client = fake_pbx_client(pbx.ami_port)
    queues = AmiQueueControl(client)
    seats = SeatService(
        agents=agents,
        leases=leases,
        sessions=seat_sessions,
        intervals=StateIntervalRepository(sessions),
        queues=queues,
        endpoints=guard,
        clock=WallClock(),
    )

    async def owned() -> list[str]:
        return [g.queue for g in await groups.live_groups()]

    drift = DriftLog()
    desired = DesiredSeats(seat_sessions, agents, owned, guard)
    reconciler = Reconciler(queues, desired, drift, WallClock())
    client.add_login_hook(reconciler.on_login)
    try:
        async with running(client):
            yield Rig(pbx, client, seats, reconciler, drift, engine)
    finally:
        await pbx.stop()


async def test_sign_in_pause_with_reason_and_sign_out_reach_the_pbx(rig: Rig) -> None:
    result = await rig.seats.sign_in("t1", "1000")
    assert result.pbx_synced
    assert rig.members() == {
        ("t1-sales", "PJSIP/1000"): (False, "", 0),
        ("t1-support", "PJSIP/1000"): (False, "", 4),
    }
    await rig.seats.request("t1", "1000", SetNotReady("小休 break"))
    assert {v[:2] for v in rig.members().values()} == {(True, "小休 break")}
    await rig.seats.sign_out("t1", "1000")
    assert rig.members() == {}


async def test_drift_behind_our_back_is_repaired_in_one_cycle_and_recorded(rig: Rig) -> None:
    for n in range(3):
        await rig.seats.sign_in("t1", f"100{n}")
    await rig.seats.request("t1", "1001", StartBreak())
    before = rig.members()
    rig.pbx.ami.remove_member_behind_back("t1-sales", "PJSIP/1000")
    rig.pbx.ami.pause_member_behind_back("t1-support", "PJSIP/1002", True, "phone DND")
    rig.pbx.ami.pause_member_behind_back("t1-sales", "PJSIP/1001", False, "")
    report = await rig.reconciler.run_once()
    assert rig.members() == before
    assert report.drift == {DriftKind.MISSING: 1, DriftKind.WRONG_PAUSE: 2}
    assert sorted((d.queue, d.interface, d.kind) for d in rig.drift.recent) == [
        ("t1-sales", "PJSIP/1000", DriftKind.MISSING),
        ("t1-sales", "PJSIP/1001", DriftKind.WRONG_PAUSE),
        ("t1-support", "PJSIP/1002", DriftKind.WRONG_PAUSE),
    ]
    assert (await rig.reconciler.run_once()).in_sync


async def test_pbx_restart_restores_every_signed_in_seat(rig: Rig) -> None:
    for n in range(4):
        await rig.seats.sign_in("t1", f"100{n}")
    await rig.seats.request("t1", "1003", SetNotReady("培训"))
    before = rig.members()
    assert len(before) == 8
    cycles = rig.reconciler.stats.cycles
    await rig.pbx.ami.restart(lose_members=True)
    async with asyncio.timeout(5):
        while rig.reconciler.stats.cycles == cycles:  # noqa: ASYNC110 (the login hook runs it)
            await asyncio.sleep(0.02)
    assert rig.members() == before
    assert rig.members()[("t1-sales", "PJSIP/1003")] == (True, "培训", 0)


async def test_pbx_restart_re_adds_only_seats_on_claimed_phones(rig: Rig) -> None:
    for n in range(2):
        await rig.seats.sign_in("t1", f"100{n}")
    # A session row that names a trunk (edited in the database, or older than endpoints).
    trunk = "Local/00881234567@outbound-trunk"
    async with rig.engine.begin() as conn:
        await conn.execute(
            text("UPDATE seat_sessions SET interface = :i WHERE agent_no = '1001'"), {"i": trunk}
        )
    cycles = rig.reconciler.stats.cycles
    await rig.pbx.ami.restart(lose_members=True)
    async with asyncio.timeout(5):
        while rig.reconciler.stats.cycles == cycles:  # noqa: ASYNC110 (the login hook runs it)
            await asyncio.sleep(0.02)
    assert {iface for _q, iface in rig.members()} == {"PJSIP/1000"}
    assert all(trunk not in q.members for q in rig.pbx.model.queues.values())


async def test_answered_queue_call_puts_the_seat_on_call_and_back(rig: Rig) -> None:
    feed = AmiSeatFeed(rig.seats.call_event)
    PbxCoordinator(rig.client, seats=feed).attach()
    runner = asyncio.create_task(feed.run())
    try:
        await rig.seats.sign_in("t1", "1000")
        handle = await rig.pbx.simulator.place_call(
            did="4008001234", queue="t1-sales", talk_seconds=0.5
        )
        seen_on_call = False
        async with asyncio.timeout(5):
            while not handle.task.done():
                s = await _status(rig)
                seen_on_call = seen_on_call or s is AgentState.ON_CALL
                await asyncio.sleep(0.02)
        outcome = await handle
        assert outcome.answered
        assert seen_on_call
        async with asyncio.timeout(3):
            while await _status(rig) is not AgentState.READY:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        runner.cancel()


async def _status(rig: Rig) -> AgentState | None:
    live = await rig.seats.live("t1")
    return live[0].status.state if live else None


async def test_terminating_a_tenant_retires_its_seats_members_and_queues(
    rig: Rig, engine: AsyncEngine, tmp_path: Path
) -> None:
    """Termination (through the tenants service, as PATCH does) takes every signed-in member
    out of the queues, closes the seats and drops the tenant's queues from the queue file; a
    suspension does none of it; a termination made by another process is swept up."""
    sessions = create_session_factory(engine)
    groups, seat_sessions = SkillGroupRepository(sessions), SeatSessionRepository(sessions)
    generated = tmp_path / "generated"
    publisher = QueueConfigPublisher(generated, groups.live_groups, rig.client)
    status = TenantStatusCache(lambda t: _tenant_status(sessions, t))

    async def seated() -> set[str]:
        return {s.tenant_id for s in await seat_sessions.list_open(None)}

    retirement = PbxRetirement(
        rig.seats, publisher.publish, status=status.status, seated_tenants=seated
    )
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec("retire-test-secret-0123456789abcdef"),
        now=lambda: datetime.now(UTC),
        token_ttl_seconds=600,
        tenant_status=status,
        on_status_changed=retirement.on_status_changed,
    )
    admin = Principal("t", Role.PLATFORM_ADMIN, None, ROLE_SCOPES[Role.PLATFORM_ADMIN])
    await publisher.publish()
    assert "[t1-sales]" in (generated / "queues.conf").read_text()
    for n in range(2):
        await rig.seats.sign_in("t1", f"100{n}")
    assert len(rig.members()) == 4

    await access.update_tenant(admin, "t1", TenantChanges(status=TenantStatus.SUSPENDED))
    assert len(rig.members()) == 4  # suspended: kept for the reinstatement
    await access.update_tenant(admin, "t1", TenantChanges(status=TenantStatus.TERMINATED))
    assert rig.members() == {}
    assert await seat_sessions.list_open("t1") == []
    text_now = (generated / "queues.conf").read_text()
    assert "[t1-sales]" not in text_now
    assert "[t1-support]" not in text_now
    # The reconciler no longer owns (nor restores) the terminated tenant's queues.
    await rig.reconciler.run_once()
    assert rig.members() == {}

    # Terminated elsewhere (another process wrote the row): the sweep closes what is left.
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE tenants SET status = 'active' WHERE id = 't1'"))
    status.changed("t1", TenantStatus.ACTIVE)
    await rig.seats.sign_in("t1", "1002")
    assert len(rig.members()) == 2
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE tenants SET status = 'terminated' WHERE id = 't1'"))
    status.changed("t1", TenantStatus.TERMINATED)  # what the cache reads within its TTL
    assert await retirement.sweep() == 1
    assert rig.members() == {}
    assert await retirement.sweep() == 0


async def _tenant_status(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str
) -> TenantStatus | None:
    async with SqlAccessUnitOfWork(sessions) as uow:
        tenant = await uow.tenants.get(tenant_id)
    return tenant.status if tenant else None
