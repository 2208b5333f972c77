"""Agents, skill groups, leases and seats through the real app over SQLite and PostgreSQL.

Each contract rule is shown allowed and refused with the error a user sees; every endpoint is
called with another tenant's credential and must answer exactly like a missing object (404).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import FloorApi, create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.journal import SqlJournal
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.domain.access import Role
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService
from ccbridge.services.event_hub import EventHub
from ccbridge.services.tenants import AccessService
from tests.fakes.seats import FakeClock, RecordingQueues
from tests.support.api_rig import auth, claim_phones, create_tenants, seat_api
from tests.support.floor_rig import LiveCalls, RecordingSpyPbx, committed_to, floor_api

SECRET = "integration-test-secret-0123456789abcdef"


@dataclass
class World:
    client: httpx.AsyncClient
    clock: FakeClock
    queues: RecordingQueues
    platform: dict[str, str]
    t1: dict[str, str]
    t2: dict[str, str]
    floor: FloorApi

    async def post(self, path: str, body: Any = None, who: dict[str, str] | None = None) -> Any:
        return await self.client.post(path, json=body, headers=who or self.t1)


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))  # JWTs expire in real time
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    queues = RecordingQueues()
    calendar = CalendarService(CalendarRepository(sessions), audit, clock.now)
    seats = seat_api(sessions, clock, audit, calendar, queues)
    hub, listeners = EventHub(), []
    journal = SqlJournal(sessions, on_commit=committed_to(hub, listeners))
    floor = floor_api(
        sessions, clock, seats.seats, journal, hub, LiveCalls(), RecordingSpyPbx(), listeners
    )
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        seat_api=seats,
        floor_api=floor,
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    platform = auth(platform_key)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        admins = await create_tenants(client, platform, {"t1": {}, "t2": {}})
        for tid in admins:
            lease = {"seats": {"inbound": 10}, "valid_from": "2026-01-01"}
            resp = await client.post(f"/api/v1/tenants/{tid}/leases", json=lease, headers=platform)
            assert resp.status_code == 201, resp.text
            resp = await client.post(
                f"/api/v1/tenants/{tid}/skill-groups", json={"name": "sales"}, headers=admins[tid]
            )
            assert resp.status_code == 201, resp.text
        w = World(client, clock, queues, platform, admins["t1"], admins["t2"], floor)
        await claim_phones(client, w.t1, "t1", *(f"{1000 + i}" for i in range(12)), "2000", "3000")
        for i in range(12):
            resp = await w.post("/api/v1/tenants/t1/agents", _agent(f"{1000 + i}"))
            assert resp.status_code == 201, resp.text
        yield w


def _agent(
    no: str, certified: bool = True, skills: list[str] | None = None, phone: str | None = None
) -> dict[str, Any]:
    return {
        "agent_no": no,
        "name": f"坐席 {no}",
        "certified": certified,
        "interface": f"PJSIP/{phone or no}",
        "skills": [{"skill_group": s, "level": 8} for s in (skills or ["sales"])],
    }


def _refusal(resp: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert body.get("reason") == reason, body
    assert body["detail"]
    return body


async def test_sign_in_joins_the_queue_and_the_eleventh_is_refused(world: World) -> None:
    for i in range(10):
        resp = await world.post(f"/api/v1/tenants/t1/seats/{1000 + i}/sign-in")
        assert resp.status_code == 200, resp.text
        assert resp.json()["state"] == "ready"
    assert ("add", "t1-sales", "PJSIP/1000", "False", "") in world.queues.calls
    resp = await world.post("/api/v1/tenants/t1/seats/1010/sign-in")
    body = _refusal(resp, 409, "SEAT_LIMIT_REACHED")
    assert "All 10 leased" in body["detail"]
    # t2's lease is its own: t2 can still sign in (on a phone of its own, after creating agents)
    await claim_phones(world.client, world.t2, "t2", "t2-1000")
    for no in ("1000", "1001"):
        resp = await world.post("/api/v1/tenants/t2/agents", _agent(no, phone="t2-1000"), world.t2)
        assert resp.status_code == 201, resp.text
    resp = await world.post("/api/v1/tenants/t2/seats/1000/sign-in", who=world.t2)
    assert resp.status_code == 200, resp.text
    assert resp.json()["interface"] == "PJSIP/t2-1000"
    resp = await world.post("/api/v1/tenants/t2/seats/1001/sign-in", who=world.t2)
    _refusal(resp, 409, "DEVICE_IN_USE")  # PJSIP/t2-1000 carries 1000's seat


async def test_uncertified_and_double_sign_in_are_refused(world: World) -> None:
    await world.post("/api/v1/tenants/t1/agents", _agent("2000", certified=False))
    _refusal(await world.post("/api/v1/tenants/t1/seats/2000/sign-in"), 409, "AGENT_NOT_CERTIFIED")
    await world.post("/api/v1/tenants/t1/seats/1000/sign-in")
    _refusal(await world.post("/api/v1/tenants/t1/seats/1000/sign-in"), 409, "ALREADY_SIGNED_IN")


async def test_not_ready_break_cap_and_live_view(world: World) -> None:
    for i in range(4):
        await world.post(f"/api/v1/tenants/t1/seats/{1000 + i}/sign-in")
    world.queues.calls.clear()
    resp = await world.post(
        "/api/v1/tenants/t1/seats/1000/state", {"action": "not_ready", "reason": "培训"}
    )
    assert resp.json()["state"] == "not_ready"
    assert world.queues.calls == [("pause", "t1-sales", "PJSIP/1000", "True", "培训")]
    for i in (1, 2, 3):
        resp = await world.post(f"/api/v1/tenants/t1/seats/{1000 + i}/state", {"action": "break"})
        if i < 3:
            assert resp.json()["state"] == "break"
    await world.post("/api/v1/tenants/t1/seats/1000/state", {"action": "ready"})
    resp = await world.post("/api/v1/tenants/t1/seats/1000/state", {"action": "break"})
    _refusal(resp, 409, "FLOOR_BREAK_CAP")
    live = await world.client.get("/api/v1/seats/live", headers=world.t1)
    states = {s["agent_no"]: s["state"] for s in live.json()}
    assert states == {"1000": "ready", "1001": "break", "1002": "break", "1003": "break"}
    live2 = await world.client.get("/api/v1/seats/live", headers=world.t2)
    assert live2.json() == []


async def test_not_ready_over_15_minutes_alerts_the_supervisor(world: World) -> None:
    await world.post("/api/v1/tenants/t1/seats/1000/sign-in")
    await world.post("/api/v1/tenants/t1/seats/1000/state", {"action": "not_ready", "reason": "x"})
    world.clock.advance(minutes=15)
    assert await world.floor.alerts.evaluate() == 0
    world.clock.advance(minutes=1)
    assert await world.floor.alerts.evaluate() == 1
    assert await world.floor.alerts.evaluate() == 0  # once per episode
    resp = await world.client.get("/api/v1/seats/alerts", headers=world.t1)
    assert [(a["agent_no"], a["code"]) for a in resp.json()] == [("1000", "NOT_READY_TOO_LONG")]
    other = await world.client.get("/api/v1/seats/alerts", headers=world.t2)
    assert other.json() == []


async def test_an_agent_token_may_change_only_its_own_seat(world: World) -> None:
    resp = await world.post(
        "/api/v1/auth/token", {"subject": "zhang", "role": "agent", "agent_no": "1000"}
    )
    assert resp.status_code in (200, 201), resp.text
    token = auth(resp.json()["access_token"])
    assert (await world.post("/api/v1/tenants/t1/seats/1000/sign-in", who=token)).status_code == 200
    resp = await world.post("/api/v1/tenants/t1/seats/1001/sign-in", who=token)
    assert resp.status_code == 403
    resp = await world.post("/api/v1/tenants/t2/seats/1000/sign-in", who=token)
    assert resp.status_code == 404


async def test_lease_change_notice_and_platform_override(world: World) -> None:
    soon = (world.clock.now() + timedelta(days=1)).date().isoformat()
    change = {"kind": "seat_count", "effective_on": soon, "seats": {"inbound": 20}}
    _refusal(await world.post("/api/v1/tenants/t1/lease-changes", change), 409, "NOTICE_TOO_SHORT")
    override = {**change, "override_notice": True}
    assert (await world.post("/api/v1/tenants/t1/lease-changes", override)).status_code == 403
    resp = await world.post("/api/v1/tenants/t1/lease-changes", override, world.platform)
    assert resp.status_code == 201, resp.text
    later = (world.clock.now() + timedelta(days=14)).date().isoformat()
    group_change = {"kind": "skill_group", "effective_on": later}
    assert (await world.post("/api/v1/tenants/t1/lease-changes", group_change)).status_code == 201


async def test_utilisation_reports_peak_signed_in_seats(world: World) -> None:
    for i in range(3):
        await world.post(f"/api/v1/tenants/t1/seats/{1000 + i}/sign-in")
    world.clock.advance(minutes=30)
    await world.post("/api/v1/tenants/t1/seats/1000/sign-out")
    world.clock.advance(minutes=30)
    now = world.clock.now()
    resp = await world.client.get(
        "/api/v1/tenants/t1/utilisation",
        params={"year": now.year, "month": now.month},
        headers=world.t1,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["month_seats_used"]["inbound"] == 3
    assert max(h["peak"] for h in body["hours"] if h["kind"] == "inbound") == 3
    assert {h["leased"] for h in body["hours"] if h["kind"] == "inbound"} == {10}


async def test_agent_and_group_rules(world: World) -> None:
    resp = await world.post("/api/v1/tenants/t1/agents", _agent("1000"))
    assert resp.status_code == 409
    resp = await world.post("/api/v1/tenants/t1/agents", _agent("3000", skills=["nope"]))
    assert resp.status_code == 409
    assert "nope" in resp.json()["detail"]
    bad = {**_agent("3001"), "name": "evil\r\nAction: Originate"}
    resp = await world.post("/api/v1/tenants/t1/agents", bad)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "body.name"
    resp = await world.post("/api/v1/tenants/t1/skill-groups", {"name": "a-b"})
    assert resp.status_code == 422  # "-" would make queue names ambiguous
    await world.post("/api/v1/tenants/t1/seats/1000/sign-in")
    resp = await world.client.delete("/api/v1/tenants/t1/agents/1000", headers=world.t1)
    assert resp.status_code == 409
    resp = await world.client.get("/api/v1/audit", headers=world.t1)
    actions = {e["action"] for e in resp.json()["items"]}
    assert {"agent.create", "skill_group.create", "seat.sign_in"} <= actions


ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/tenants/{t}/agents", None),
    ("POST", "/api/v1/tenants/{t}/agents", _agent("9000")),
    ("GET", "/api/v1/tenants/{t}/agents/1000", None),
    ("PUT", "/api/v1/tenants/{t}/agents/1000", _agent("1000")),
    ("DELETE", "/api/v1/tenants/{t}/agents/1000", None),
    ("GET", "/api/v1/tenants/{t}/endpoints", None),
    ("POST", "/api/v1/tenants/{t}/endpoints", {"name": "9001"}),
    ("GET", "/api/v1/tenants/{t}/endpoints/nosuch", None),
    ("DELETE", "/api/v1/tenants/{t}/endpoints/nosuch", None),
    ("GET", "/api/v1/tenants/{t}/skill-groups", None),
    ("POST", "/api/v1/tenants/{t}/skill-groups", {"name": "x"}),
    ("GET", "/api/v1/tenants/{t}/skill-groups/sales", None),
    ("DELETE", "/api/v1/tenants/{t}/skill-groups/sales", None),
    ("GET", "/api/v1/tenants/{t}/leases", None),
    ("POST", "/api/v1/tenants/{t}/leases", {"seats": {"inbound": 1}, "valid_from": "2026-01-01"}),
    ("GET", "/api/v1/tenants/{t}/leases/x", None),
    ("POST", "/api/v1/tenants/{t}/lease-changes", {"kind": "ivr", "effective_on": "2030-01-01"}),
    ("GET", "/api/v1/tenants/{t}/utilisation?year=2026&month=11", None),
    ("POST", "/api/v1/tenants/{t}/seats/1000/sign-in", None),
    ("POST", "/api/v1/tenants/{t}/seats/1000/sign-out", None),
    ("POST", "/api/v1/tenants/{t}/seats/1000/state", {"action": "ready"}),
    ("GET", "/api/v1/seats/live?tenant={t}", None),
    ("GET", "/api/v1/tenants/{t}/dial-policy", None),
    ("PUT", "/api/v1/tenants/{t}/dial-policy", {"allow": ["0"], "deny": []}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_another_tenants_objects_answer_404_like_missing_ones(
    world: World, method: str, path: str, body: Any
) -> None:
    foreign = await world.client.request(method, path.format(t="t1"), json=body, headers=world.t2)
    missing = await world.client.request(
        method, path.format(t="nosuch"), json=body, headers=world.platform
    )
    assert foreign.status_code == 404, foreign.text
    assert foreign.headers["content-type"] == "application/problem+json"
    if missing.status_code == 404:  # same shape as a genuinely missing tenant's object
        assert set(foreign.json()) == set(missing.json())
    # and nothing happened to t1
    agent = await world.client.get("/api/v1/tenants/t1/agents/1000", headers=world.t1)
    assert agent.status_code == 200


async def test_lease_dates_validate(world: World) -> None:
    bad = {"seats": {"inbound": 5}, "valid_from": "2026-12-01", "valid_until": "2026-11-01"}
    resp = await world.post("/api/v1/tenants/t1/leases", bad, world.platform)
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == "body.valid_until"
    listing = await world.client.get("/api/v1/tenants/t1/leases", headers=world.t1)
    assert len(listing.json()) == 1


async def test_dial_policy_defaults_then_only_the_platform_admin_changes_it(world: World) -> None:
    path = "/api/v1/tenants/t1/dial-policy"
    resp = await world.client.get(path, headers=world.t1)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "allow": ["0", "1", "400", "800"],
        "deny": ["00", "+", "160", "168"],
        "region": "CN",
        "caller_id": None,
        "limits": {
            "deny_international": True,
            "deny_premium_rate": True,
            "per_seat_per_hour": 60,
            "per_tenant_per_hour": None,
            "concurrent_per_seat": 1,
            "concurrent_per_tenant": None,
            "business_hours": None,
        },
        "updated_at": None,
        "updated_by": None,
    }
    wider = {"allow": ["0", "1", "0044"], "deny": ["00"]}
    resp = await world.client.put(path, json=wider, headers=world.t1)
    assert resp.status_code == 403
    resp = await world.client.put(path, json={"allow": ["0", "9x"]}, headers=world.platform)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "body.allow[1]"
    resp = await world.client.put(path, json=wider, headers=world.platform)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["allow"], resp.json()["deny"]) == (["0", "1", "0044"], ["00"])
    assert resp.json()["updated_by"].startswith("key:")
    assert (await world.client.get(path, headers=world.t1)).json()["allow"] == ["0", "1", "0044"]
    assert (await world.client.get("/api/v1/tenants/t2/dial-policy", headers=world.t2)).json()[
        "updated_at"
    ] is None
    audit = (await world.client.get("/api/v1/audit", headers=world.t1)).json()["items"]
    (entry,) = [e for e in audit if e["action"] == "dial_policy.update"]
    assert entry["detail"]["allow"] == ["0", "1", "0044"]
    assert entry["detail"]["before"]["deny"] == ["00", "+", "160", "168"]


async def test_dial_policy_limits_round_trip_and_bad_values_name_their_field(
    world: World,
) -> None:
    path = "/api/v1/tenants/t1/dial-policy"
    limits = {
        "deny_international": False,
        "deny_premium_rate": True,
        "per_seat_per_hour": 5,
        "per_tenant_per_hour": 100,
        "concurrent_per_seat": 1,
        "concurrent_per_tenant": 20,
        "business_hours": {"start": "09:00:00", "end": "18:30:00", "working_days_only": True},
    }
    body = {"allow": ["0", "1"], "deny": ["160"], "region": "HK", "limits": limits}
    resp = await world.client.put(path, json=body, headers=world.platform)
    assert resp.status_code == 200, resp.text
    got = (await world.client.get(path, headers=world.t1)).json()
    assert (got["region"], got["limits"]) == ("HK", limits)
    bad_hours = {**limits, "business_hours": {"start": "18:00:00", "end": "09:00:00"}}
    for bad, field in [
        ({**body, "region": "XX"}, "body.region"),
        ({**body, "limits": {**limits, "per_seat_per_hour": 0}}, "body.limits.per_seat_per_hour"),
        ({**body, "limits": bad_hours}, "body.limits.business_hours"),
    ]:
        resp = await world.client.put(path, json=bad, headers=world.platform)
        assert resp.status_code == 422, resp.text
        assert resp.json()["errors"][0]["field"] == field
