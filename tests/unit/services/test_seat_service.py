"""Seat use cases with in-memory ports: each contract rule's allowed and refused case."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta

import pytest
import structlog
from structlog.testing import capture_logs

from ccbridge.domain.agents.policy import BreakPolicy, RefusalCode, SeatPolicy
from ccbridge.domain.agents.state import (
    AgentState,
    CallEnded,
    CallStarted,
    SetNotReady,
    SetReady,
    SignOutAfterCall,
    StartBreak,
)
from ccbridge.domain.leases.model import SeatKind, SeatLease
from ccbridge.services.endpoints import EndpointGuard, EndpointRefusedError
from ccbridge.services.seat_ports import AgentRecord, SkillLevel
from ccbridge.services.seats import AgentNotFoundError, DesiredSeats, SeatRefusedError, SeatService
from tests.fakes.calendar import ListAudit
from tests.fakes.seats import (
    FakeClock,
    MemoryAgents,
    MemoryEndpoints,
    MemoryIntervals,
    MemoryLeases,
    MemorySessions,
    RecordingQueues,
)

LEASE = SeatLease("t1", {SeatKind.INBOUND: 10}, valid_from=date(2026, 11, 1))


def agent(no: str, *, certified: bool = True, tenant: str = "t1") -> AgentRecord:
    return AgentRecord(
        tenant_id=tenant,
        agent_no=no,
        name=f"坐席{no}",
        certified=certified,
        interface=f"PJSIP/{no}",
        seat_kind=SeatKind.INBOUND,
        skills=(SkillLevel("sales", 10), SkillLevel("support", 5)),
    )


class Rig:
    def __init__(
        self, agents: int = 12, policy: SeatPolicy | None = None, pbx: str | None = None
    ) -> None:
        self.clock = FakeClock()
        self.agents = MemoryAgents(*(agent(f"{1000 + i}") for i in range(agents)))
        self.sessions = MemorySessions()
        self.intervals = MemoryIntervals()
        self.queues = RecordingQueues()
        self.endpoints = MemoryEndpoints()
        self.endpoints.claim("t1", *(f"PJSIP/{1000 + i}" for i in range(agents)), "PJSIP/2000")
        self.audit = ListAudit()
        self.guard = EndpointGuard(self.endpoints, self.audit)
        self.service = SeatService(
            agents=self.agents,
            leases=MemoryLeases(LEASE),
            sessions=self.sessions,
            intervals=self.intervals,
            queues=self.queues,
            endpoints=self.guard,
            clock=self.clock,
            policy_for=lambda _t: policy or SeatPolicy(),
            pbx=pbx,
        )


async def refused(coro: object) -> RefusalCode:
    with pytest.raises(SeatRefusedError) as info:
        await coro  # type: ignore[misc]
    return info.value.reason


async def test_sign_in_joins_every_skill_group_queue_with_penalty_from_level() -> None:
    rig = Rig()
    result = await rig.service.sign_in("t1", "1000")
    assert result.session.status.state is AgentState.READY
    assert result.pbx_synced
    assert rig.queues.calls == [
        ("add", "t1-sales", "PJSIP/1000", "False", ""),
        ("add", "t1-support", "PJSIP/1000", "False", ""),
    ]


async def test_the_eleventh_sign_in_on_a_ten_seat_lease_is_refused() -> None:
    rig = Rig()
    for i in range(10):
        await rig.service.sign_in("t1", f"{1000 + i}")
    with pytest.raises(SeatRefusedError) as info:
        await rig.service.sign_in("t1", "1010")
    assert info.value.reason is RefusalCode.SEAT_LIMIT_REACHED
    assert "All 10 leased" in info.value.detail
    assert info.value.status == 409


async def test_concurrent_sign_ins_never_exceed_the_lease() -> None:
    rig = Rig(agents=12)
    results = await asyncio.gather(
        *(rig.service.sign_in("t1", f"{1000 + i}") for i in range(12)), return_exceptions=True
    )
    assert sum(1 for r in results if not isinstance(r, Exception)) == 10
    assert len(await rig.sessions.list_open("t1")) == 10


async def test_uncertified_unknown_and_double_sign_in_are_refused() -> None:
    rig = Rig()
    await rig.agents.create(agent("2000", certified=False))
    assert await refused(rig.service.sign_in("t1", "2000")) is RefusalCode.AGENT_NOT_CERTIFIED
    with pytest.raises(AgentNotFoundError):
        await rig.service.sign_in("t1", "9999")
    with pytest.raises(AgentNotFoundError):  # another tenant's agent does not exist here
        await rig.service.sign_in("t2", "1000")
    await rig.service.sign_in("t1", "1000")
    assert await refused(rig.service.sign_in("t1", "1000")) is RefusalCode.ALREADY_SIGNED_IN


async def test_no_active_lease_refuses_sign_in() -> None:
    rig = Rig()
    rig.clock.current = rig.clock.current.replace(year=2026, month=10)
    assert await refused(rig.service.sign_in("t1", "1000")) is RefusalCode.LEASE_NOT_ACTIVE


async def test_not_ready_pauses_every_queue_with_the_reason_and_ready_unpauses() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")
    rig.queues.calls.clear()
    result = await rig.service.request("t1", "1000", SetNotReady("培训 training"))
    assert result.session.status.state is AgentState.NOT_READY
    assert rig.queues.calls == [
        ("pause", "t1-sales", "PJSIP/1000", "True", "培训 training"),
        ("pause", "t1-support", "PJSIP/1000", "True", "培训 training"),
    ]
    rig.queues.calls.clear()
    await rig.service.request("t1", "1000", SetReady())
    assert [c[3] for c in rig.queues.calls] == ["False", "False"]


async def test_fourth_break_on_the_floor_is_refused_then_allowed_when_one_returns() -> None:
    rig = Rig()
    for i in range(4):
        await rig.service.sign_in("t1", f"{1000 + i}")
    for i in range(3):
        await rig.service.request("t1", f"{1000 + i}", StartBreak())
    assert await refused(rig.service.request("t1", "1003", StartBreak())) is (
        RefusalCode.FLOOR_BREAK_CAP
    )
    await rig.service.request("t1", "1000", SetReady())
    result = await rig.service.request("t1", "1003", StartBreak())
    assert result.session.status.state is AgentState.BREAK


async def test_queued_break_starts_when_the_floor_has_room() -> None:
    rig = Rig(policy=SeatPolicy(breaks=BreakPolicy(queue_when_floor_full=True)))
    for i in range(4):
        await rig.service.sign_in("t1", f"{1000 + i}")
    for i in range(3):
        await rig.service.request("t1", f"{1000 + i}", StartBreak())
    waiting = await rig.service.request("t1", "1003", StartBreak())
    assert waiting.queued is not None
    assert waiting.session.status.state is not AgentState.BREAK
    await rig.service.request("t1", "1001", SetReady())
    session = await rig.sessions.get_open("t1", "1003")
    assert session is not None
    assert session.status.state is AgentState.BREAK


async def test_pbx_failure_keeps_the_state_and_says_so() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")
    rig.queues.fail = True
    result = await rig.service.request("t1", "1000", SetNotReady("lunch"))
    assert result.session.status.state is AgentState.NOT_READY
    assert not result.pbx_synced
    assert rig.service.pbx_failures == 2  # two queues


async def test_a_pbx_failure_log_line_names_the_tenant_and_agent() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")
    rig.queues.fail = True
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await rig.service.request("t1", "1000", SetNotReady("lunch"))

    failed = [e for e in logs if e["event"] == "seat_pbx_sync_failed"]
    assert failed
    assert {(e["tenant"], e["agent_no"]) for e in failed} == {("t1", "1000")}


async def test_breaks_today_counts_the_seats_breaks_of_the_tenant_local_day() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")
    for _ in range(2):
        await rig.service.request("t1", "1000", StartBreak())
        await rig.service.request("t1", "1000", SetReady())
    session = (await rig.service.live("t1"))[0]
    assert rig.service.breaks_today(session, rig.clock.now()) == 2
    assert rig.service.breaks_today(session, rig.clock.now() + timedelta(days=1)) == 0


async def test_sign_out_after_this_call_happens_when_the_call_ends() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")
    await rig.service.call_event("PJSIP/1000", started=True)
    assert await refused(rig.service.sign_out("t1", "1000")) is RefusalCode.INVALID_TRANSITION
    await rig.service.request("t1", "1000", SignOutAfterCall())
    rig.queues.calls.clear()
    await rig.service.request("t1", "1000", CallEnded())
    assert await rig.sessions.get_open("t1", "1000") is None
    assert [c[0] for c in rig.queues.calls] == ["remove", "remove"]
    assert rig.intervals.rows[-1].ended_at is not None


async def test_a_queue_call_on_a_phone_without_an_open_seat_changes_no_seat() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")
    rig.queues.calls.clear()
    await rig.service.call_event("PJSIP/9999", started=True)  # nobody signed in there
    session = await rig.sessions.get_open("t1", "1000")
    assert session is not None
    assert session.status.state is AgentState.READY
    await rig.service.call_event("PJSIP/1000", started=True)
    session = await rig.sessions.get_open("t1", "1000")
    assert session is not None
    assert session.status.state is not AgentState.READY
    assert rig.queues.calls == []


async def test_desired_state_follows_the_stored_pause_state() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")
    await rig.service.sign_in("t1", "1001")
    await rig.service.request("t1", "1001", SetNotReady("meeting"))
    await rig.service.request("t1", "1000", CallStarted())

    async def owned() -> list[str]:
        return ["t1-sales", "t1-support"]

    source = DesiredSeats(rig.sessions, rig.agents, owned, rig.guard)
    desired = await source.desired()
    assert source.managed_queues() == {"t1-sales", "t1-support"}
    by_member = {(d.queue, d.interface): (d.paused, d.reason, d.penalty) for d in desired}
    assert by_member[("t1-sales", "PJSIP/1000")] == (False, "", 0)
    assert by_member[("t1-support", "PJSIP/1000")] == (False, "", 5)
    assert by_member[("t1-sales", "PJSIP/1001")] == (True, "meeting", 0)
    assert {d.member_name for d in desired} == {"1000 坐席1000", "1001 坐席1001"}


async def test_the_desired_seats_of_a_pbx_leave_out_tenants_placed_on_another() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")

    async def owned() -> list[str]:
        return ["t1-sales", "t1-support"]

    here = DesiredSeats(rig.sessions, rig.agents, owned, rig.guard, pbx="default")
    assert {d.interface for d in await here.desired()} == {"PJSIP/1000"}
    rig.sessions.placements["t1"] = "pbx-b"  # the tenant now lives on another PBX
    assert await here.desired() == []
    elsewhere = DesiredSeats(rig.sessions, rig.agents, owned, rig.guard, pbx="pbx-b")
    assert {d.interface for d in await elsewhere.desired()} == {"PJSIP/1000"}


async def test_the_tick_of_a_pbx_owner_covers_only_the_seats_of_its_tenants() -> None:
    rig = Rig(pbx="default")
    await rig.service.sign_in("t1", "1000")
    assert await rig.service.tick() == 1
    assert await rig.service.census() != []
    rig.sessions.placements["t1"] = "pbx-b"
    assert await rig.service.tick() == 0  # pbx-b's owner ticks it
    assert await rig.service.census() == []  # and its nodes count it


async def test_any_softphone_can_take_a_seat_but_only_one_seat_per_softphone() -> None:
    rig = Rig()
    rig.endpoints.claim("t1", "PJSIP/hotdesk-7")
    result = await rig.service.sign_in("t1", "1000", endpoint="hotdesk-7")
    assert result.session.interface == "PJSIP/hotdesk-7"
    assert rig.queues.calls[0][2] == "PJSIP/hotdesk-7"
    rig.queues.calls.clear()
    await rig.service.request("t1", "1000", SetNotReady("x"))
    assert {c[2] for c in rig.queues.calls} == {"PJSIP/hotdesk-7"}
    code = await refused(rig.service.sign_in("t1", "1001", endpoint="PJSIP/hotdesk-7"))
    assert code is RefusalCode.DEVICE_IN_USE


@pytest.mark.parametrize(
    "chosen",
    [
        "Local/00881234567@outbound-trunk",  # a trunk: every queue call would dial abroad
        "PJSIP/2101",  # another tenant's phone
        "PJSIP/1000&PJSIP/2101",  # a second device smuggled into the dial string
        "PJSIP/1000\r\nAction: Originate",
        "",
    ],
)
async def test_a_phone_that_is_not_the_tenants_never_reaches_the_queues(chosen: str) -> None:
    rig = Rig()
    rig.endpoints.claim("t2", "PJSIP/2101")
    with pytest.raises(EndpointRefusedError) as info:
        await rig.service.sign_in("t1", "1000", endpoint=chosen, endpoint_field="body.interface")
    assert info.value.field == "body.interface"
    assert info.value.status == 422
    assert rig.queues.calls == []
    assert await rig.sessions.get_open("t1", "1000") is None
    ((_actor, tenant, action, kind, _obj, detail),) = rig.audit.entries
    assert (tenant, action, kind, detail["field"]) == (
        "t1",
        "endpoint.refused",
        "endpoint",
        "body.interface",
    )
    assert "\r" not in detail["value"]
    assert "\n" not in detail["value"]


async def test_an_agents_own_phone_must_be_claimed_too() -> None:
    rig = Rig()
    await rig.endpoints.delete(
        "t1", next(e.id for e in rig.endpoints.rows.values() if e.name == "1000")
    )
    with pytest.raises(EndpointRefusedError) as info:
        await rig.service.sign_in("t1", "1000")
    assert info.value.field == "agent.interface"
    assert rig.queues.calls == []


async def test_the_reconciler_re_adds_only_seats_on_phones_their_tenant_owns() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")
    await rig.service.sign_in("t1", "1001")
    # The row of 1001 now names a phone t1 does not own (edited in the DB, or pre-0012 data).
    phone = next(e for e in rig.endpoints.rows.values() if e.name == "1001")
    rig.endpoints.rows[phone.id] = replace(phone, tenant_id="t2")

    async def owned() -> list[str]:
        return ["t1-sales", "t1-support"]

    desired = await DesiredSeats(rig.sessions, rig.agents, owned, rig.guard).desired()
    assert {d.interface for d in desired} == {"PJSIP/1000"}


async def test_the_census_counts_signed_in_agents_per_skill_group_and_state() -> None:
    rig = Rig()
    await rig.service.sign_in("t1", "1000")
    await rig.service.sign_in("t1", "1001")
    await rig.service.request("t1", "1001", SetNotReady("培训"))

    assert await rig.service.census() == [
        ("t1", "sales", "not_ready", 1),
        ("t1", "sales", "ready", 1),
        ("t1", "support", "not_ready", 1),
        ("t1", "support", "ready", 1),
    ]
