"""The four reports through the real app on SQLite and PostgreSQL: the scripted day stored as
call records and state intervals, read back per interval, explained, exported as CSV (BOM)
and XLSX (read with openpyxl), reshaped by a tenant template, and tenant-isolated."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.cli import app as cli_app
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.reports import SqlReportSettingsStore, SqlReportSource
from ccbridge.db.repositories.seat_sessions import StateIntervalRepository
from ccbridge.domain.access import Role
from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import Dimension, ReportKind
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZoneReader
from ccbridge.services.reports import ReportService
from ccbridge.services.seat_ports import StateInterval
from ccbridge.services.tenants import AccessService
from tests.fakes.seats import FakeClock
from tests.support.api_rig import auth, create_tenants
from tests.unit.reports.scripted_day import CALLS, SPANS, at

SECRET = "integration-test-secret-0123456789abcdef"
BASE = "/api/v1/tenants/acme/reports"
DAY = {"from": "2026-03-02", "to": "2026-03-02"}


@dataclass
class World:
    client: httpx.AsyncClient
    admins: dict[str, dict[str, str]]


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(datetime(2026, 3, 3, tzinfo=UTC))
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    reports = ReportService(
        SqlReportSource(sessions),
        SqlReportSettingsStore(sessions),
        TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        audit,
        clock.now,
    )
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        reports_api=reports,
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        admins = await create_tenants(client, auth(platform_key), {"acme": {}, "other": {}})
        await CallRepository(sessions).upsert_many(CALLS)
        # Another tenant's call on the same day must never show up in acme's reports.
        stranger = CALLS[0].__class__(
            call_id="X1", started_at=at("09:00:00"), tenant="other", queued_at=at("09:00:01")
        )
        await CallRepository(sessions).upsert_many([stranger])
        intervals = StateIntervalRepository(sessions)
        for s in SPANS:
            await intervals.append(
                StateInterval("acme", s.agent_no, s.state, s.reason, s.started_at)
            )
            if s.ended_at is not None and s.state.value == "signed_out":
                await intervals.close("acme", s.agent_no, s.ended_at)
        yield World(client, admins)


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


async def test_service_level_per_half_hour_from_the_database(world: World) -> None:
    resp = await world.client.get(
        f"{BASE}/service-level", params={**DAY, "interval": "30min"}, headers=world.admins["acme"]
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["title"], body["timezone"]) == ("话务服务水平统计报表", "Asia/Shanghai")
    rows = {r["interval_start"]: r for r in body["rows"]}
    first = rows["2026-03-02T09:00:00+08:00"]
    assert (first["offered"], first["answered"], first["service_level"]) == (5, 3, 50.0)
    assert (first["aht"], first["transfers"], first["abandoned"]) == (90.0, 1, 1)
    assert rows["2026-03-02T09:30:00+08:00"]["offered"] == 1
    assert {c["key"]: c["heading"] for c in body["columns"]}["service_level"] == "及时应答率(%)"


async def test_explain_returns_the_calls_behind_a_number(world: World) -> None:
    resp = await world.client.get(
        f"{BASE}/service-level/explain",
        params={
            **DAY,
            "interval": "30min",
            "at": "2026-03-02T09:10:00+08:00",
            "kpi": "service_level",
        },
        headers=world.admins["acme"],
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["value"] == 50.0
    assert body["call_ids"]["answered_within_t"] == ["C1", "C5"]
    assert body["call_ids"]["short_abandoned"] == ["C3"]
    assert body["inputs"] == {"answered_within_t": 2.0, "offered": 5.0, "short_abandoned": 1.0}


async def test_explain_seat_time_lists_the_state_intervals(world: World) -> None:
    resp = await world.client.get(
        f"{BASE}/seat-time/explain",
        params={
            **DAY,
            "interval": "30min",
            "at": "2026-03-02T09:30:00+08:00",
            "kpi": "break",
            "group": "A2",
        },
        headers=world.admins["acme"],
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["value"] == 620.0  # 09:30:00-09:40:20
    breaks = [i for i in body["intervals"] if i["state"] == "break"]
    # Times are tenant-local (+08:00).
    assert [(i["seconds"], i["started_at"][11:19]) for i in breaks] == [(620.0, "09:30:00")]
    assert body["call_ids"]["handled"] == ["C6"]


async def test_csv_export_starts_with_a_bom_and_chinese_headings(world: World) -> None:
    resp = await world.client.get(
        f"{BASE}/seat-detail", params={**DAY, "format": "csv"}, headers=world.admins["acme"]
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.content.startswith(b"\xef\xbb\xbf")
    lines = resp.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("呼叫编号,开始时间,排队时间")
    assert len(lines) == 1 + 7  # C1..C7, never the other tenant's X1


async def test_xlsx_export_opens_with_openpyxl(world: World) -> None:
    resp = await world.client.get(
        f"{BASE}/seat-time",
        params={**DAY, "interval": "60min", "format": "xlsx"},
        headers=world.admins["acme"],
    )
    assert resp.status_code == 200, resp.text
    book = openpyxl.load_workbook(io.BytesIO(resp.content))
    sheet = book["坐席服务时段分析表"]
    headings = [c.value for c in sheet[1]]
    assert headings[:3] == ["时段开始", "时段结束", "工号"]
    rows = [dict(zip(headings, (c.value for c in r), strict=True)) for r in sheet.iter_rows(2)]
    a2 = next(r for r in rows if r["工号"] == "A2" and r["时段开始"].startswith("2026-03-02T09"))
    assert a2["小休时长(秒)"] == 1220  # 09:20:00-09:40:20, all inside 09:00-10:00


async def test_a_template_changes_columns_and_headings_and_t_changes_the_figure(
    world: World,
) -> None:
    body = {
        "service_level_seconds": 60,
        "templates": {
            "service-level": {
                "columns": ["interval_start", "offered", "service_level"],
                "headings": {"offered": "来电量"},
            }
        },
    }
    resp = await world.client.put(f"{BASE}/settings", json=body, headers=world.admins["acme"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["service_level_seconds"] == 60
    resp = await world.client.get(
        f"{BASE}/service-level",
        params={**DAY, "interval": "30min", "format": "csv"},
        headers=world.admins["acme"],
    )
    lines = resp.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "时段开始,来电量,及时应答率(%)"
    # T = 60 s: C2 (40 s) now counts as in time: 3 / (5 - 1) = 75 %.
    assert lines[1] == "2026-03-02T09:00:00+08:00,5,75.0"
    plain = await world.client.get(
        f"{BASE}/service-level",
        params={**DAY, "format": "csv", "template": "false"},
        headers=world.admins["acme"],
    )
    assert plain.content.decode("utf-8-sig").splitlines()[0].startswith("时段开始,时段结束,范围")


async def test_an_unknown_template_column_is_refused_on_use(world: World) -> None:
    body = {"templates": {"seat-detail": {"columns": ["call_id", "nonsense"]}}}
    resp = await world.client.put(f"{BASE}/settings", json=body, headers=world.admins["acme"])
    assert resp.status_code == 200
    problem = _problem(
        await world.client.get(f"{BASE}/seat-detail", params=DAY, headers=world.admins["acme"]),
        422,
    )
    assert problem["errors"][0]["field"] == "template.columns"
    assert "nonsense" in problem["detail"]


async def test_bad_windows_name_the_field(world: World) -> None:
    problem = _problem(
        await world.client.get(
            f"{BASE}/service-level",
            params={"from": "2026-03-02", "to": "2026-03-01"},
            headers=world.admins["acme"],
        ),
        422,
    )
    assert problem["errors"][0]["field"] == "to"
    too_long = {"from": "2025-01-01", "to": "2026-01-02"}  # 367 days
    resp = await world.client.get(
        f"{BASE}/service-level", params=too_long, headers=world.admins["acme"]
    )
    assert _problem(resp, 422)["errors"][0]["field"] == "to"


async def test_another_tenants_reports_answer_404(world: World) -> None:
    resp = await world.client.get(
        f"{BASE}/service-level", params=DAY, headers=world.admins["other"]
    )
    _problem(resp, 404)
    resp = await world.client.put(f"{BASE}/settings", json={}, headers=world.admins["other"])
    _problem(resp, 404)


async def test_cli_export_writes_csv_and_xlsx(
    world: World, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", db_url)
    runner = CliRunner()
    args = [
        "reports",
        "export",
        "--tenant",
        "acme",
        "--report",
        "service-level",
        "--from",
        "2026-03-02",
        "--to",
        "2026-03-02",
        "--interval",
        "30min",
    ]
    out = tmp_path / "sl.csv"
    # The CLI runs its own event loop: run it in a thread so this test's loop is left alone.
    result = await asyncio.to_thread(runner.invoke, cli_app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 rows" in result.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    xlsx = tmp_path / "sl.xlsx"
    result = await asyncio.to_thread(runner.invoke, cli_app, [*args, "--out", str(xlsx)])
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(xlsx)["话务服务水平统计报表"]
    assert [c.value for c in sheet[2]][3] == 5  # offered in 09:00-09:30
    bad = await asyncio.to_thread(
        runner.invoke, cli_app, [*args[:-2], "--interval", "7min", "--out", str(out)]
    )
    assert bad.exit_code == 2
    assert "7min" in bad.output
    missing = await asyncio.to_thread(
        runner.invoke, cli_app, [*args[:2], "--tenant", "nobody", *args[4:], "--out", str(out)]
    )
    assert missing.exit_code == 2


async def test_run_all_equals_the_four_single_reports(engine: AsyncEngine, world: World) -> None:
    sessions = create_session_factory(engine)
    svc = ReportService(
        SqlReportSource(sessions),
        SqlReportSettingsStore(sessions),
        TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), lambda: datetime.now(UTC)),
        lambda: datetime(2026, 3, 3, tzinfo=UTC),
    )
    day = datetime(2026, 3, 2, tzinfo=UTC).date()
    pack = await svc.run_all("acme", day, day, Granularity.MIN30, Dimension.SKILL_GROUP)
    for kind, run in pack.items():
        single = await svc.run("acme", kind, day, day, Granularity.MIN30, Dimension.SKILL_GROUP)
        assert run.table.rows == single.table.rows, kind
    assert len(pack[ReportKind.SEAT_DETAIL].table.rows) == 7


async def test_operations_report_uses_the_tenants_targets(world: World) -> None:
    body = {"targets": {"answer_rate": 90, "aht": 100}, "outbound_daily_quota": 40}
    resp = await world.client.put(f"{BASE}/settings", json=body, headers=world.admins["acme"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["targets"] == {"aht": 100.0, "answer_rate": 90.0}
    resp = await world.client.get(f"{BASE}/operations", params=DAY, headers=world.admins["acme"])
    assert resp.status_code == 200, resp.text
    rows = {(r["scope"], r["kpi"]): r for r in resp.json()["rows"]}
    assert (rows[("tenant", "answer_rate")]["value"], rows[("tenant", "answer_rate")]["met"]) == (
        80.0,
        "no",
    )
    assert rows[("tenant", "aht")]["met"] == "yes"
    assert ("A2", "daily_outbound") in rows
    bad = await world.client.put(
        f"{BASE}/settings", json={"targets": {"longest_wait": 5}}, headers=world.admins["acme"]
    )
    assert _problem(bad, 422)["errors"][0]["field"] == "targets.longest_wait"
