"""Scheduled reports on SQLite and PostgreSQL: each completed day, week and month archived
once (even when the job fires twice at once) with a SHA-256 the download matches, listed
with state and progress, retried after a failure, and tenant-scoped (404 across tenants)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx
import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.report_archives import SqlReportArchives
from ccbridge.db.repositories.reports import SqlReportSettingsStore, SqlReportSource
from ccbridge.domain.access import Role
from ccbridge.domain.reports.schedule import SCHEDULE
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZoneReader
from ccbridge.services.report_archives import ReportArchiver
from ccbridge.services.reports import ReportService
from ccbridge.services.tenants import AccessService
from tests.fakes.seats import FakeClock
from tests.support.api_rig import auth, create_tenants
from tests.unit.reports.scripted_day import CALLS

SECRET = "integration-test-secret-0123456789abcdef"
PER_TENANT = sum(len(items) for items in SCHEDULE.values())  # 4 daily + 4 weekly + 5 monthly


@dataclass
class World:
    client: httpx.AsyncClient
    admins: dict[str, dict[str, str]]
    archiver: ReportArchiver


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(datetime(2026, 3, 3, 2, tzinfo=UTC))  # 10:00 on Tuesday 3 March, Shanghai
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    zones = TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions))
    reports = ReportService(
        SqlReportSource(sessions),
        SqlReportSettingsStore(sessions),
        zones,
        AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now),
        clock.now,
    )
    archiver = ReportArchiver(reports, SqlReportArchives(sessions), zones, clock.now)
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        reports_api=reports,
        report_archives_api=archiver,
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        admins = await create_tenants(client, auth(platform_key), {"acme": {}, "other": {}})
        await CallRepository(sessions).upsert_many(CALLS)
        yield World(client, admins, archiver)


BASE = "/api/v1/tenants/{}/report-archives"


async def test_each_period_is_archived_once_even_when_the_job_fires_twice(world: World) -> None:
    made = await asyncio.gather(world.archiver.run_due(), world.archiver.run_due())
    assert sum(made) == 2 * PER_TENANT  # acme and other, every report once
    assert await world.archiver.run_due() == 0
    resp = await world.client.get(BASE.format("acme"), headers=world.admins["acme"])
    assert resp.status_code == 200, resp.text
    listed = resp.json()
    assert len(listed) == PER_TENANT
    assert {(a["state"], a["progress"]) for a in listed} == {("done", 100)}
    periods = {(a["period"], a["first_day"], a["last_day"]) for a in listed}
    assert periods == {
        ("daily", "2026-03-02", "2026-03-02"),
        ("weekly", "2026-02-23", "2026-03-01"),
        ("monthly", "2026-02-01", "2026-02-28"),
    }
    daily_detail = next(
        a for a in listed if a["period"] == "daily" and a["report"] == "seat-detail"
    )
    assert daily_detail["rows"] == len(CALLS)


async def test_the_download_matches_its_checksum_and_opens_as_xlsx(world: World) -> None:
    await world.archiver.run_due()
    resp = await world.client.get(
        BASE.format("acme"),
        params={"period": "daily", "report": "service-level"},
        headers=world.admins["acme"],
    )
    (archive,) = resp.json()
    file = await world.client.get(
        f"{BASE.format('acme')}/{archive['id']}/file", headers=world.admins["acme"]
    )
    assert file.status_code == 200
    assert hashlib.sha256(file.content).hexdigest() == archive["sha256"]
    assert file.headers["x-checksum-sha256"] == archive["sha256"]
    assert archive["size"] == len(file.content)
    sheet = openpyxl.load_workbook(io.BytesIO(file.content)).active
    assert sheet is not None
    assert "及时应答率(%)" in [c.value for c in next(sheet.iter_rows())]


async def test_another_tenants_archive_answers_404(world: World) -> None:
    await world.archiver.run_due()
    mine = (await world.client.get(BASE.format("acme"), headers=world.admins["acme"])).json()
    theirs = (await world.client.get(BASE.format("other"), headers=world.admins["other"])).json()
    assert not {a["id"] for a in mine} & {a["id"] for a in theirs}
    some = mine[0]["id"]
    for path in (f"{BASE.format('other')}/{some}", f"{BASE.format('other')}/{some}/file"):
        assert (await world.client.get(path, headers=world.admins["other"])).status_code == 404
    cross = await world.client.get(BASE.format("acme"), headers=world.admins["other"])
    assert cross.status_code == 404
    bad = await world.client.get(
        BASE.format("acme"), params={"period": "hourly"}, headers=world.admins["acme"]
    )
    assert bad.status_code == 422


async def test_a_failed_generation_is_listed_and_retried(world: World) -> None:
    broken = {"templates": {"seat-detail": {"columns": ["call_id", "no_such_column"]}}}
    resp = await world.client.put(
        "/api/v1/tenants/acme/reports/settings", json=broken, headers=world.admins["acme"]
    )
    assert resp.status_code == 200, resp.text
    assert await world.archiver.run_due() == 2 * PER_TENANT - 3  # acme's 3 seat-detail fail
    failed = (
        await world.client.get(
            BASE.format("acme"), params={"report": "seat-detail"}, headers=world.admins["acme"]
        )
    ).json()
    assert {a["state"] for a in failed} == {"failed"}
    assert "no_such_column" in failed[0]["error"]
    file = await world.client.get(
        f"{BASE.format('acme')}/{failed[0]['id']}/file", headers=world.admins["acme"]
    )
    assert file.status_code == 404
    resp = await world.client.put(
        "/api/v1/tenants/acme/reports/settings", json={}, headers=world.admins["acme"]
    )
    assert await world.archiver.run_due() == 3
    again = (
        await world.client.get(
            BASE.format("acme"), params={"report": "seat-detail"}, headers=world.admins["acme"]
        )
    ).json()
    assert {a["state"] for a in again} == {"done"}
    assert date.fromisoformat(again[0]["first_day"]) <= date(2026, 3, 2)
