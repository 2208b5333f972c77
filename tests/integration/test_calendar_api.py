"""The working-day calendar through the real app on SQLite and PostgreSQL: who may read and
change it, faults named by field, the audit entry, lease changes counted on it at once after a
PUT and in the tenant's own zone, readiness, and ``ccbridge calendar import``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.bootstrap import calendar_check
from ccbridge.cli import app as cli_app
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.domain.access import Role
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService
from ccbridge.services.tenants import AccessService
from tests.fakes.seats import FakeClock, RecordingQueues
from tests.support.api_rig import auth, create_tenants, seat_api

SECRET = "integration-test-secret-0123456789abcdef"
DOCS = Path(__file__).parents[2] / "docs" / "calendars"
CAL = "/api/v1/calendar"
NATIONAL_DAY = {
    "holidays": [f"2026-10-0{d}" for d in range(1, 8)],
    "makeup_workdays": ["2026-09-20", "2026-10-10"],
}


@dataclass
class World:
    client: httpx.AsyncClient
    clock: FakeClock
    calendar: CalendarService
    engine: AsyncEngine
    platform: dict[str, str]
    admins: dict[str, dict[str, str]]

    async def change(self, tenant: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/tenants/{tenant}/lease-changes", json=body, headers=self.admins[tenant]
        )


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    calendar = CalendarService(CalendarRepository(sessions), audit, clock.now)
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        seat_api=seat_api(sessions, clock, audit, calendar, RecordingQueues()),
        calendar_api=calendar,
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    platform = auth(platform_key)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        zones = {"sh": "Asia/Shanghai", "ny": "America/New_York", "akl": "Pacific/Auckland"}
        admins = await create_tenants(
            client, platform, {tid: {"timezone": zone} for tid, zone in zones.items()}
        )
        yield World(client, clock, calendar, engine, platform, admins)


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    return body


async def test_a_year_not_loaded_says_so_and_a_tenant_admin_may_read_it(world: World) -> None:
    resp = await world.client.get(f"{CAL}/2026", headers=world.admins["sh"])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "year": 2026,
        "holidays": [],
        "makeup_workdays": [],
        "calendar_loaded": False,
        "updated_at": None,
        "updated_by": None,
    }
    assert (await world.client.get(f"{CAL}/2026")).status_code == 401
    _problem(await world.client.get(f"{CAL}/1999", headers=world.platform), 422)


async def test_only_the_platform_admin_puts_a_year_and_it_is_audited(world: World) -> None:
    resp = await world.client.put(f"{CAL}/2026", json=NATIONAL_DAY, headers=world.admins["sh"])
    assert _problem(resp, 403)["code"] == "FORBIDDEN"
    resp = await world.client.put(f"{CAL}/2026", json=NATIONAL_DAY, headers=world.platform)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["calendar_loaded"], body["holidays"][0], body["makeup_workdays"]) == (
        True,
        "2026-10-01",
        ["2026-09-20", "2026-10-10"],
    )
    assert body["updated_by"].startswith("key:")
    read = await world.client.get(f"{CAL}/2026", headers=world.admins["ny"])
    assert read.json() == body
    log = await world.client.get("/api/v1/audit", headers=world.platform)
    (entry,) = [e for e in log.json()["items"] if e["action"] == "calendar.update"]
    assert (entry["object_type"], entry["object_id"], entry["tenant_id"]) == (
        "calendar",
        "2026",
        None,
    )
    assert entry["detail"]["makeup_workdays"] == ["2026-09-20", "2026-10-10"]
    tenant_log = await world.client.get("/api/v1/audit", headers=world.admins["sh"])
    assert all(e["action"] != "calendar.update" for e in tenant_log.json()["items"])


async def test_faulty_dates_answer_422_naming_each_field_and_store_nothing(world: World) -> None:
    bad = {
        "holidays": ["2026-10-01", "2027-01-01"],
        "makeup_workdays": ["2026-10-01", "2026-10-09"],
    }
    body = _problem(await world.client.put(f"{CAL}/2026", json=bad, headers=world.platform), 422)
    assert body["code"] == "VALIDATION"
    assert [e["field"] for e in body["errors"]] == [
        "body.holidays[1]",
        "body.makeup_workdays[0]",
        "body.makeup_workdays[1]",
    ]
    assert "also listed as a holiday" in body["errors"][1]["message"]
    assert "Friday" in body["errors"][2]["message"]
    not_a_date = {"holidays": ["2026-02-30"]}
    resp = await world.client.put(f"{CAL}/2026", json=not_a_date, headers=world.platform)
    assert _problem(resp, 422)["errors"][0]["field"] == "body.holidays[0]"
    resp = await world.client.put(f"{CAL}/2026", json={"days": []}, headers=world.platform)
    assert _problem(resp, 422)["errors"][0]["field"] == "body.days"
    assert not (await world.client.get(f"{CAL}/2026", headers=world.platform)).json()[
        "calendar_loaded"
    ]


async def test_a_lease_change_counts_a_year_put_a_moment_ago(world: World) -> None:
    # Tue 29 Sep 2026, 10:00 in Shanghai: 1 working day is Wed 30 Sep on weekdays alone.
    world.clock.current = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)
    group = {"kind": "skill_group", "effective_on": "2026-09-30"}
    resp = await world.change("sh", group)
    assert resp.status_code == 201, resp.text
    assert resp.json()["calendar_loaded"] is False
    # 7 working days over the Golden Week, counted as weekdays alone: Thu 8 Oct.
    seats = {"kind": "seat_count", "effective_on": "2026-10-08", "seats": {"inbound": 12}}
    assert (await world.change("sh", seats)).status_code == 201
    put = await world.client.put(f"{CAL}/2026", json=NATIONAL_DAY, headers=world.platform)
    assert put.status_code == 200
    # With the calendar: 30 Sep (1), 1-7 Oct off, 8, 9 (2, 3), Sat 10 worked (4), 12-14 (7).
    body = _problem(await world.change("sh", seats), 409)
    assert body["reason"] == "NOTICE_TOO_SHORT"
    assert "the earliest effective date is 2026-10-14" in body["detail"]
    resp = await world.change("sh", {**seats, "effective_on": "2026-10-14"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["calendar_loaded"] is True


async def test_a_new_york_tenant_counts_from_its_own_date_late_in_the_evening(
    world: World,
) -> None:
    # Thu 3 Dec 2026 22:30 in New York is Fri 4 Dec 11:30 in Shanghai.
    world.clock.current = datetime(2026, 12, 4, 3, 30, tzinfo=UTC)
    friday = {"kind": "skill_group", "effective_on": "2026-12-04"}
    assert (await world.change("ny", friday)).status_code == 201
    body = _problem(await world.change("sh", friday), 409)
    assert "the earliest effective date is 2026-12-07" in body["detail"]
    # A waived notice may start on the tenant's today, which is yesterday in Shanghai.
    today = {"kind": "ivr", "effective_on": "2026-12-03", "override_notice": True}
    resp = await world.client.post(
        "/api/v1/tenants/ny/lease-changes", json=today, headers=world.platform
    )
    assert resp.status_code == 201, resp.text
    resp = await world.client.post(
        "/api/v1/tenants/sh/lease-changes", json=today, headers=world.platform
    )
    assert _problem(resp, 409)["reason"] == "EFFECTIVE_DATE_IN_PAST"


async def test_an_auckland_tenant_already_in_tomorrow_needs_a_later_date(world: World) -> None:
    # 11:30 UTC on Thu 3 Dec 2026 is 19:30 Thursday in Shanghai, 00:30 Friday in Auckland.
    world.clock.current = datetime(2026, 12, 3, 11, 30, tzinfo=UTC)
    seats = {"kind": "seat_kind", "effective_on": "2026-12-14", "seats": {"inbound": 5}}
    assert (await world.change("sh", seats)).status_code == 201
    body = _problem(await world.change("akl", seats), 409)
    assert "the earliest effective date is 2026-12-15" in body["detail"]
    assert (await world.change("akl", {**seats, "effective_on": "2026-12-15"})).status_code == 201


async def test_readiness_warns_about_a_missing_year_without_failing(world: World) -> None:
    readiness = Readiness()
    readiness.add("calendar", calendar_check(world.calendar, world.clock.now))
    world.clock.current = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    ok, report = await readiness.run()
    assert ok
    assert report["calendar"]["missing_years"] == [2026, 2027]
    assert "2026, 2027" in report["calendar"]["warning"]
    await world.client.put(f"{CAL}/2026", json=NATIONAL_DAY, headers=world.platform)
    world.clock.current = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    ok, report = await readiness.run()
    assert ok
    assert report["calendar"] == {"ok": True, "loaded_years": [2026], "missing_years": []}


async def test_cli_import_loads_the_shipped_file_and_refuses_a_faulty_one(
    world: World, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", db_url)
    runner = CliRunner()
    # The CLI runs its own event loop: run it in a thread so this test's loop is left alone.
    result = await asyncio.to_thread(
        runner.invoke, cli_app, ["calendar", "import", str(DOCS / "cn-2026.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert '"holidays": 33' in result.output
    world.clock.current = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)  # Fri 13 Feb, Shanghai
    resp = await world.client.get(f"{CAL}/2026", headers=world.platform)
    assert resp.json()["updated_by"] == "cli"
    assert resp.json()["makeup_workdays"][:2] == ["2026-01-04", "2026-02-14"]
    spring = {"kind": "seat_count", "effective_on": "2026-03-02", "seats": {"inbound": 3}}
    resp = await world.change("sh", spring)
    assert resp.status_code == 201, resp.text
    assert resp.json()["calendar_loaded"] is True
    assert (await world.change("sh", {**spring, "effective_on": "2026-02-27"})).status_code == 409

    faulty = tmp_path / "bad.json"
    faulty.write_text('{"year": 2027, "makeup_workdays": ["2027-01-04"]}', encoding="utf-8")
    result = await asyncio.to_thread(runner.invoke, cli_app, ["calendar", "import", str(faulty)])
    assert result.exit_code == 1
    assert "makeup_workdays[0]" in result.output
    unreadable = tmp_path / "bad.yaml"
    unreadable.write_text("year: 2027\nholiday: []\n", encoding="utf-8")
    result = await asyncio.to_thread(
        runner.invoke, cli_app, ["calendar", "import", str(unreadable)]
    )
    assert result.exit_code == 2
    assert "holiday" in result.output
    resp = await world.client.get(f"{CAL}/2027", headers=world.platform)
    assert resp.json()["calendar_loaded"] is False
