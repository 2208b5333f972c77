"""Monthly statements through the real app on SQLite and PostgreSQL: the seat model under both
definitions of "used", the per-call model in a holiday month, the SLA deduction and 6 % VAT,
the states with their audit trail, deemed confirmation and the late fee."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.reports import SqlReportSource
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository
from ccbridge.db.repositories.sla import SqlIncidentStore
from ccbridge.db.repositories.statements import SqlStatementStore
from ccbridge.db.seat_tables import SeatSessionRow
from ccbridge.domain.access import Principal, Role
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.leases.model import SeatKind, SeatLease, SeatUsage
from ccbridge.domain.sla.incidents import Incident, IncidentSource
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService, TenantZoneReader
from ccbridge.services.sla import SlaService
from ccbridge.services.statements import StatementService
from ccbridge.services.tenants import AccessService
from tests.fakes.seats import FakeClock
from tests.support.api_rig import auth, create_tenants

SECRET = "integration-test-secret-0123456789abcdef"
CST = timezone(timedelta(hours=8))
OPS = Principal(actor="test", role=Role.PLATFORM_ADMIN, tenant_id=None)


def cst(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=CST).astimezone(UTC)


@dataclass
class World:
    client: httpx.AsyncClient
    platform: dict[str, str]
    admins: dict[str, dict[str, str]]
    clock: FakeClock


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(cst(6, 2, 10))
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    zones = TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions))
    incidents = SqlIncidentStore(sessions)
    calendar = CalendarService(CalendarRepository(sessions), audit, clock.now)
    statements = StatementService(
        SqlStatementStore(sessions),
        LeaseRepository(sessions),
        SeatSessionRepository(sessions),
        SqlReportSource(sessions),
        SlaService(incidents, zones, audit, clock.now),
        calendar,
        zones,
        audit,
        clock.now,
    )
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        statements_api=statements,
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        admins = await create_tenants(client, auth(platform_key), {"acme": {}, "beta": {}})
        # Labour Day 2026: 1-5 May are holidays (make-up days 26 Apr and 9 May).
        await calendar.put(
            OPS,
            2026,
            [date(2026, 5, d) for d in range(1, 6)],
            [date(2026, 4, 26), date(2026, 5, 9)],
        )
        prices = {SeatKind.INBOUND: Decimal("1000"), SeatKind.INBOUND_OUTBOUND: Decimal("1500")}
        for tenant, usage in (("acme", SeatUsage.PEAK), ("beta", SeatUsage.SEAT_DAYS)):
            await LeaseRepository(sessions).create(
                SeatLease(
                    tenant,
                    {SeatKind.INBOUND: 5, SeatKind.INBOUND_OUTBOUND: 2},
                    date(2026, 1, 1),
                    monthly_price=prices,
                    seat_usage=usage,
                )
            )
            # April: three inbound seats at once on the 1st, one two-way seat on the 2nd.
            rows = [(SeatKind.INBOUND, cst(4, 1, h), cst(4, 1, 18)) for h in (9, 10, 11)]
            rows.append((SeatKind.INBOUND_OUTBOUND, cst(4, 2, 9), cst(4, 2, 12)))
            async with sessions() as db, db.begin():
                await db.execute(
                    insert(SeatSessionRow),
                    [
                        {
                            "id": str(uuid.uuid4()),
                            "tenant_id": tenant,
                            "agent_no": f"{i}",
                            "kind": kind.value,
                            "interface": f"PJSIP/{tenant}{i}",
                            "signed_in_at": lo,
                            "signed_out_at": hi,
                            "status": {},
                            "version": 1,
                            "updated_at": hi,
                        }
                        for i, (kind, lo, hi) in enumerate(rows)
                    ],
                )
        # 1,296 fault minutes in April (30 days): 97 %, so 1 % of the bill is deducted.
        await incidents.add(
            Incident(
                "i1",
                cst(4, 10),
                cst(4, 10) + timedelta(minutes=1296),
                "trunk",
                IncidentSource.OPERATOR,
                frozenset({"acme"}),
            ),
            "test",
            clock.now(),
        )
        # May, per-call: 3 billable ordinary calls, 1 of 10 s, 2 billable on 1 May (holiday).
        calls = [
            _call("o1", cst(5, 6, 9), 60),
            _call("o2", cst(5, 7, 9), 15),
            _call("o3", cst(5, 8, 9), 300),
            _call("s1", cst(5, 8, 10), 10),
            _call("h1", cst(5, 1, 9), 30),
            _call("h2", cst(5, 1, 10), 45),
        ]
        await CallRepository(sessions).upsert_many(calls)
        yield World(client, auth(platform_key), admins, clock)


def _call(cid: str, at: datetime, talk: int) -> CallRecord:
    return CallRecord(
        call_id=cid,
        started_at=at,
        state=CallState.ENDED,
        tenant="acme",
        caller="13800138000",
        queued_at=at,
        answered_at=at + timedelta(seconds=5),
        ended_at=at + timedelta(seconds=5 + talk),
        agent_no="1001",
    )


async def _issue(w: World, tenant: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    resp = await w.client.post(
        f"/api/v1/tenants/{tenant}/statements", json=body, headers=w.platform
    )
    assert resp.status_code == status, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def test_seat_model_by_peak_with_the_sla_deduction_and_vat(world: World) -> None:
    s = await _issue(world, "acme", {"year": 2026, "month": 4, "model": "seats"})
    lines = {ln["item"]: ln for ln in s["lines"]}
    assert lines["纯呼入坐席 (peak)"]["quantity"] == "3"
    assert lines["纯呼入坐席 (peak)"]["amount"] == "3000.00"  # 3 × 1,000
    assert lines["呼入呼出坐席 (peak)"]["amount"] == "1500.00"  # 1 × 1,500
    assert s["subtotal"] == "4500.00"
    assert (s["stability_percent"], s["sla_tier"]) == ("97.0000", "per_point")
    assert (s["sla_deduction"], s["net"]) == ("45.00", "4455.00")  # 1 % of 4,500
    assert (s["vat"], s["total"]) == ("267.30", "4722.30")  # 6 % of 4,455
    assert (s["state"], s["issue_by"], s["payment_due"]) == ("issued", "2026-05-05", "2026-05-20")
    await _issue(world, "acme", {"year": 2026, "month": 4, "model": "seats"}, 409)


async def test_the_request_may_override_the_leases_seat_usage(world: World) -> None:
    s = await _issue(
        world, "beta", {"year": 2026, "month": 4, "model": "seats", "seat_usage": "peak"}
    )
    assert {ln["item"] for ln in s["lines"]} == {"纯呼入坐席 (peak)", "呼入呼出坐席 (peak)"}


async def test_seat_model_by_seat_days_as_the_lease_says(world: World) -> None:
    s = await _issue(world, "beta", {"year": 2026, "month": 4, "model": "seats"})
    assert s["trail"][0]["note"] == "seat usage: seat_days"  # beta's lease setting
    lines = {ln["item"]: ln for ln in s["lines"]}
    # Daily peaks over 30 days: inbound 3 on one day = 0.10; two-way 1 on one day = 0.03.
    assert (
        lines["纯呼入坐席 (seat_days)"]["quantity"],
        lines["纯呼入坐席 (seat_days)"]["amount"],
    ) == ("0.10", "100.00")
    assert lines["呼入呼出坐席 (seat_days)"]["amount"] == "45.00"  # 0.03 × 1,500
    assert (s["stability_percent"], s["total"]) == ("100.0000", "153.70")  # 145 + 6 %


async def test_per_call_model_in_a_holiday_month(world: World) -> None:
    s = await _issue(
        world, "acme", {"year": 2026, "month": 5, "model": "per_call", "contract_month": 1}
    )
    lines = {ln["item"]: ln for ln in s["lines"]}
    # First contract month: 1.68 yuan per call over 15 s; holiday overtime × 3.
    assert (lines["15秒以上通话量"]["quantity"], lines["15秒以上通话量"]["amount"]) == ("3", "5.04")
    holiday = lines["法定节假日加班通话量 (×3)"]
    assert (holiday["quantity"], holiday["unit_price"], holiday["amount"]) == ("2", "5.04", "10.08")
    assert (s["subtotal"], s["vat"], s["total"]) == ("15.12", "0.91", "16.03")


async def test_states_trail_deemed_confirmation_and_late_fee(world: World) -> None:
    base = "/api/v1/tenants/acme/statements/2026/4"
    await _issue(world, "acme", {"year": 2026, "month": 4, "model": "seats"})
    # Issued 2 June; 5 working days later is 9 June: from the 10th it is deemed confirmed.
    world.clock.current = cst(6, 10, 10)
    view = (await world.client.get(base, headers=world.admins["acme"])).json()
    assert (view["confirm_by"], view["deemed_confirmed"]) == ("2026-06-09", True)
    # Unpaid: 10 June is 21 days after the 20 May due date; F3 at 0.3 % a day.
    assert view["days_overdue"] == 21
    assert view["late_fee"] == str(
        (Decimal("4722.30") * Decimal("0.003") * 21).quantize(Decimal("0.01"))
    )
    resp = await world.client.post(
        f"{base}/transitions", json={"to": "invoiced"}, headers=world.admins["acme"]
    )
    assert resp.status_code == 403
    resp = await world.client.post(
        f"{base}/transitions", json={"to": "confirmed", "note": "ok"}, headers=world.admins["acme"]
    )
    assert resp.status_code == 200, resp.text
    for to in ("invoiced", "paid"):
        resp = await world.client.post(
            f"{base}/transitions", json={"to": to}, headers=world.platform
        )
        assert resp.status_code == 200, resp.text
    view = resp.json()
    assert [t["to"] for t in view["trail"]] == ["issued", "confirmed", "invoiced", "paid"]
    assert view["trail"][1]["note"] == "ok"
    assert (view["days_overdue"], view["late_fee"]) == (0, "0.00")
    again = await world.client.post(
        f"{base}/transitions", json={"to": "paid"}, headers=world.platform
    )
    assert again.status_code == 409
    other = await world.client.get(base, headers=world.admins["beta"])
    assert other.status_code == 404
