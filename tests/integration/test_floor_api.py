"""The floor through the real app over SQLite and PostgreSQL: per-tenant floor rules, alerts
as journal events (once per episode, cleared, surviving a restart), the wallboard on a
simulated call (JSON and SSE), listen/whisper/barge and its refusals; every endpoint is tried
with another tenant's credential (404) and an agent's (403)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ccbridge.api.app import FloorApi, create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.journal import SqlJournal
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.db.repositories.floor import SqlFloorAlertStore
from ccbridge.db.repositories.reports import SqlReportSettingsStore, SqlReportSource
from ccbridge.domain.access import Role
from ccbridge.domain.calendar import local_date, tenant_zone
from ccbridge.domain.calls.model import CallRecord, CallSegment, CallState
from ccbridge.domain.calls.spy import SpyMode
from ccbridge.domain.journal.types import StoredEvent
from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import Dimension, ReportKind
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService, TenantZoneReader
from ccbridge.services.event_hub import EventHub
from ccbridge.services.floor_alerts import FloorAlertService
from ccbridge.services.reports import ReportService
from ccbridge.services.seats import SeatService
from ccbridge.services.tenants import AccessService
from tests.fakes.seats import FakeClock, RecordingQueues
from tests.support.api_rig import auth, claim_phones, create_tenants, seat_api
from tests.support.call_writes import JournalledCalls
from tests.support.event_rig import serve
from tests.support.floor_rig import LiveCalls, RecordingSpyPbx, committed_to, floor_api

SECRET = "integration-test-secret-0123456789abcdef"
T1 = "/api/v1/tenants/t1"


@dataclass
class World:
    client: httpx.AsyncClient
    app: Any
    clock: FakeClock
    sessions: async_sessionmaker[AsyncSession]
    seats: SeatService
    journal: SqlJournal
    hub: EventHub
    listeners: list[Callable[[Sequence[StoredEvent]], None]]
    live: LiveCalls
    pbx: RecordingSpyPbx
    floor: FloorApi
    calls: CallRepository
    platform: dict[str, str]
    t1: dict[str, str]
    t2: dict[str, str]
    supervisor: dict[str, str]
    agent: dict[str, str]

    async def post(self, path: str, body: Any = None, who: dict[str, str] | None = None) -> Any:
        return await self.client.post(path, json=body, headers=who or self.t1)

    async def put(self, path: str, body: Any, who: dict[str, str] | None = None) -> Any:
        return await self.client.put(path, json=body, headers=who or self.t1)

    async def get(self, path: str, who: dict[str, str] | None = None) -> Any:
        return await self.client.get(path, headers=who or self.t1)

    async def state(self, agent_no: str, action: str, tenant: str = "t1") -> None:
        who = self.t1 if tenant == "t1" else self.t2
        path = f"/api/v1/tenants/{tenant}/seats/{agent_no}/state"
        resp = await self.post(path, {"action": action, "reason": "x"}, who)
        assert resp.status_code == 200, resp.text

    async def sign_in(self, agent_no: str, tenant: str = "t1") -> None:
        who = self.t1 if tenant == "t1" else self.t2
        resp = await self.post(f"/api/v1/tenants/{tenant}/seats/{agent_no}/sign-in", None, who)
        assert resp.status_code == 200, resp.text

    async def floor_events(self, tenant: str = "t1") -> list[StoredEvent]:
        events = await self.journal.list_after(tenant, 0, 1000)
        return [e for e in events if e.type.startswith("floor.")]

    def restarted(self) -> FloorApi:
        """Fresh floor services over the same database (a new process)."""
        return floor_api(
            self.sessions, self.clock, self.seats, self.journal, self.hub, self.live, self.pbx, []
        )

    def reports(self) -> ReportService:
        """The reports the wallboard must agree with."""
        audit = AuditRecorder(lambda: SqlAccessUnitOfWork(self.sessions), self.clock.now)
        return ReportService(
            SqlReportSource(self.sessions),
            SqlReportSettingsStore(self.sessions),
            TenantZoneReader(lambda: SqlAccessUnitOfWork(self.sessions)),
            audit,
            self.clock.now,
        )

    async def audit_actions(self) -> list[str]:
        async with SqlAccessUnitOfWork(self.sessions) as uow:
            return [e.action for e in await uow.audit.list(tenant_id="t1", limit=200)]


def _agent(no: str, skills: list[str], phone: str | None = None) -> dict[str, Any]:
    return {
        "agent_no": no,
        "name": f"坐席 {no}",
        "certified": True,
        "interface": f"PJSIP/{phone or no}",
        "skills": [{"skill_group": s, "level": 8} for s in skills],
    }


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))  # JWTs expire in real time
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    calendar = CalendarService(CalendarRepository(sessions), audit, clock.now)
    seats = seat_api(sessions, clock, audit, calendar, RecordingQueues())
    hub = EventHub()
    listeners: list[Callable[[Sequence[StoredEvent]], None]] = []
    journal = SqlJournal(sessions, on_commit=committed_to(hub, listeners))
    live, pbx = LiveCalls(), RecordingSpyPbx()
    floor = floor_api(sessions, clock, seats.seats, journal, hub, live, pbx, listeners)
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
        groups = {"t1": ["sales", "support"], "t2": ["sales"]}
        for tid, admin in admins.items():
            lease = {"seats": {"inbound": 10}, "valid_from": "2026-01-01"}
            resp = await client.post(f"/api/v1/tenants/{tid}/leases", json=lease, headers=platform)
            assert resp.status_code == 201, resp.text
            for name in groups[tid]:
                resp = await client.post(
                    f"/api/v1/tenants/{tid}/skill-groups", json={"name": name}, headers=admin
                )
                assert resp.status_code == 201, resp.text
        await claim_phones(client, admins["t1"], "t1", "1000", "1001", "1002", "1009")
        await claim_phones(client, admins["t2"], "t2", "2000")
        t1_agents = [
            _agent("1000", ["sales"]),
            _agent("1001", ["sales", "support"]),
            _agent("1002", ["support"]),
            _agent("1009", ["sales"]),
        ]
        for body in t1_agents:
            resp = await client.post(f"{T1}/agents", json=body, headers=admins["t1"])
            assert resp.status_code == 201, resp.text
        resp = await client.post(
            "/api/v1/tenants/t2/agents", json=_agent("2000", ["sales"]), headers=admins["t2"]
        )
        assert resp.status_code == 201, resp.text
        tokens = {}
        for role, no in (("supervisor", "1009"), ("agent", "1000")):
            resp = await client.post(
                "/api/v1/auth/token",
                json={"subject": f"{role}-{no}", "role": role, "agent_no": no},
                headers=admins["t1"],
            )
            assert resp.status_code in (200, 201), resp.text
            tokens[role] = auth(resp.json()["access_token"])
        yield World(
            client,
            app,
            clock,
            sessions,
            seats.seats,
            journal,
            hub,
            listeners,
            live,
            pbx,
            floor,
            JournalledCalls(engine, journal),
            platform,
            admins["t1"],
            admins["t2"],
            tokens["supervisor"],
            tokens["agent"],
        )


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    return body


def _fields(resp: httpx.Response) -> list[str]:
    return [e["field"] for e in _problem(resp, 422).get("errors") or []]


BREAK_60 = {"rules": {"break_too_long": {"enabled": True, "threshold": 60, "severity": "critical"}}}


# ------------------------------------------------------------------ floor rules


async def test_floor_rules_are_per_tenant_validated_and_audited(world: World) -> None:
    resp = await world.get(f"{T1}/floor-rules", world.supervisor)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["customised"] is False
    assert body["rules"]["break_too_long"] == {
        "enabled": True,
        "threshold": 600,
        "severity": "warning",
        "unit": "seconds",
    }
    resp = await world.put(f"{T1}/floor-rules", {**BREAK_60, "amber_band_pct": 5})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["rules"]["break_too_long"]["threshold"] == 60
    assert body["rules"]["not_ready_too_long"]["threshold"] == 900  # kept the default
    assert (body["customised"], body["amber_band_pct"]) == (True, 5)
    assert body["updated_by"].startswith("key:")
    other = (await world.get("/api/v1/tenants/t2/floor-rules", world.t2)).json()
    assert other["rules"]["break_too_long"]["threshold"] == 600
    assert "floor_rules.update" in await world.audit_actions()

    bad_threshold = {"rules": {"break_too_long": {**BREAK_60["rules"]["break_too_long"]}}}
    bad_threshold["rules"]["break_too_long"]["threshold"] = 0
    assert _fields(await world.put(f"{T1}/floor-rules", bad_threshold)) == [
        "body.rules.break_too_long.threshold"
    ]
    unknown = {"rules": {"lunch_too_long": BREAK_60["rules"]["break_too_long"]}}
    assert _fields(await world.put(f"{T1}/floor-rules", unknown)) == ["body.rules.lunch_too_long"]
    severity = {"rules": {"break_too_long": {"enabled": True, "threshold": 5, "severity": "loud"}}}
    assert _fields(await world.put(f"{T1}/floor-rules", severity)) == [
        "body.rules.break_too_long.severity"
    ]
    assert _fields(await world.put(f"{T1}/floor-rules", {"amber_band_pct": 101})) == [
        "body.amber_band_pct"
    ]

    _problem(await world.put(f"{T1}/floor-rules", BREAK_60, world.supervisor), 403)
    _problem(await world.get(f"{T1}/floor-rules", world.agent), 403)
    _problem(await world.get(f"{T1}/floor-rules", world.t2), 404)
    _problem(await world.put(f"{T1}/floor-rules", BREAK_60, world.t2), 404)
    resp = await world.put(f"{T1}/floor-rules", BREAK_60, world.platform)
    assert resp.status_code == 200, resp.text


# ------------------------------------------------------------------ alerts


async def test_alerts_are_journal_events_raised_once_and_cleared(world: World) -> None:
    assert (await world.put(f"{T1}/floor-rules", BREAK_60)).status_code == 200
    await world.sign_in("1000")
    await world.sign_in("2000", "t2")
    await world.state("1000", "break")
    await world.state("2000", "break", "t2")
    world.clock.advance(seconds=60)
    assert await world.floor.alerts.evaluate() == 0
    world.clock.advance(seconds=1)
    assert await world.floor.alerts.evaluate() == 1  # t1's 60 s, not t2's 600 s
    assert await world.floor.alerts.evaluate() == 0
    world.clock.advance(seconds=30)
    assert await world.floor.alerts.evaluate() == 0
    [raised] = await world.floor_events()
    assert raised.type == "floor.alert"
    data = raised.data
    assert {k: data[k] for k in ("rule", "severity", "agent_no", "skill_group", "threshold")} == {
        "rule": "break_too_long",
        "severity": "critical",
        "agent_no": "1000",
        "skill_group": None,
        "threshold": 60,
    }
    assert data["value"] == 61
    assert data["message"] == "Agent 1000 on break (小休) for 1 min, over the 1 min limit."
    assert await world.floor_events("t2") == []
    board = (await world.get(f"{T1}/wallboard", world.supervisor)).json()
    assert [a["id"] for a in board["alerts"]] == [data["id"]]

    await world.state("1000", "ready")
    assert await world.floor.alerts.evaluate() == 0
    raised_again, cleared = await world.floor_events()
    assert raised_again.id == raised.id
    assert cleared.type == "floor.alert_cleared"
    assert cleared.data["id"] == data["id"]
    assert cleared.data["cleared_at"]
    assert (await world.get(f"{T1}/wallboard", world.supervisor)).json()["alerts"] == []
    listed = (await world.get(f"{T1}/seats/alerts", world.supervisor)).json()
    assert [(a["code"], a["agent_no"], a["id"]) for a in listed] == [
        ("BREAK_TOO_LONG", "1000", data["id"])
    ]
    assert listed[0]["cleared_at"] is not None
    legacy = (await world.client.get("/api/v1/seats/alerts", headers=world.t1)).json()
    assert legacy == listed
    assert (await world.get("/api/v1/tenants/t2/seats/alerts", world.t2)).json() == []
    _problem(await world.get(f"{T1}/seats/alerts", world.t2), 404)


async def test_a_restart_neither_repeats_nor_loses_an_alert(world: World) -> None:
    await world.sign_in("1000")
    await world.state("1000", "not_ready")
    world.clock.advance(minutes=16)
    assert await world.floor.alerts.evaluate() == 1
    after_restart = world.restarted()
    assert await after_restart.alerts.evaluate() == 0  # still open: not raised again
    assert [e.type for e in await world.floor_events()] == ["floor.alert"]
    await world.state("1000", "ready")  # the episode ended while "down"
    assert await world.restarted().alerts.evaluate() == 0
    assert [e.type for e in await world.floor_events()] == ["floor.alert", "floor.alert_cleared"]


async def test_break_count_and_too_many_on_break(world: World) -> None:
    await world.put(
        f"{T1}/floor-rules",
        {
            "rules": {
                "too_many_on_break": {"enabled": True, "threshold": 1, "severity": "warning"},
                "break_count_exceeded": {"enabled": True, "threshold": 1, "severity": "warning"},
            }
        },
    )
    for no in ("1000", "1001"):
        await world.sign_in(no)
    await world.state("1000", "break")
    await world.state("1000", "ready")
    await world.state("1000", "break")
    await world.state("1001", "break")
    assert await world.floor.alerts.evaluate() == 2
    found = {
        (e.data["rule"], e.data["agent_no"], e.data["value"]) for e in await world.floor_events()
    }
    assert found == {("break_count_exceeded", "1000", 2), ("too_many_on_break", None, 2)}
    await world.state("1001", "ready")
    assert await world.floor.alerts.evaluate() == 0
    cleared = [e.data["rule"] for e in await world.floor_events() if e.type.endswith("cleared")]
    assert cleared == ["too_many_on_break"]  # 1000 still has 2 breaks today


# ------------------------------------------------------------------ wallboard


def _call(cid: str, at: datetime, wait: int, answered: bool, queue: str = "t1-sales") -> CallRecord:
    queued = at
    answer = queued + timedelta(seconds=wait) if answered else None
    end = queued + timedelta(seconds=wait + (60 if answered else 0))
    segments = (
        (CallSegment(1, "1000", "PJSIP/1000", queue, "138", "400", "queue", answer, end),)
        if answer
        else ()
    )
    return CallRecord(
        call_id=cid,
        started_at=queued - timedelta(seconds=2),
        state=CallState.ENDED if answered else CallState.ABANDONED,
        tenant="t1",
        caller="13800138000",
        callee="4008001234",
        skill_group=queue,
        agent_no="1000" if answered else None,
        agent_interface="PJSIP/1000" if answered else None,
        queued_at=queued,
        answered_at=answer,
        ended_at=end,
        segments=segments,
    )


def _waiting(cid: str, now: datetime, waited: int, queue: str = "t1-sales") -> CallRecord:
    return CallRecord(
        call_id=cid,
        started_at=now - timedelta(seconds=waited + 3),
        state=CallState.QUEUED,
        tenant="t1",
        skill_group=queue,
        queued_at=now - timedelta(seconds=waited),
    )


async def test_wallboard_figures_on_a_simulated_call(world: World) -> None:
    now = world.clock.now()
    midnight = datetime.combine(local_date(now), time(), tenant_zone())
    earlier = max(now - timedelta(minutes=30), midnight + timedelta(seconds=5))
    await world.calls.upsert_many(
        [
            _call("c1", earlier, wait=10, answered=True),  # within T = 30 s
            _call("c2", earlier + timedelta(minutes=1), wait=20, answered=False),  # abandoned
            _call("c3", earlier + timedelta(minutes=2), wait=60, answered=True),  # too slow
            _call("c4", earlier + timedelta(minutes=3), wait=2, answered=False),  # short abandon
        ]
    )
    await world.sign_in("1000")
    await world.sign_in("1001")
    await world.state("1001", "not_ready")
    world.live.calls.append(_waiting("w1", now, 41))
    live = replace_answered(_waiting("a1", now, 5), "PJSIP/1000", now)
    world.live.calls.append(live)
    await world.seats.call_event("PJSIP/1000", started=True)

    resp = await world.get(f"{T1}/wallboard", world.supervisor)
    assert resp.status_code == 200, resp.text
    board = resp.json()
    assert board["tenant_id"] == "t1"
    sales, support = board["skill_groups"]
    assert (sales["name"], support["name"]) == ("sales", "support")
    assert (sales["calls_waiting"], sales["longest_wait_seconds"]) == (1, 41)
    assert (sales["offered_today"], sales["answered_today"], sales["abandoned_today"]) == (4, 2, 1)
    assert sales["agents"] == {"ready": 0, "not_ready": 1, "break": 0, "on_call": 1, "wrap_up": 0}
    assert support["agents"] == {"ready": 0, "not_ready": 1, "break": 0, "on_call": 0, "wrap_up": 0}
    # the reports' definition: answered within T ÷ (offered − short abandons) = 1 / 3
    assert sales["service_level"] == {
        "value_pct": 33.3,
        "target_pct": 80.0,
        "threshold_seconds": 30,
        "status": "red",
    }
    assert support["service_level"]["status"] == "none"
    assert support["service_level"]["value_pct"] is None
    seats = {s["agent_no"]: s for s in board["seats"]}
    assert seats["1000"]["state"] == "on_call"
    assert seats["1000"]["call_id"] == "a1"
    assert seats["1001"]["skill_groups"] == ["sales", "support"]
    assert seats["1001"]["name"] == "坐席 1001"
    run = await world.reports().run(
        "t1",
        ReportKind.SERVICE_LEVEL,
        local_date(now),
        local_date(now),
        Granularity.DAY,
        Dimension.SKILL_GROUP,
    )
    [row] = [r for r in run.table.rows if r["group"] == "t1-sales"]
    assert sales["service_level"]["value_pct"] == round(float(row["service_level"] or 0), 1)
    assert (row["offered"], row["answered"], row["abandoned"]) == (4, 2, 1)

    waiting_rule = {"enabled": True, "threshold": 0, "severity": "warning"}
    await world.put(f"{T1}/floor-rules", {"rules": {"calls_waiting_over": waiting_rule}})
    assert await world.floor.alerts.evaluate() == 1  # 4 offered: too few to judge the level
    await world.put(f"{T1}/floor-rules", {"service_level_min_offered": 4})
    assert await world.floor.alerts.evaluate() == 1
    found = {(e.data["rule"], e.data["skill_group"]) for e in await world.floor_events()}
    assert found == {("calls_waiting_over", "sales"), ("service_level_under", "sales")}
    _problem(await world.get(f"{T1}/wallboard", world.agent), 403)
    _problem(await world.get(f"{T1}/wallboard", world.t2), 404)
    _problem(await world.get(f"{T1}/wallboard/stream", world.t2), 404)
    _problem(await world.get(f"{T1}/wallboard/stream", world.agent), 403)


def replace_answered(rec: CallRecord, interface: str, at: datetime) -> CallRecord:
    segment = CallSegment(1, "1000", interface, rec.skill_group, None, None, "queue", at)
    return CallRecord(
        call_id=rec.call_id,
        started_at=rec.started_at,
        state=CallState.CONNECTED,
        tenant=rec.tenant,
        skill_group=rec.skill_group,
        queued_at=rec.queued_at,
        answered_at=at,
        agent_no="1000",
        agent_interface=interface,
        segments=(segment,),
    )


async def test_the_wallboard_stream_sends_the_board_then_the_call(world: World) -> None:
    await world.sign_in("1000")
    async with serve(world.app) as url, httpx.AsyncClient(base_url=url, timeout=None) as http:
        boards: list[dict[str, Any]] = []
        async with asyncio.timeout(20):  # hang guard only: a frame comes within ~1 s
            async with http.stream(
                "GET", f"{T1}/wallboard/stream", headers=world.supervisor
            ) as resp:
                assert resp.headers["content-type"].startswith("text/event-stream")
                event = None
                async for line in resp.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    if line.startswith("data: "):
                        assert event == "wallboard"
                        boards.append(json.loads(line[6:]))
                        if len(boards) == 1:
                            world.live.calls.append(_waiting("w9", world.clock.now(), 3))
                        else:
                            break
    first, second = boards
    assert first["skill_groups"][0]["calls_waiting"] == 0
    assert second["skill_groups"][0]["calls_waiting"] == 1
    assert set(first) == {"tenant_id", "generated_at", "skill_groups", "seats", "alerts"}
    assert first["seats"] == (await world.get(f"{T1}/wallboard", world.supervisor)).json()["seats"]


# ------------------------------------------------------------------ listen / whisper / barge


async def _on_call(world: World, agent_no: str = "1000", channel: str | None = None) -> str:
    await world.sign_in(agent_no)
    now = world.clock.now()
    rec = replace_answered(_waiting(f"call-{agent_no}", now, 5), f"PJSIP/{agent_no}", now)
    world.live.calls.append(rec)
    world.live.channels[rec.call_id] = [
        "PJSIP/trunk-00000001",
        channel or f"PJSIP/{agent_no}-00000002",
    ]
    return rec.call_id


SPY = f"{T1}/seats/1000/spy"


@pytest.mark.parametrize(("mode", "options"), [("listen", "q"), ("whisper", "qw"), ("barge", "qB")])
async def test_a_supervisor_spies_from_its_own_phone(world: World, mode: str, options: str) -> None:
    call_id = await _on_call(world)
    await world.sign_in("1009")
    resp = await world.post(SPY, {"mode": mode, "supervisor_agent_no": "1009"}, world.supervisor)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {
        "tenant_id": "t1",
        "agent_no": "1000",
        "supervisor_agent_no": "1009",
        "mode": mode,
        "options": options,
        "call_id": call_id,
        "supervisor_interface": "PJSIP/1009",
    }
    assert world.pbx.sent == [
        ("PJSIP/1009", "PJSIP/1000-00000002", SpyMode(mode), '"Spy 1000" <1000>')
    ]
    assert "seat.spy" in await world.audit_actions()


async def test_spy_refusals(world: World) -> None:
    await _on_call(world)
    await world.sign_in("1001")
    body = {"mode": "listen", "supervisor_agent_no": "1009"}
    _problem(await world.post(SPY, body, world.agent), 403)  # an agent
    _problem(await world.post(SPY, body, world.platform), 403)  # not a floor role
    _problem(await world.post(SPY, body, world.t2), 404)  # another tenant
    _problem(await world.post(f"{T1}/seats/7777/spy", body, world.t1), 404)
    assert _fields(await world.post(SPY, {**body, "mode": "record"}, world.t1)) == ["body.mode"]
    same = {**body, "supervisor_agent_no": "1000"}
    assert _fields(await world.post(SPY, same, world.t1)) == ["body.supervisor_agent_no"]
    resp = await world.post(SPY, body, world.supervisor)  # 1009 is not signed in
    assert _problem(resp, 409)["reason"] == "SUPERVISOR_NOT_SIGNED_IN"
    await world.sign_in("1009")
    other = {**body, "supervisor_agent_no": "1001"}
    _problem(await world.post(SPY, other, world.supervisor), 403)  # not its own seat
    resp = await world.post(f"{T1}/seats/1001/spy", body, world.supervisor)
    assert _problem(resp, 409)["reason"] == "NO_CURRENT_CALL"
    assert world.pbx.sent == []
    assert (await world.post(SPY, body, world.t1)).status_code == 202  # the tenant admin
    assert (await world.audit_actions()).count("seat.spy.refused") >= 5


async def test_a_channel_name_that_could_add_a_chanspy_argument_is_never_sent(
    world: World,
) -> None:
    await _on_call(world, channel="PJSIP/1000-0002,B")
    await world.sign_in("1009")
    body = {"mode": "listen", "supervisor_agent_no": "1009"}
    resp = await world.post(SPY, body, world.supervisor)
    assert _problem(resp, 409)["reason"] == "NO_CURRENT_CALL"
    assert world.pbx.sent == []


async def test_one_tenant_that_cannot_be_judged_does_not_stop_the_others(world: World) -> None:
    await world.sign_in("1000")
    await world.state("1000", "not_ready")
    world.clock.advance(minutes=16)

    async def with_a_ghost() -> set[str]:
        return {"ghost", "t1"}  # no such tenant: its zone cannot be read, and it sorts first

    alerts = FloorAlertService(
        store=SqlFloorAlertStore(world.sessions, world.journal),
        rules=world.floor.rules,
        facts=world.floor.wallboard.facts,
        tenants=with_a_ghost,
        clock=world.clock,
    )
    assert await alerts.evaluate() == 1
    assert [e.data["agent_no"] for e in await world.floor_events()] == ["1000"]


async def test_a_tenant_placed_on_another_pbx_is_left_to_that_pbx_owner(world: World) -> None:
    """Its floor, open alerts included, is judged by the owner holding its calls (ADR 0033)."""
    await world.sign_in("1000")
    await world.state("1000", "not_ready")
    world.clock.advance(minutes=16)

    async def on_this_pbx() -> frozenset[str]:
        return frozenset()  # t1 lives on another PBX

    async def busy() -> set[str]:
        return {"t1"}

    def service(placed: Callable[[], Awaitable[frozenset[str]]] | None) -> FloorAlertService:
        return FloorAlertService(
            store=SqlFloorAlertStore(world.sessions, world.journal),
            rules=world.floor.rules,
            facts=world.floor.wallboard.facts,
            tenants=busy,
            clock=world.clock,
            placed=placed,
        )

    assert await service(on_this_pbx).evaluate() == 0
    assert await world.floor_events() == []
    assert await service(None).evaluate() == 1  # its own PBX's owner raises it
