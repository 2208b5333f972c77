"""Call control end to end: HTTP → CallControlService → AmiCallControl → AMI over TCP → the fake
Asterisk 22 → AMI events → the call tracker. Each test checks the exact AMI actions field by
field (as the fake received them) and the call record they produce, with its four variables.

The tenant ``t1`` has agents on ``Local/<no>@agents`` (the fake's agents context, as in the
captures): 1000 and 1002 on inbound+outbound seats, 1001 on an inbound-only seat. Customers
call the DID 4008001234 into ``t1-sales``, where only 1000 is a member.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import CallControlApi, create_app
from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.ami.client import AmiClient
from ccbridge.asterisk.call_control import AmiCallControl
from ccbridge.asterisk.call_feed import AmiCallFeed
from ccbridge.asterisk.coordinator import PbxCoordinator
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.journal import SqlJournal
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.db.repositories.dial_policies import DialPolicyRepository
from ccbridge.db.repositories.idempotency import IdempotencyRepository
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.outbound_dials import SqlOutboundLedger
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.domain.access import Role
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.journal.derive import call_events, call_params
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService
from ccbridge.services.call_control import CallControlService
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.dialing import TenantFactsReader
from ccbridge.services.event_hub import EventHub
from ccbridge.services.idempotency import IdempotencyService
from ccbridge.services.tenants import AccessService
from ccbridge.testing.call_generator import DidRoute
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import QueueSpec
from tests.fakes.seats import FakeClock
from tests.support.ami_rig import fake_pbx_client, running
from tests.support.api_rig import auth, create_tenants, seat_api
from tests.support.floor_rig import floor_api

SECRET = "integration-test-secret-0123456789abcdef"
DID, CALLER = "4008001234", "13800138000"
CALLER_ID = "+862088880000"
AGENTS_CONTEXT = "agents"
T = "/api/v1/tenants/t1/seats"


class ListSink:
    """The call sink: keeps every record version the tracker produced."""

    def __init__(self) -> None:
        self.records: list[CallRecord] = []

    def submit(self, record: CallRecord) -> None:
        self.records.append(record)


@dataclass
class Rig:
    http: httpx.AsyncClient
    pbx: FakeAsterisk
    ami: AmiClient
    calls: CallTrackingService
    control: CallControlService
    idempotency: IdempotencyService
    admin: dict[str, str]
    platform: dict[str, str]
    agent: dict[str, dict[str, str]]
    sessions: Any

    def actions(self, since: int, *names: str) -> list[list[tuple[str, str]]]:
        """The AMI actions the PBX received after index *since* (ActionID dropped)."""
        out = []
        for msg in self.pbx.ami.actions[since:]:
            fields = [(k, v) for k, v in msg.fields if k != "ActionID"]
            if not names or fields[0][1] in names:
                out.append(fields)
        return out

    def mark(self) -> int:
        return len(self.pbx.ami.actions)

    def channel(self, name: str) -> Any:
        return self.pbx.model.find_channel(name)

    async def post(
        self, path: str, who: dict[str, str], body: Any = None, key: str | None = None
    ) -> httpx.Response:
        headers = dict(who)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.http.post(f"{T}/{path}", json=body, headers=headers)

    async def until(self, check: Callable[[], Any], what: str, within: float = 5.0) -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    async def connected_call(self, agent_no: str = "1000") -> CallRecord:
        await self.pbx.simulator.place_call(CALLER, did=DID, talk_seconds=600)

        def on_call() -> CallRecord | None:
            for rec in self.calls.open_calls():
                if rec.state is CallState.CONNECTED and rec.current_agent_no == agent_no:
                    return rec
            return None

        rec: CallRecord = await self.until(on_call, f"a call answered by {agent_no}")
        return rec

    def record(self, call_id: str) -> CallRecord:
        rec = self.calls.get(call_id)
        assert rec is not None
        return rec

    async def audit(self) -> list[Any]:
        async with SqlAccessUnitOfWork(self.sessions) as uow:
            return list(await uow.audit.list(tenant_id="t1", limit=100))


def four(agent: str | None, group: str | None, caller: str, callee: str) -> dict[str, Any]:
    from ccbridge.domain.calls.numbers import to_e164

    return {
        "agent_no": agent,
        "skill_group": group,
        "caller": to_e164(caller) or caller,
        "callee": to_e164(callee) or callee,
        "caller_original": caller,
        "callee_original": callee,
    }


INBOUND_FOUR = four("1000", "t1-sales", CALLER, DID)


def control_service(
    sessions: Any,
    calls: CallTrackingService,
    ami: AmiClient,
    audit: AuditRecorder,
    calendar: CalendarService,
) -> CallControlService:
    """Call control wired as ``ccbridge serve`` wires it (a second one is a restarted process)."""
    groups = SkillGroupRepository(sessions)
    return CallControlService(
        calls=calls,
        sessions=SeatSessionRepository(sessions),
        agents=AgentRepository(sessions),
        groups=groups,
        facts=TenantFactsReader(
            lambda: SqlAccessUnitOfWork(sessions),
            groups,
            LeaseRepository(sessions),
            DialPolicyRepository(sessions),
            calendar,
        ),
        pbx=AmiCallControl(ami, AGENTS_CONTEXT),
        audit=audit,
        now=lambda: datetime.now(UTC),
        agents_context=AGENTS_CONTEXT,
        ledger=SqlOutboundLedger(sessions),
    )


@pytest.fixture
async def rig(engine: AsyncEngine) -> AsyncIterator[Rig]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    calendar = CalendarService(CalendarRepository(sessions), audit, clock.now)
    pbx = FakeAsterisk(
        queues=[QueueSpec("t1-sales"), QueueSpec("t1-support")],
        dids={DID: DidRoute("t1", "t1-sales")},
        agi_url=None,
        seed=7,
        auth_fail_delay=0,
    )
    await pbx.start()
    ami = fake_pbx_client(pbx.ami_port)
    sink = ListSink()
    calls = CallTrackingService(sink)
    PbxCoordinator(ami, calls=AmiCallFeed(calls, lambda: datetime.now(UTC))).attach()
    control = control_service(sessions, calls, ami, audit, calendar)
    idempotency = IdempotencyService(IdempotencyRepository(sessions), clock.now)
    seats = seat_api(
        sessions, clock, audit, calendar, AmiQueueControl(ami), agents_context=AGENTS_CONTEXT
    )
    spy_pbx = AmiCallControl(ami, AGENTS_CONTEXT)
    floor = floor_api(
        sessions,
        clock,
        seats.seats,
        SqlJournal(sessions),
        EventHub(),
        calls,
        spy_pbx,
        [],
        agents_context=AGENTS_CONTEXT,
    )
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        seat_api=seats,
        call_control_api=CallControlApi(control, idempotency),
        floor_api=floor,
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    platform = auth(platform_key)
    try:
        async with (
            running(ami),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
        ):
            admin = (await create_tenants(http, platform, {"t1": {}}))["t1"]

            async def ok(resp: httpx.Response) -> Any:
                assert resp.status_code in (200, 201), resp.text
                return resp.json()

            lease = {"seats": {"inbound": 5, "inbound_outbound": 5}, "valid_from": "2026-01-01"}
            await ok(await http.post("/api/v1/tenants/t1/leases", json=lease, headers=platform))
            policy = {"caller_id": "02088880000", "allow": ["0", "1", "400"], "deny": ["160"]}
            await ok(
                await http.put("/api/v1/tenants/t1/dial-policy", json=policy, headers=platform)
            )
            for group in ("sales", "support"):
                await ok(
                    await http.post(
                        "/api/v1/tenants/t1/skill-groups", json={"name": group}, headers=admin
                    )
                )
            seats = {"1000": ("inbound_outbound", "sales"), "1001": ("inbound", "support")}
            seats["1002"] = ("inbound_outbound", "support")
            agent_tokens = {}
            for no, (kind, group) in seats.items():
                await ok(
                    await http.post(
                        "/api/v1/tenants/t1/endpoints",
                        json={"technology": "Local", "name": no},
                        headers=admin,
                    )
                )
                body = {
                    "agent_no": no,
                    "name": f"坐席 {no}",
                    "certified": True,
                    "interface": f"Local/{no}@{AGENTS_CONTEXT}",
                    "seat_kind": kind,
                    "skills": [{"skill_group": group, "level": 8}],
                }
                await ok(await http.post("/api/v1/tenants/t1/agents", json=body, headers=admin))
                token = await ok(
                    await http.post(
                        "/api/v1/auth/token",
                        json={"subject": f"a{no}", "role": "agent", "agent_no": no},
                        headers=admin,
                    )
                )
                agent_tokens[no] = auth(token["access_token"])
                await ok(await http.post(f"{T}/{no}/sign-in", headers=agent_tokens[no]))
            yield Rig(
                http, pbx, ami, calls, control, idempotency, admin, platform, agent_tokens, sessions
            )
    finally:
        await pbx.stop()


def _events(rec: CallRecord) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """The journal events of the call as derived from its record: (type, params, data)."""
    return [(e.type.value, e.data["params"], e.data) for e in call_events(None, rec)]


async def test_hold_then_resume_moves_both_legs_and_keeps_the_four_variables(rig: Rig) -> None:
    rec = await rig.connected_call()
    customer, agent = rig.calls.live_channels(rec.call_id)[:2]
    assert customer.startswith("PJSIP/")
    assert agent.startswith("Local/1000@agents-")
    mark = rig.mark()
    resp = await rig.post("1000/call/hold", rig.agent["1000"], key="hold-1")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"call_id": rec.call_id, "action": "hold", "held": True}
    assert rig.actions(mark) == [
        [
            ("Action", "Redirect"),
            ("Channel", customer),
            ("ExtraChannel", agent),
            ("Context", "ccbridge-hold"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("ExtraContext", "ccbridge-hold-agent"),
            ("ExtraExten", "s"),
            ("ExtraPriority", "1"),
        ]
    ]
    assert (rig.channel(customer).context, rig.channel(customer).bridge_id) == ("ccbridge-hold", "")
    assert rig.channel(agent).context == "ccbridge-hold-agent"
    held = rig.record(rec.call_id)
    assert held.held
    assert held.state is CallState.CONNECTED
    assert call_params(held) == INBOUND_FOUR

    # A replay answers the same and sends nothing to the PBX.
    mark = rig.mark()
    again = await rig.post("1000/call/hold", rig.agent["1000"], key="hold-1")
    assert (again.status_code, again.json()) == (200, resp.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert rig.actions(mark) == []
    # Holding twice under a new key is a conflict, not a second Redirect.
    assert (await rig.post("1000/call/hold", rig.agent["1000"], key="hold-2")).status_code == 409

    mark = rig.mark()
    resp = await rig.post("1000/call/resume", rig.agent["1000"], key="resume-1")
    assert resp.status_code == 200, resp.text
    assert resp.json()["held"] is False
    assert rig.actions(mark) == [
        [("Action", "Bridge"), ("Channel1", customer), ("Channel2", agent), ("Tone", "no")]
    ]
    bridge = rig.channel(customer).bridge_id
    assert bridge
    assert rig.channel(agent).bridge_id == bridge
    resumed = rig.record(rec.call_id)
    assert not resumed.held
    assert call_params(resumed) == INBOUND_FOUR
    events = _events(resumed)
    assert [(t, p) for t, p, _ in events] == [
        ("call.queued", four(None, "t1-sales", CALLER, DID)),
        ("call.ringing", INBOUND_FOUR),
        ("call.answered", INBOUND_FOUR),
        ("call.held", INBOUND_FOUR),
        ("call.resumed", INBOUND_FOUR),
    ]
    assert events[3][2]["control"] == {"kind": "held", "agent_no": "1000"}


async def test_mute_and_unmute_send_mute_audio_on_the_agent_leg(rig: Rig) -> None:
    rec = await rig.connected_call()
    agent = rig.calls.live_channels(rec.call_id)[1]
    mark = rig.mark()
    # The tenant admin (seats:write) acts on the agent's call as a supervisor would.
    assert (await rig.post("1000/call/mute", rig.admin)).status_code == 200
    assert rig.pbx.ami.call_control.muted == {agent: "in"}
    assert (await rig.post("1000/call/unmute", rig.agent["1000"])).status_code == 200
    assert rig.pbx.ami.call_control.muted == {}
    assert rig.actions(mark) == [
        [("Action", "MuteAudio"), ("Channel", agent), ("Direction", "in"), ("State", "on")],
        [("Action", "MuteAudio"), ("Channel", agent), ("Direction", "in"), ("State", "off")],
    ]
    assert [c.kind for c in rig.record(rec.call_id).controls] == ["muted", "unmuted"]


async def test_blind_transfer_to_an_agent_reaches_that_agent_with_the_four_variables(
    rig: Rig,
) -> None:
    rec = await rig.connected_call()
    agent = rig.calls.live_channels(rec.call_id)[1]
    mark = rig.mark()
    resp = await rig.post("1000/call/transfer", rig.agent["1000"], {"agent_no": "1002"})
    assert resp.status_code == 200, resp.text
    assert rig.actions(mark) == [
        [("Action", "BlindTransfer"), ("Channel", agent), ("Exten", "1002"), ("Context", "agents")]
    ]

    def on_1002() -> CallRecord | None:
        now = rig.record(rec.call_id)
        return now if now.current_agent_no == "1002" else None

    moved = await rig.until(on_1002, "the call to reach 1002")
    assert rig.channel(agent) is None  # the transferer hung up
    (transfer,) = moved.transfers
    assert (transfer.kind, transfer.from_agent_no, transfer.to_agent_no, transfer.from_group) == (
        "blind",
        "1000",
        "1002",
        "t1-sales",
    )
    assert [(s.agent_no, s.via, s.ended_at is not None) for s in moved.segments] == [
        ("1000", "queue", True),
        ("1002", "blind_transfer", False),
    ]
    assert call_params(moved) == four("1002", "t1-sales", CALLER, DID)
    (data,) = [d for t, _, d in _events(moved) if t == "call.transferred"]
    assert data["transfer"]["to_agent_no"] == "1002"
    assert data["transfer"]["from_agent_no"] == "1000"


async def test_blind_transfer_to_a_group_requeues_with_the_four_variables(rig: Rig) -> None:
    rec = await rig.connected_call()
    agent = rig.calls.live_channels(rec.call_id)[1]
    mark = rig.mark()
    resp = await rig.post("1000/call/transfer", rig.agent["1000"], {"skill_group": "support"})
    assert resp.status_code == 200, resp.text
    assert rig.actions(mark) == [
        [
            ("Action", "BlindTransfer"),
            ("Channel", agent),
            ("Exten", "t1-support"),
            ("Context", "ccbridge-queue"),
        ]
    ]

    def answered_in_support() -> CallRecord | None:
        now = rig.record(rec.call_id)
        last = now.segments[-1] if now.segments else None
        return now if last is not None and last.skill_group == "t1-support" else None

    moved = await rig.until(answered_in_support, "the call to be answered in t1-support")
    # Both support members may answer; the caller, the DID and the original group stay.
    params = call_params(moved)
    assert params["agent_no"] in ("1001", "1002")
    assert params == four(params["agent_no"], "t1-support", CALLER, DID)
    assert moved.skill_group == "t1-sales"
    (transfer,) = moved.transfers
    assert (transfer.to_group, transfer.from_group, transfer.target) == (
        "t1-support",
        "t1-sales",
        "t1-support",
    )


async def test_transfer_to_a_number_is_refused_as_transit_and_audited(rig: Rig) -> None:
    await rig.connected_call()
    mark = rig.mark()
    resp = await rig.post("1000/call/transfer", rig.agent["1000"], {"number": "13900139000"})
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["reason"] == "NO_TRANSIT"
    assert rig.actions(mark, "BlindTransfer", "Atxfer") == []
    (entry,) = [e for e in await rig.audit() if e.action == "call_control.refused"]
    assert entry.detail["rule"] == "NO_TRANSIT"


async def test_inbound_only_seat_may_not_dial_out_or_conference_and_is_audited(rig: Rig) -> None:
    mark = rig.mark()
    resp = await rig.post("1001/dial", rig.agent["1001"], {"number": "13900139000"})
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["reason"] == "CAPABILITY_NOT_LEASED"
    assert "outbound_call" in body["detail"]
    assert "inbound+outbound" in body["detail"]
    assert rig.actions(mark, "Originate") == []
    entries = [e for e in await rig.audit() if e.action == "call_control.refused"]
    assert [(e.object_id, e.detail["action"], e.detail["rule"]) for e in entries] == [
        ("1001", "outbound_call", "CAPABILITY_NOT_LEASED")
    ]
    # An agent acts on its own seat only.
    resp = await rig.post("1000/dial", rig.agent["1001"], {"number": "13900139000"})
    assert resp.status_code == 403


@pytest.mark.parametrize(
    ("number", "rule"),
    [
        ("16012345678", "NUMBER_INVALID"),
        ("+14155550123", "INTERNATIONAL_DENIED"),
        ("4001234567", "NUMBER_NOT_ALLOWED"),
    ],
)
async def test_denied_numbers_are_refused_with_their_rule_and_audited(
    rig: Rig, number: str, rule: str
) -> None:
    policy = {"caller_id": "02088880000", "allow": ["0", "1"], "deny": ["160"]}
    resp = await rig.http.put("/api/v1/tenants/t1/dial-policy", json=policy, headers=rig.platform)
    assert resp.status_code == 200, resp.text
    mark = rig.mark()
    resp = await rig.post("1000/dial", rig.agent["1000"], {"number": number})
    assert resp.status_code == 403, resp.text
    assert resp.json()["reason"] == rule
    assert rig.actions(mark, "Originate") == []
    (entry,) = [e for e in await rig.audit() if e.action == "call_control.refused"]
    assert (entry.detail["rule"], entry.detail["number"]) == (rule, number)


async def test_click_to_call_rings_the_agent_first_and_a_replay_never_dials_twice(
    rig: Rig,
) -> None:
    mark = rig.mark()
    body = {"number": "139 0013 9000"}
    resp = await rig.post("1000/dial", rig.agent["1000"], body, key="c2c-1")
    assert resp.status_code == 200, resp.text
    call_id = resp.json()["call_id"]
    assert resp.json()["action"] == "outbound_call"
    (originate,) = rig.actions(mark, "Originate")
    assert originate == [
        ("Action", "Originate"),
        ("Channel", "Local/1000@agents"),
        ("Exten", "13900139000"),
        ("Context", "ccbridge-outbound"),
        ("Priority", "1"),
        ("CallerID", f"<{CALLER_ID}>"),
        ("Async", "true"),
        ("Timeout", "30000"),
        ("ChannelId", call_id),
        ("Variable", "CCB_TENANT=t1"),
        ("Variable", "CCB_AGENT=1000"),
        ("Variable", "CCB_GROUP=t1-sales"),
    ]
    for _ in range(3):
        again = await rig.post("1000/dial", rig.agent["1000"], body, key="c2c-1")
        assert (again.status_code, again.json()["call_id"]) == (200, call_id)
    assert len(rig.actions(mark, "Originate")) == 1
    assert rig.idempotency.replays == 3
    # The same key with another body is refused, naming the header.
    other = await rig.post("1000/dial", rig.agent["1000"], {"number": "13700137000"}, key="c2c-1")
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "header.Idempotency-Key"
    assert len(rig.actions(mark, "Originate")) == 1

    def answered() -> CallRecord | None:
        rec = rig.calls.get(call_id)
        return rec if rec is not None and rec.state is CallState.CONNECTED else None

    rec = await rig.until(answered, "the customer to answer")
    outbound_four = four("1000", "t1-sales", CALLER_ID, "+8613900139000")
    outbound_four["callee_original"] = "+8613900139000"
    assert call_params(rec) == outbound_four
    assert rec.direction == "outbound"
    assert [(s.agent_no, s.via) for s in rec.segments] == [("1000", "outbound")]
    # A second call while the first is up breaks the seat's concurrency cap (1).
    busy = await rig.post("1000/dial", rig.agent["1000"], {"number": "13700137000"})
    assert busy.status_code == 429
    assert busy.json()["reason"] == "SEAT_CONCURRENCY_LIMITED"

    mark = rig.mark()
    resp = await rig.post("1000/call/hangup", rig.agent["1000"], key="bye-1")
    assert resp.status_code == 200, resp.text
    (hangup,) = rig.actions(mark, "Hangup")
    assert hangup[0] == ("Action", "Hangup")
    assert hangup[1][0] == "Channel"
    assert hangup[1][1].startswith("PJSIP/trunk-")

    def ended() -> CallRecord | None:
        now = rig.calls.get(call_id)
        return now if now is not None and now.state is CallState.ENDED else None

    done = await rig.until(ended, "the call to end")
    assert [t for t, _, _ in _events(done)] == ["call.ringing", "call.answered", "call.ended"]
    assert all(p == outbound_four for _, p, _ in _events(done))


async def test_attended_transfer_consults_then_completes_to_the_agent(rig: Rig) -> None:
    rec = await rig.connected_call()
    customer, agent = rig.calls.live_channels(rec.call_id)[:2]
    mark = rig.mark()
    body = {"agent_no": "1002", "mode": "attended"}
    resp = await rig.post("1000/call/transfer", rig.agent["1000"], body)
    assert resp.status_code == 200, resp.text
    assert rig.actions(mark) == [
        [("Action", "Atxfer"), ("Channel", agent), ("Exten", "1002"), ("Context", "agents")]
    ]
    (consult,) = rig.pbx.ami.call_control.consultations.values()
    assert consult.peer.name == customer
    assert consult.target.name.startswith("Local/1002@agents-")
    consulting = rig.record(rec.call_id)
    assert consulting.current_agent_no == "1000"  # still 1000's call while consulting
    assert consulting.transfer_intent is not None
    assert consulting.transfer_intent.to_agent_no == "1002"

    mark = rig.mark()
    resp = await rig.post("1000/call/transfer/complete", rig.agent["1000"])
    assert resp.status_code == 200, resp.text
    assert rig.actions(mark) == [[("Action", "Hangup"), ("Channel", agent)]]

    def on_1002() -> CallRecord | None:
        now = rig.record(rec.call_id)
        return now if now.current_agent_no == "1002" else None

    moved = await rig.until(on_1002, "the attended transfer to complete")
    assert rig.channel(customer).bridge_id == rig.channel(consult.target.name).bridge_id
    (transfer,) = moved.transfers
    assert (transfer.kind, transfer.from_agent_no, transfer.to_agent_no) == (
        "attended",
        "1000",
        "1002",
    )
    assert [(s.agent_no, s.via) for s in moved.segments] == [
        ("1000", "queue"),
        ("1002", "attended_transfer"),
    ]
    assert call_params(moved) == four("1002", "t1-sales", CALLER, DID)
    (data,) = [d for t, _, d in _events(moved) if t == "call.transferred"]
    assert data["params"] == four("1002", "t1-sales", CALLER, DID)
    assert (data["transfer"]["kind"], data["transfer"]["to_agent_no"]) == ("attended", "1002")


async def test_attended_transfer_cancelled_goes_back_to_the_customer(rig: Rig) -> None:
    rec = await rig.connected_call()
    customer, agent = rig.calls.live_channels(rec.call_id)[:2]
    body = {"agent_no": "1002", "mode": "attended"}
    assert (await rig.post("1000/call/transfer", rig.agent["1000"], body)).status_code == 200
    (consult,) = rig.pbx.ami.call_control.consultations.values()
    mark = rig.mark()
    resp = await rig.post("1000/call/transfer/cancel", rig.agent["1000"])
    assert resp.status_code == 200, resp.text
    assert rig.actions(mark) == [[("Action", "CancelAtxfer"), ("Channel", agent)]]
    assert rig.channel(consult.target.name) is None
    assert rig.channel(customer).bridge_id == rig.channel(agent).bridge_id != ""
    back = rig.record(rec.call_id)
    assert back.transfer_intent is None
    assert back.transfers == ()
    assert [c.kind for c in back.controls] == ["transfer_started", "transfer_cancelled"]
    assert call_params(back) == INBOUND_FOUR
    # Completing now has nothing to complete.
    assert (await rig.post("1000/call/transfer/complete", rig.agent["1000"])).status_code == 409


async def test_three_way_call_with_an_agent_then_leaving_it(rig: Rig) -> None:
    rec = await rig.connected_call()
    customer, agent = rig.calls.live_channels(rec.call_id)[:2]
    room = "".join(ch for ch in rec.call_id if ch.isdigit())
    mark = rig.mark()
    resp = await rig.post("1000/call/conference", rig.agent["1000"], {"agent_no": "1002"})
    assert resp.status_code == 200, resp.text
    redirect, originate = rig.actions(mark)
    assert redirect == [
        ("Action", "Redirect"),
        ("Channel", customer),
        ("ExtraChannel", agent),
        ("Context", "ccbridge-conf"),
        ("Exten", room),
        ("Priority", "1"),
        ("ExtraContext", "ccbridge-conf"),
        ("ExtraExten", room),
        ("ExtraPriority", "1"),
    ]
    assert originate == [
        ("Action", "Originate"),
        ("Channel", "Local/1002@agents"),
        ("Exten", room),
        ("Context", "ccbridge-conf"),
        ("Priority", "1"),
        ("CallerID", f"<{CALLER_ID}>"),
        ("Async", "true"),
        ("Timeout", "30000"),
    ]
    rooms = rig.pbx.ami.call_control.rooms
    await rig.until(lambda: len(rooms.get(room, [])) == 3, "three parties in the room")
    assert rooms[room][:2] == [customer, agent]
    assert rooms[room][2].startswith("Local/1002@agents-")
    conf = rig.record(rec.call_id)
    (step,) = [c for c in conf.controls if c.kind == "conferenced"]
    assert dict(step.detail) == {"room": room, "target": "1002", "to_agent_no": "1002"}
    (data,) = [d for t, _, d in _events(conf) if t == "call.conferenced"]
    assert data["params"] == INBOUND_FOUR
    assert data["control"]["to_agent_no"] == "1002"

    mark = rig.mark()
    resp = await rig.post("1000/call/conference/leave", rig.agent["1000"])
    assert resp.status_code == 200, resp.text
    assert rig.actions(mark) == [[("Action", "Hangup"), ("Channel", agent)]]
    assert rig.channel(agent) is None
    assert rig.channel(customer) is not None  # the customer stays with 1002
    assert rig.record(rec.call_id).state is CallState.CONNECTED


async def test_three_way_with_a_number_cannot_be_left_to_the_two_trunks(rig: Rig) -> None:
    rec = await rig.connected_call()
    agent = rig.calls.live_channels(rec.call_id)[1]
    resp = await rig.post("1000/call/conference", rig.agent["1000"], {"number": "13900139000"})
    assert resp.status_code == 200, resp.text
    (originate,) = rig.actions(0, "Originate")
    assert ("Channel", "Local/13900139000@ccbridge-outbound") in originate
    mark = rig.mark()
    resp = await rig.post("1000/call/conference/leave", rig.agent["1000"])
    assert resp.status_code == 403
    assert resp.json()["reason"] == "NO_TRANSIT"
    assert rig.actions(mark) == []
    assert rig.channel(agent) is not None


async def test_inbound_seat_may_not_start_a_three_way_call(rig: Rig) -> None:
    await rig.connected_call()
    resp = await rig.post("1001/call/conference", rig.agent["1001"], {"agent_no": "1000"})
    assert resp.status_code == 403
    assert resp.json()["reason"] == "CAPABILITY_NOT_LEASED"


async def test_hand_back_to_ivr_at_a_node_and_back_to_the_agent(rig: Rig) -> None:
    from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
    from ccbridge.asterisk.ivr_return import SCRIPT as RETURN_SCRIPT
    from ccbridge.asterisk.ivr_return import IvrReturnHandler
    from ccbridge.asterisk.ivr_runner import IvrRunner
    from tests.fakes.ivr import ListSink as IvrLog
    from tests.fakes.ivr import StaticFlows, load_example

    ivr_log = IvrLog()
    runner = IvrRunner(
        StaticFlows({"t1": load_example("return_visit_survey.yaml")}),
        ivr_log,
        lambda: datetime.now(UTC),
    )
    router = AgiRouter()
    router.add_route(RETURN_SCRIPT, IvrReturnHandler(runner))
    agi = FastAgiServer(AgiServerConfig(port=0), router)
    await agi.start()
    try:
        rec = await rig.connected_call()
        customer, agent = rig.calls.live_channels(rec.call_id)[:2]
        rig.pbx.simulator.config.agi_url = f"agi://127.0.0.1:{agi.port}"
        mark = rig.mark()
        body = {"flow_node": "score", "back_to_agent": True}
        resp = await rig.post("1000/call/ivr", rig.agent["1000"], body, key="ivr-1")
        assert resp.status_code == 200, resp.text
        assert rig.actions(mark) == [
            [
                ("Action", "Setvar"),
                ("Channel", customer),
                ("Variable", "CCB_IVR_NODE"),
                ("Value", "score"),
            ],
            [
                ("Action", "Setvar"),
                ("Channel", customer),
                ("Variable", "CCB_RETURN_TO"),
                ("Value", "Local/1000@agents"),
            ],
            [
                ("Action", "Setvar"),
                ("Channel", customer),
                ("Variable", "CCB_RETURN_AGENT"),
                ("Value", "1000"),
            ],
            [
                ("Action", "Redirect"),
                ("Channel", customer),
                ("Context", "ccbridge-ivr-return"),
                ("Exten", "s"),
                ("Priority", "1"),
            ],
        ]
        assert rig.channel(agent) is None  # the agent's leg is released
        sim = rig.pbx.simulator
        await rig.until(lambda: sim.ivr_returns, "the FastAGI ivr-return session")
        (record,) = ivr_log.records
        assert record.path[0] == "score"  # the flow started at the node the agent named
        assert record.tenant_id == "t1"
        # Back to the same agent: the customer is bridged with 1000's phone again.
        back = await rig.until(
            lambda: [
                c
                for c in rig.pbx.model.channels.values()
                if c.name.startswith("Local/1000@agents-")
                and c.bridge_id
                and c.bridge_id == rig.channel(customer).bridge_id
            ],
            "the caller back with agent 1000",
        )
        assert back
        returned = rig.record(rec.call_id)
        (step,) = [c for c in returned.controls if c.kind == "returned_to_ivr"]
        assert dict(step.detail) == {"flow_node": "score", "back_to_agent": "true"}
        assert call_params(returned) == INBOUND_FOUR
        (data,) = [d for t, _, d in _events(returned) if t == "call.returned_to_ivr"]
        assert data["params"] == INBOUND_FOUR
        assert data["control"]["flow_node"] == "score"
    finally:
        await agi.stop()


async def test_hand_back_names_a_bad_node_field(rig: Rig) -> None:
    await rig.connected_call()
    resp = await rig.post("1000/call/ivr", rig.agent["1000"], {"flow_node": "a b"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "body.flow_node"


async def test_internal_call_rings_the_caller_agent_then_the_other(rig: Rig) -> None:
    mark = rig.mark()
    resp = await rig.post("1001/dial", rig.agent["1001"], {"agent_no": "1002"})
    assert resp.status_code == 200, resp.text
    call_id = resp.json()["call_id"]
    (originate,) = rig.actions(mark, "Originate")
    assert originate == [
        ("Action", "Originate"),
        ("Channel", "Local/1001@agents"),
        ("Exten", "1002"),
        ("Context", "agents"),
        ("Priority", "1"),
        ("CallerID", '"1001" <1001>'),
        ("Async", "true"),
        ("Timeout", "30000"),
        ("ChannelId", call_id),
        ("Variable", "CCB_TENANT=t1"),
        ("Variable", "CCB_AGENT=1001"),
    ]

    def answered() -> CallRecord | None:
        rec = rig.calls.get(call_id)
        return rec if rec is not None and rec.state is CallState.CONNECTED else None

    rec = await rig.until(answered, "the other agent to answer")
    assert rec.direction == "internal"
    assert call_params(rec)["agent_no"] == "1001"
    assert (rec.caller, rec.callee) == ("1001", "1002")


async def test_attended_transfer_out_consults_but_never_leaves_two_trunks_together(
    rig: Rig,
) -> None:
    rec = await rig.connected_call()
    agent = rig.calls.live_channels(rec.call_id)[1]
    mark = rig.mark()
    body = {"number": "020-8765-4321", "mode": "attended"}
    resp = await rig.post("1000/call/transfer", rig.agent["1000"], body)
    assert resp.status_code == 200, resp.text
    assert rig.actions(mark) == [
        [
            ("Action", "Atxfer"),
            ("Channel", agent),
            ("Exten", "02087654321"),
            ("Context", "ccbridge-outbound"),
        ]
    ]
    intent = rig.record(rec.call_id).transfer_intent
    assert intent is not None
    assert intent.to_number == "+862087654321"
    mark = rig.mark()
    done = await rig.post("1000/call/transfer/complete", rig.agent["1000"])
    assert done.status_code == 403
    assert done.json()["reason"] == "NO_TRANSIT"
    assert rig.actions(mark) == []
    assert (await rig.post("1000/call/transfer/cancel", rig.agent["1000"])).status_code == 200
    assert call_params(rig.record(rec.call_id)) == INBOUND_FOUR


async def test_whisper_rings_the_supervisors_phone_into_chanspy_on_the_agents_channel(
    rig: Rig,
) -> None:
    rec = await rig.connected_call("1000")
    agent_channel = next(
        c for c in rig.calls.live_channels(rec.call_id) if c.startswith("Local/1000@")
    )
    supervisor = await rig.http.post(
        "/api/v1/auth/token",
        json={"subject": "lead", "role": "supervisor", "agent_no": "1002"},
        headers=rig.admin,
    )
    who = auth(supervisor.json()["access_token"])
    since = rig.mark()
    resp = await rig.post("1000/spy", who, {"mode": "whisper", "supervisor_agent_no": "1002"})
    assert resp.status_code == 202, resp.text
    assert resp.json()["call_id"] == rec.call_id
    [originate] = rig.actions(since, "Originate")
    assert originate == [
        ("Action", "Originate"),
        ("Channel", f"Local/1002@{AGENTS_CONTEXT}"),
        ("Application", "ChanSpy"),
        ("Data", f"{agent_channel},qw"),
        ("CallerID", '"Spy 1000" <1000>'),
        ("Async", "true"),
        ("Timeout", "30000"),
    ]
    spied = await rig.until(lambda: rig.pbx.ami.call_control.spied, "ChanSpy on the fake PBX")
    [(spy_channel, target, options)] = spied
    assert (target, options) == (agent_channel, "qw")
    assert spy_channel.startswith(f"Local/1002@{AGENTS_CONTEXT}-")
    resp = await rig.post("1001/spy", who, {"mode": "barge", "supervisor_agent_no": "1002"})
    assert resp.status_code == 409, resp.text  # 1001 has no call
    assert resp.json()["reason"] == "NO_CURRENT_CALL"
