"""Seat repositories against real SQLite and PostgreSQL: tenancy, one sign-in per 工号, versions."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.seat_sessions import (
    SeatSessionRepository,
    StateIntervalRepository,
    status_from_json,
    status_to_json,
)
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.db.sqlite_reads import read_pool_for
from ccbridge.db.tables import Base
from ccbridge.domain.agents.policy import DailyCounter
from ccbridge.domain.agents.state import AgentState, AgentStatus, DeferredAction
from ccbridge.domain.leases.model import ChangeKind, LeaseChange, SeatKind, SeatLease
from ccbridge.domain.leases.utilisation import monthly_seats_used, peak_concurrency
from ccbridge.services.seat_ports import (
    AgentRecord,
    AlreadyExistsError,
    AlreadySignedInError,
    DeviceInUseError,
    RecordNotFoundError,
    SeatSession,
    SkillGroupRecord,
    SkillLevel,
    StaleWriteError,
    StateInterval,
)

T0 = datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=UTC)
IN = SeatKind.INBOUND
IO = SeatKind.INBOUND_OUTBOUND


def _placeholder(column: Any, tenant_id: str) -> Any:
    """A value for a required column of ``tenants`` this module does not own."""
    if column.name == "id":
        return tenant_id
    try:
        kind = column.type.python_type
    except NotImplementedError:  # JSON and friends
        return {}
    values: dict[type, Any] = {
        str: tenant_id[: getattr(column.type, "length", None) or 64],
        bool: True,
        int: 0,
        Decimal: Decimal(0),
        datetime: T0,
        date: T0.date(),
        dict: {},
        list: [],
    }
    if kind not in values:
        raise AssertionError(f"no placeholder for tenants.{column.name} ({column.type!r})")
    return values[kind]


async def add_tenants(factory: async_sessionmaker[AsyncSession], *tenant_ids: str) -> None:
    """Insert bare tenants, filling every required column the tenants module defines."""
    table = Base.metadata.tables["tenants"]
    rows = [
        {
            c.name: _placeholder(c, t)
            for c in table.columns
            if c.name == "id"
            or not (c.nullable or c.default is not None or c.server_default is not None)
        }
        for t in tenant_ids
    ]
    async with factory() as session, session.begin():
        await session.execute(insert(table), rows)


@pytest.fixture
async def factory(
    session_factory: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """The migrated database with tenants ``acme`` and ``globex``."""
    await add_tenants(session_factory, "acme", "globex")
    return session_factory


@pytest.fixture
def agents(factory: async_sessionmaker[AsyncSession]) -> AgentRepository:
    return AgentRepository(factory)


@pytest.fixture
def groups(factory: async_sessionmaker[AsyncSession]) -> SkillGroupRepository:
    return SkillGroupRepository(factory)


@pytest.fixture
def leases(factory: async_sessionmaker[AsyncSession]) -> LeaseRepository:
    return LeaseRepository(factory)


@pytest.fixture
def sessions(factory: async_sessionmaker[AsyncSession]) -> SeatSessionRepository:
    return SeatSessionRepository(factory)


@pytest.fixture
def history(factory: async_sessionmaker[AsyncSession]) -> StateIntervalRepository:
    return StateIntervalRepository(factory)


def agent(agent_no: str, tenant: str = "acme", **kw: Any) -> AgentRecord:
    fields: dict[str, Any] = {
        "name": "张三",
        "certified": True,
        "interface": f"PJSIP/{agent_no}",
        "seat_kind": IN,
    }
    fields.update(kw)
    return AgentRecord(tenant_id=tenant, agent_no=agent_no, **fields)


def group(name: str, tenant: str = "acme") -> SkillGroupRecord:
    return SkillGroupRecord(tenant_id=tenant, name=name, queue=f"{tenant}-{name}")


def seat(
    session_id: str,
    agent_no: str,
    tenant: str = "acme",
    kind: SeatKind = IN,
    at: datetime = T0,
    interface: str | None = None,
) -> SeatSession:
    status = AgentStatus(since=at, state=AgentState.READY)
    return SeatSession(
        id=session_id,
        tenant_id=tenant,
        agent_no=agent_no,
        kind=kind,
        # Endpoints are PBX-wide, so tenants' softphones have distinct names.
        interface=interface or f"PJSIP/{tenant}-{agent_no}",
        signed_in_at=at,
        signed_out_at=None,
        status=status,
    )


# --- agents and skill groups -----------------------------------------------------------------


async def test_agent_round_trip_with_skills(
    agents: AgentRepository, groups: SkillGroupRepository
) -> None:
    await groups.create(group("售后"))
    await groups.create(group("sales"))
    record = agent(
        "1001",
        interface="Local/1001@ccbridge-agents",
        seat_kind=IO,
        skills=(SkillLevel("sales", 3), SkillLevel("售后", 10)),
        version=7,
    )
    stored = await agents.create(record)
    assert stored == dataclasses.replace(record, version=1)
    assert await agents.get("acme", "1001") == stored


async def test_same_agent_no_in_two_tenants_but_not_twice_in_one(agents: AgentRepository) -> None:
    await agents.create(agent("1001", "acme"))
    await agents.create(agent("1001", "globex", name="李四"))
    with pytest.raises(AlreadyExistsError):
        await agents.create(agent("1001", "acme", name="冒名顶替"))
    assert (await agents.get("acme", "1001")).name == "张三"  # type: ignore[union-attr]
    assert (await agents.get("globex", "1001")).name == "李四"  # type: ignore[union-attr]


async def test_agent_of_unknown_tenant_or_group_is_refused(agents: AgentRepository) -> None:
    with pytest.raises(RecordNotFoundError):
        await agents.create(agent("1001", "initech"))
    with pytest.raises(RecordNotFoundError, match="nope"):
        await agents.create(agent("1002", skills=(SkillLevel("nope", 1),)))
    assert await agents.get("acme", "1002") is None


async def test_agents_are_invisible_to_other_tenants(
    agents: AgentRepository, groups: SkillGroupRepository
) -> None:
    await groups.create(group("sales", "globex"))
    await agents.create(agent("1001", "acme"))
    assert await agents.get("globex", "1001") is None
    assert await agents.list("globex") == []
    assert not await agents.delete("globex", "1001")
    with pytest.raises(StaleWriteError):
        await agents.update(agent("1001", "globex"))
    # acme cannot use globex's skill group either.
    with pytest.raises(RecordNotFoundError):
        await agents.update(agent("1001", "acme", skills=(SkillLevel("sales", 1),)))
    assert await agents.get("acme", "1001") == agent("1001")


async def test_agent_keyset_pages(agents: AgentRepository) -> None:
    for n in range(7):
        await agents.create(agent(f"10{n:02d}"))
    await agents.create(agent("1003", "globex"))
    first = await agents.list("acme", limit=3)
    second = await agents.list("acme", after=first[-1].agent_no, limit=3)
    third = await agents.list("acme", after=second[-1].agent_no, limit=3)
    assert [a.agent_no for a in first + second + third] == [f"10{n:02d}" for n in range(7)]
    with pytest.raises(ValueError, match="limit"):
        await agents.list("acme", limit=0)


async def test_agent_update_is_version_guarded(
    agents: AgentRepository, groups: SkillGroupRepository
) -> None:
    await groups.create(group("sales"))
    await groups.create(group("vip"))
    v1 = await agents.create(agent("1001", skills=(SkillLevel("sales", 2),)))
    v2 = await agents.update(
        dataclasses.replace(v1, certified=False, skills=(SkillLevel("vip", 5),))
    )
    assert v2.version == 2
    assert await agents.get("acme", "1001") == v2
    with pytest.raises(StaleWriteError):
        await agents.update(dataclasses.replace(v1, name="stale"))
    assert await agents.get("acme", "1001") == v2
    assert await agents.delete("acme", "1001")
    with pytest.raises(StaleWriteError):
        await agents.update(v2)


async def test_skill_groups_crud_and_isolation(
    agents: AgentRepository, groups: SkillGroupRepository
) -> None:
    sales = SkillGroupRecord("acme", "sales", "acme-sales", "ringall", "售前咨询")
    assert await groups.create(sales) == sales
    await groups.create(group("sales", "globex"))
    with pytest.raises(AlreadyExistsError, match="sales"):
        await groups.create(group("sales"))
    with pytest.raises(AlreadyExistsError, match="queue"):
        await groups.create(SkillGroupRecord("acme", "other", "globex-sales"))
    assert await groups.get("acme", "sales") == sales
    assert [g.tenant_id for g in await groups.list("globex")] == ["globex"]
    for name in ("a", "b", "c"):
        await groups.create(group(name))
    page = await groups.list("acme", after="a", limit=2)
    assert [g.name for g in page] == ["b", "c"]

    await agents.create(agent("1001", skills=(SkillLevel("sales", 4), SkillLevel("a", 1))))
    assert not await groups.delete("globex", "a")
    assert await groups.delete("acme", "sales")
    assert await groups.get("acme", "sales") is None
    assert await groups.get("globex", "sales") is not None
    assert (await agents.get("acme", "1001")).skills == (SkillLevel("a", 1),)  # type: ignore[union-attr]


def test_skill_level_range() -> None:
    with pytest.raises(ValueError, match=r"1\.\.10"):
        SkillLevel("sales", 11)
    with pytest.raises(ValueError, match=r"1\.\.10"):
        SkillLevel("sales", 0)


# --- leases ----------------------------------------------------------------------------------


async def test_lease_prices_round_trip_exactly(leases: LeaseRepository) -> None:
    lease = SeatLease(
        tenant="acme",
        seats={IN: 10},
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 12, 31),
        monthly_price={IN: Decimal("1234567890.12"), IO: Decimal("0.10")},
    )
    stored = await leases.create(lease)
    again = await leases.get("acme", stored.id)
    assert again == lease
    assert again is not None
    assert str(again.price_of(IN)) == "1234567890.12"
    assert again.price_of(IO) == Decimal("0.1")
    assert again.seats == {IN: 10}  # a price alone does not invent a seat count
    assert await leases.get("globex", stored.id) is None
    with pytest.raises(ValueError, match="decimals"):
        await leases.create(dataclasses.replace(lease, monthly_price={IN: Decimal("1.005")}))


async def test_active_lease_picks_the_window_containing_at(leases: LeaseRepository) -> None:
    jan = SeatLease("acme", {IN: 5}, date(2026, 1, 1), date(2026, 1, 31))
    feb = SeatLease("acme", {IN: 8, IO: 2}, date(2026, 2, 1), None)
    other = SeatLease("globex", {IN: 99}, date(2025, 1, 1), None)
    for lease in (feb, jan, other):
        await leases.create(lease)
    assert await leases.active_lease("acme", datetime(2026, 1, 15, tzinfo=UTC)) == jan
    # 2026-01-31 16:30 UTC is already 1 February in Shanghai.
    assert await leases.active_lease("acme", datetime(2026, 1, 31, 15, 59, tzinfo=UTC)) == jan
    assert await leases.active_lease("acme", datetime(2026, 1, 31, 16, 30, tzinfo=UTC)) == feb
    assert await leases.active_lease("acme", datetime(2030, 6, 1, tzinfo=UTC)) == feb
    assert await leases.active_lease("acme", datetime(2025, 6, 1, tzinfo=UTC)) is None
    assert await leases.active_lease("initech", T0) is None
    assert [r.lease for r in await leases.list("acme")] == [jan, feb]


async def test_lease_changes_pending_until_applied(leases: LeaseRepository) -> None:
    later = LeaseChange("acme", ChangeKind.SEAT_COUNT, T0, date(2026, 12, 10), {IN: 12, IO: 3})
    sooner = LeaseChange("acme", ChangeKind.SKILL_GROUP, T0, date(2026, 11, 25), None, "admin")
    a = await leases.add_change(later)
    b = await leases.add_change(sooner)
    await leases.add_change(dataclasses.replace(later, tenant="globex"))
    assert [r.change for r in await leases.pending_changes("acme")] == [sooner, later]
    assert not await leases.mark_applied("globex", a.id, T0)
    assert await leases.mark_applied("acme", b.id, T0)
    assert not await leases.mark_applied("acme", b.id, T0)
    assert [r.id for r in await leases.pending_changes("acme")] == [a.id]
    with pytest.raises(RecordNotFoundError):
        await leases.add_change(dataclasses.replace(later, tenant="initech"))


# --- seat sessions ---------------------------------------------------------------------------


async def test_second_open_session_is_refused(sessions: SeatSessionRepository) -> None:
    await sessions.open(seat("s1", "1001"))
    with pytest.raises(AlreadySignedInError):
        await sessions.open(seat("s2", "1001"))
    await sessions.open(seat("s3", "1001", tenant="globex"))  # same 工号, other tenant
    opened = await sessions.get_open("acme", "1001")
    assert opened is not None
    assert opened.id == "s1"
    closed = await sessions.close(opened, T0 + timedelta(hours=1))
    assert not closed.is_open
    assert closed.version == 2
    await sessions.open(seat("s4", "1001", at=T0 + timedelta(hours=2)))
    assert (await sessions.get_open("acme", "1001")).id == "s4"  # type: ignore[union-attr]
    assert await sessions.get("acme", "s1") == closed
    assert await sessions.get("globex", "s1") is None


@pytest.mark.parametrize("pooled", [True, False], ids=["read-pool", "orm-session"])
async def test_open_seat_on_interface_names_the_open_seat_of_any_tenant_only(
    engine: AsyncEngine, factory: async_sessionmaker[AsyncSession], pooled: bool
) -> None:
    pool = read_pool_for(engine) if pooled else None
    assert pool is not None or not pooled
    repo = SeatSessionRepository(factory, read_pool=pool)
    try:
        await repo.open(seat("s1", "1001", interface="PJSIP/desk-1"))
        await repo.open(seat("s2", "2002", tenant="globex", interface="PJSIP/desk-2"))
        assert await repo.open_seat_on_interface("PJSIP/desk-1") == ("acme", "1001")
        assert await repo.open_seat_on_interface("PJSIP/desk-2") == ("globex", "2002")
        assert await repo.open_seat_on_interface("PJSIP/desk-3") is None
        opened = await repo.get_open("acme", "1001")
        assert opened is not None
        await repo.close(opened, T0 + timedelta(hours=1))
        assert await repo.open_seat_on_interface("PJSIP/desk-1") is None  # closed: no seat
        await repo.open(seat("s3", "1003", interface="PJSIP/desk-1", at=T0 + timedelta(hours=2)))
        assert await repo.open_seat_on_interface("PJSIP/desk-1") == ("acme", "1003")
    finally:
        if pool is not None:
            await pool.close()


async def test_concurrent_sign_ins_exactly_one_wins(sessions: SeatSessionRepository) -> None:
    results = await asyncio.gather(
        *(sessions.open(seat(f"race-{i}", "1001")) for i in range(5)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, AlreadySignedInError) for r in results if r is not None)
    assert len(await sessions.list_open("acme")) == 1


async def test_one_open_session_per_softphone_across_tenants(
    sessions: SeatSessionRepository,
) -> None:
    await sessions.open(seat("s1", "1001", interface="PJSIP/hotdesk-1"))
    found = await sessions.get_open_on_interface("PJSIP/hotdesk-1")
    assert found is not None
    assert found.id == "s1"
    assert await sessions.get_open_on_interface("PJSIP/hotdesk-2") is None
    with pytest.raises(DeviceInUseError) as refused:
        await sessions.open(seat("s2", "2002", tenant="globex", interface="PJSIP/hotdesk-1"))
    assert refused.value.field == "interface"
    await sessions.close(found, T0 + timedelta(minutes=5))
    assert await sessions.get_open_on_interface("PJSIP/hotdesk-1") is None
    await sessions.open(seat("s3", "2002", tenant="globex", interface="PJSIP/hotdesk-1"))


async def test_concurrent_sign_ins_on_one_softphone_exactly_one_wins(
    sessions: SeatSessionRepository,
) -> None:
    results = await asyncio.gather(
        *(
            sessions.open(seat(f"dev-{i}", f"10{i:02d}", interface="PJSIP/shared"))
            for i in range(5)
        ),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, DeviceInUseError) for r in results if r is not None)


async def test_status_json_round_trip(sessions: SeatSessionRepository) -> None:
    status = AgentStatus(
        since=T0 + timedelta(minutes=5),
        state=AgentState.ON_CALL,
        reason="",
        resume=AgentState.NOT_READY,
        resume_reason="培训 — 等待主班批准",
        deferred=DeferredAction.PAUSE,
        deferred_reason="午餐 🍚",
        break_requested=True,
        breaks=DailyCounter(date(2026, 11, 23), 2),
        paused=True,
        pause_reason="示忙:会议",
    )
    assert status_from_json(status_to_json(status)) == status
    assert status_from_json(status_to_json(AgentStatus(since=T0))) == AgentStatus(since=T0)
    opened = seat("s1", "1001")
    await sessions.open(opened)
    saved = await sessions.save_status(dataclasses.replace(opened, status=status))
    back = await sessions.get_open("acme", "1001")
    assert back == saved
    assert back is not None
    assert back.status.since.tzinfo is not None
    assert back.status.deferred_reason == "午餐 🍚"


async def test_status_writes_are_version_guarded(sessions: SeatSessionRepository) -> None:
    opened = seat("s1", "1001")
    await sessions.open(opened)
    busy = AgentStatus(since=T0, state=AgentState.NOT_READY, reason="示忙")
    v2 = await sessions.save_status(dataclasses.replace(opened, status=busy))
    assert v2.version == 2
    with pytest.raises(StaleWriteError):
        await sessions.save_status(opened)  # still at version 1
    with pytest.raises(StaleWriteError):
        await sessions.save_status(dataclasses.replace(v2, tenant_id="globex"))
    closed = await sessions.close(v2, T0 + timedelta(minutes=1))
    with pytest.raises(StaleWriteError):
        await sessions.save_status(closed)  # closed sessions are history
    with pytest.raises(StaleWriteError):
        await sessions.close(v2, T0 + timedelta(minutes=2))
    assert (await sessions.get("acme", "s1")).status == busy  # type: ignore[union-attr]


async def test_open_sessions_listed_and_counted_per_kind(sessions: SeatSessionRepository) -> None:
    await sessions.open(seat("a1", "1001", kind=IN))
    await sessions.open(seat("a2", "1002", kind=IN, at=T0 + timedelta(seconds=1)))
    a3 = seat("a3", "1003", kind=IO, at=T0 + timedelta(seconds=2))
    await sessions.open(a3)
    await sessions.close(a3, T0 + timedelta(minutes=1))
    await sessions.open(seat("a4", "1004", kind=IO, at=T0 + timedelta(seconds=3)))
    await sessions.open(seat("g1", "1001", tenant="globex", kind=IO))
    assert await sessions.count_open_by_kind("acme") == {IN: 2, IO: 1}
    assert await sessions.count_open_by_kind("globex") == {IN: 0, IO: 1}
    assert await sessions.count_open_by_kind("initech") == {IN: 0, IO: 0}
    assert [s.id for s in await sessions.list_open("acme")] == ["a1", "a2", "a4"]
    assert {s.id for s in await sessions.list_open(None)} == {"a1", "a2", "a4", "g1"}


async def test_intervals_feed_utilisation(sessions: SeatSessionRepository) -> None:
    base = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    plan: list[tuple[str, SeatKind, int, int | None]] = [  # (agent, kind, from h, to h)
        ("1001", IN, 0, 8),
        ("1002", IN, 2, 4),
        ("1003", IN, 3, 10),
        ("1004", IO, 1, 2),
        ("1005", IN, -30 * 24, -29 * 24),  # October: outside the window
    ]
    for no, kind, h0, h1 in plan:
        s = seat(f"s{no}", no, kind=kind, at=base + timedelta(hours=h0))
        await sessions.open(s)
        if h1 is not None:
            await sessions.close(s, base + timedelta(hours=h1))
    await sessions.open(seat("open", "1006", kind=IO, at=base + timedelta(hours=20)))
    await sessions.open(seat("g", "1001", tenant="globex", at=base))

    start, end = base, base + timedelta(days=1)
    got = await sessions.intervals("acme", start, end)
    assert [i.agent_no for i in got] == ["1001", "1004", "1002", "1003", "1006"]
    assert got[-1].end is None
    assert got[0].start == base
    assert peak_concurrency(got, IN, start, end) == 3
    assert peak_concurrency(got, IO, start, end) == 1
    # A sign-out and a sign-in at the same instant do not overlap: 1004 ends when 1002 starts.
    assert monthly_seats_used(got, 2026, 11) == {IN: 3, IO: 1}
    assert await sessions.intervals("acme", end, end + timedelta(days=1)) == [got[-1]]


# --- state history ---------------------------------------------------------------------------


async def test_state_intervals_append_closes_the_previous(history: StateIntervalRepository) -> None:
    ready = StateInterval("acme", "1001", AgentState.READY, "", T0)
    busy = StateInterval(
        "acme", "1001", AgentState.NOT_READY, "示忙:培训", T0 + timedelta(minutes=3)
    )
    await history.append(ready)
    await history.append(busy)
    await history.append(StateInterval("globex", "1001", AgentState.READY, "", T0))
    assert await history.close("acme", "1001", T0 + timedelta(minutes=9)) == 1
    assert await history.close("acme", "1001", T0 + timedelta(minutes=10)) == 0
    got = await history.list("acme", T0, T0 + timedelta(hours=1))
    assert got == [
        dataclasses.replace(ready, ended_at=busy.started_at),
        dataclasses.replace(busy, ended_at=T0 + timedelta(minutes=9)),
    ]
    assert await history.list("acme", T0, T0 + timedelta(hours=1), agent_no="1002") == []
    assert len(await history.list("globex", T0, T0 + timedelta(hours=1))) == 1
