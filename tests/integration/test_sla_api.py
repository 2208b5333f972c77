"""The stability SLA through the real app on SQLite and PostgreSQL: the incident log kept by the
platform admin, exclusions with who and why, the monthly figure and F2 deduction per tenant,
automatic AMI incidents, and tenant isolation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.sla import SqlFaultReportStore, SqlIncidentStore
from ccbridge.domain.access import Role
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZoneReader
from ccbridge.services.sla import AutomaticIncidents, SlaService
from ccbridge.services.tenants import AccessService
from tests.fakes.seats import FakeClock
from tests.support.api_rig import auth, create_tenants

SECRET = "integration-test-secret-0123456789abcdef"
INC = "/api/v1/sla/incidents"
# April 2026 in Shanghai: 30 days = 43,200 minutes; 2 % = 864 minutes.
APRIL = datetime(2026, 4, 1, tzinfo=UTC) - timedelta(hours=8)


@dataclass
class World:
    client: httpx.AsyncClient
    platform: dict[str, str]
    admins: dict[str, dict[str, str]]
    store: SqlIncidentStore
    clock: FakeClock


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(datetime(2026, 5, 2, tzinfo=UTC))
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    store = SqlIncidentStore(sessions)
    sla = SlaService(
        store,
        TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        audit,
        clock.now,
        SqlFaultReportStore(sessions),
    )
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        sla_api=sla,
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    platform = auth(platform_key)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        admins = await create_tenants(client, platform, {"acme": {}, "other": {}})
        yield World(client, platform, admins, store, clock)


async def _incident(w: World, minutes: float, **extra: Any) -> dict[str, Any]:
    start = APRIL + timedelta(days=3)
    body = {
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
        "cause": "trunk down",
        **extra,
    }
    resp = await w.client.post(INC, json=body, headers=w.platform)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def _month(w: World, tenant: str = "acme", bill: str = "10000") -> dict[str, Any]:
    resp = await w.client.get(
        f"/api/v1/tenants/{tenant}/sla/2026/4", params={"bill": bill}, headers=w.admins[tenant]
    )
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def test_exactly_864_minutes_is_98_percent_and_one_more_costs(world: World) -> None:
    first = await _incident(world, 864)
    month = await _month(world)
    assert (month["stability_percent"], month["tier"], month["deduction"]) == (
        "98.0000",
        "met",
        "0.00",
    )
    # 1,296 minutes (864 + 432): (1 - 1296 / 43200) × 100 = 97 % → 1 point → 1 % of 10,000.
    await world.client.patch(
        f"{INC}/{first['id']}",
        json={"ended_at": (APRIL + timedelta(days=3, minutes=1296)).isoformat()},
        headers=world.platform,
    )
    month = await _month(world)
    assert (month["stability_percent"], month["payable"], month["deduction"]) == (
        "97.0000",
        "9900.00",
        "100.00",
    )


async def test_an_exclusion_records_who_and_why_and_stops_counting(world: World) -> None:
    inc = await _incident(world, 4320)  # 90 % → 80 % paid, report owed
    month = await _month(world)
    assert (month["stability_percent"], month["tier"], month["report_required"]) == (
        "90.0000",
        "pay_80",
        True,
    )
    resp = await world.client.put(
        f"{INC}/{inc['id']}/exclusion",
        json={"reason": "planned_maintenance", "note": "割接 announced 3 days ahead"},
        headers=world.platform,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["exclusion"]["by"].startswith("key:")
    month = await _month(world)
    assert (month["stability_percent"], month["payable"]) == ("100.0000", "10000.00")
    assert month["incidents"][0]["excluded"] is True
    resp = await world.client.delete(f"{INC}/{inc['id']}/exclusion", headers=world.platform)
    assert resp.json()["excluded"] is False
    assert (await _month(world))["stability_percent"] == "90.0000"


async def test_an_incident_for_one_tenant_does_not_touch_another(world: World) -> None:
    await _incident(world, 15120, tenants=["other"])  # 65 % for other: refusable
    assert (await _month(world, "other"))["tier"] == "refusable"
    assert (await _month(world, "acme"))["stability_percent"] == "100.0000"


async def test_only_the_platform_admin_keeps_the_log_and_tenants_see_only_their_own(
    world: World,
) -> None:
    body = {"started_at": APRIL.isoformat(), "cause": "x"}
    resp = await world.client.post(INC, json=body, headers=world.admins["acme"])
    assert resp.status_code == 403
    resp = await world.client.get("/api/v1/tenants/acme/sla/2026/4", headers=world.admins["other"])
    assert resp.status_code == 404
    resp = await world.client.get(f"{INC}/nope", headers=world.platform)
    assert resp.status_code == 404


async def test_ami_down_over_30_s_becomes_an_incident_that_counts(world: World) -> None:
    auto = AutomaticIncidents(world.store, world.clock.now, "ami_down")
    world.clock.current = APRIL + timedelta(days=10)
    for healthy, step in ((False, 0), (False, 20), (False, 15), (False, 60), (True, 25)):
        world.clock.current += timedelta(seconds=step)
        await auto.sample(healthy)
    (inc,) = await world.store.overlapping(APRIL, APRIL + timedelta(days=30))
    assert (inc.source.value, inc.cause) == ("automatic", "ami_down")
    assert (inc.ended_at - inc.started_at).total_seconds() == 120  # 20 + 15 + 60 + 25
    world.clock.current = datetime(2026, 5, 2, tzinfo=UTC)
    assert (await _month(world))["fault_minutes"] == 2.0


async def test_a_tenant_fault_report_counts_only_once_promoted(world: World) -> None:
    noticed = APRIL + timedelta(days=5)
    resp = await world.client.post(
        "/api/v1/tenants/acme/sla/fault-reports",
        json={"summary": "callers hear silence", "noticed_at": noticed.isoformat()},
        headers=world.admins["acme"],
    )
    assert resp.status_code == 201, resp.text
    report = resp.json()
    assert (report["status"], report["tenant_id"]) == ("open", "acme")
    assert (await _month(world))["stability_percent"] == "100.0000"
    other = await world.client.get(
        "/api/v1/tenants/other/sla/fault-reports", headers=world.admins["other"]
    )
    assert other.json() == []
    resp = await world.client.post(
        f"/api/v1/sla/fault-reports/{report['id']}/promote",
        json={"ended_at": (noticed + timedelta(minutes=432)).isoformat()},
        headers=world.platform,
    )
    assert resp.status_code == 200, resp.text
    promoted = resp.json()
    assert promoted["incident"]["source"] == "tenant_report"
    assert promoted["incident"]["tenants"] == ["acme"]
    assert promoted["report"]["incident_id"] == promoted["incident"]["id"]
    # 432 minutes of 43,200: 99 %.
    assert (await _month(world))["stability_percent"] == "99.0000"
    assert (await _month(world, "other"))["stability_percent"] == "100.0000"
    again = await world.client.post(
        f"/api/v1/sla/fault-reports/{report['id']}/reject",
        json={"note": "x"},
        headers=world.platform,
    )
    assert again.status_code == 409
    by_tenant = await world.client.post(
        f"/api/v1/sla/fault-reports/{report['id']}/promote",
        json={},
        headers=world.admins["acme"],
    )
    assert by_tenant.status_code == 403


async def test_a_rejected_fault_report_says_why_and_costs_nothing(world: World) -> None:
    resp = await world.client.post(
        "/api/v1/tenants/acme/sla/fault-reports",
        json={"summary": "one phone mute"},
        headers=world.admins["acme"],
    )
    rid = resp.json()["id"]
    resp = await world.client.post(
        f"/api/v1/sla/fault-reports/{rid}/reject",
        json={"note": "terminal-side fault"},
        headers=world.platform,
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["note"]) == ("rejected", "terminal-side fault")
    queue = await world.client.get("/api/v1/sla/fault-reports", headers=world.platform)
    assert [r["id"] for r in queue.json()] == [rid]
    forbidden = await world.client.get("/api/v1/sla/fault-reports", headers=world.admins["acme"])
    assert forbidden.status_code == 403


async def test_fastagi_5xx_and_journal_lag_open_and_close_their_own_incidents(
    engine: AsyncEngine, world: World
) -> None:
    """The production samplers (bootstrap) over real counters: each signal opens one incident
    after its threshold, keeps it while unhealthy (no duplicates), closes it on recovery."""
    from types import SimpleNamespace

    from ccbridge.bootstrap import _sla_monitors
    from ccbridge.observability.metrics import Metrics
    from ccbridge.settings import SlaSettings

    metrics = Metrics()
    agi = SimpleNamespace(listening=True, stats=SimpleNamespace(refused_capacity=0))
    ami = SimpleNamespace(status=SimpleNamespace(logged_in=True))
    writer = SimpleNamespace(pending=0)
    cfg = SlaSettings(
        window_seconds=30,
        fastagi_refusing_seconds=20,
        http_5xx_seconds=20,
        event_lag_seconds=20,
        event_lag_max_seconds=10,
        http_5xx_min_requests=10,
    )
    samplers = dict(
        _sla_monitors(
            cfg,
            create_session_factory(engine),
            world.clock.now,
            ami,
            agi,
            metrics,
            writer,  # type: ignore[arg-type]
        )
    )
    assert set(samplers) == {"sla-ami", "sla-fastagi", "sla-http-5xx", "sla-event-lag"}
    start = APRIL + timedelta(days=3)
    world.clock.current = start

    async def tick(seconds: int) -> None:
        world.clock.current += timedelta(seconds=seconds)
        for run in samplers.values():
            await run()

    await tick(0)
    # Trouble everywhere at once: refusals, 12 of 20 answers 5xx, commits 40 s late.
    agi.stats.refused_capacity = 3
    for status in ["5xx"] * 12 + ["2xx"] * 8:
        metrics.http.requests.labels("/x", "GET", status).inc()
    metrics.events.lag_seconds.observe(40.0)
    for _ in range(6):
        await tick(5)
    open_now = {i.cause: i for i in await world.store.overlapping(start, start + timedelta(days=1))}
    assert set(open_now) == {"fastagi_refusing", "http_5xx_rate", "event_journal_lag"}
    assert all(i.ended_at is None and i.source.value == "automatic" for i in open_now.values())
    assert open_now["fastagi_refusing"].started_at == start + timedelta(seconds=5)

    # Healthy again: no new refusals, 200 good answers, fast commits; the window drains.
    for _ in range(200):
        metrics.http.requests.labels("/x", "GET", "2xx").inc()
    for _ in range(10):
        metrics.events.lag_seconds.observe(0.1)
    for _ in range(10):
        await tick(5)
    closed = await world.store.overlapping(start, start + timedelta(days=1))
    assert len(closed) == 3  # one incident per cause, none duplicated while it lasted
    assert all(i.ended_at is not None for i in closed)
