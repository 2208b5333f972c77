"""Reports over stored 15-minute tallies equal reports over the raw rows on SQLite and
PostgreSQL, for random call sets; the maintenance pass is incremental and idempotent, and a
report stays exact for rows written after the last pass (ADR 0019)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ccbridge.db.access_tables import TenantRow
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.report_tallies import SqlReportTallies
from ccbridge.db.repositories.reports import SqlReportSettingsStore, SqlReportSource
from ccbridge.db.repositories.seat_sessions import StateIntervalRepository
from ccbridge.domain.access import Principal, Role
from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.calls.model import CallRecord, CallSegment, CallState
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import Dimension, ReportKind, StateSpan
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZoneReader
from ccbridge.services.reports import ReportService
from ccbridge.services.seat_ports import StateInterval
from tests.unit.reports.random_calls import random_history

START = (datetime.now(UTC) - timedelta(days=4)).replace(hour=14, minute=0, second=0, microsecond=0)
"""22:00 in Shanghai four days ago: the data lies in the past, as the writers' clock sees it."""
END = START + timedelta(hours=30)
FIRST = (START + timedelta(hours=8)).date()
LAST = (END + timedelta(hours=8)).date()
TALLIED = (ReportKind.SERVICE_LEVEL, ReportKind.SEAT_TIME, ReportKind.OPERATIONS)


async def _tenant(sessions: async_sessionmaker[AsyncSession], tenant: str) -> None:
    async with sessions() as db, db.begin():
        await db.execute(
            insert(TenantRow),
            [
                {
                    "id": tenant,
                    "name": tenant,
                    "business_contact": None,
                    "technical_contact": None,
                    "status": "active",
                    "timezone": "Asia/Shanghai",
                    "created_at": START,
                }
            ],
        )


async def _write(
    sessions: async_sessionmaker[AsyncSession], calls: list[CallRecord], spans: list[StateSpan]
) -> None:
    await CallRepository(sessions).upsert_many(calls)
    intervals = StateIntervalRepository(sessions)
    for s in spans:
        await intervals.append(StateInterval("acme", s.agent_no, s.state, s.reason, s.started_at))


def _now() -> datetime:
    return datetime.now(UTC)


def _services(sessions: async_sessionmaker[AsyncSession]) -> tuple[ReportService, ReportService]:
    """Raw and tallied services on the writers' clock; no write margin (the test's writes
    are committed before it reads), so a pass sees exactly the rows written before it."""

    def make(tallied: bool) -> ReportService:
        return ReportService(
            SqlReportSource(sessions),
            SqlReportSettingsStore(sessions),
            TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
            AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), _now),
            _now,
            SqlReportTallies(sessions) if tallied else None,
            tally_write_margin=timedelta(0),
        )

    return make(False), make(True)


async def _assert_same(raw: ReportService, tallied: ReportService) -> None:
    for kind in TALLIED:
        for gran in (Granularity.MIN15, Granularity.DAY):
            many = kind is ReportKind.SERVICE_LEVEL and gran is Granularity.MIN15
            dims = Dimension if many else (Dimension.TENANT,)
            for dim in dims:
                a = await raw.run("acme", kind, FIRST, LAST, gran, dim)
                b = await tallied.run("acme", kind, FIRST, LAST, gran, dim)
                assert b.table.rows == a.table.rows, (kind, gran, dim)
                assert a.table.rows or kind is ReportKind.OPERATIONS


@pytest.mark.parametrize("seed", [3, 11])
async def test_tallied_reports_equal_raw_reports(engine: AsyncEngine, seed: int) -> None:
    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    calls, spans = random_history(seed, agents=4, start=START)
    await _write(sessions, calls, spans)
    raw, tallied = _services(sessions)
    store = SqlReportTallies(sessions)
    done = await tallied.tallies.rebuild("acme", START - timedelta(days=1), END)
    assert done >= 2
    stored_calls, stored_seats = await store.read("acme", START - timedelta(days=1), END)
    assert stored_calls
    assert stored_seats

    await _assert_same(raw, tallied)
    assert tallied.tallies.days_from_store > 0

    # Idempotent: another pass with nothing new recomputes nothing and changes nothing.
    assert await tallied.tallies.refresh() == 0
    assert await store.read("acme", START - timedelta(days=1), END) == (
        stored_calls,
        stored_seats,
    )


async def test_rows_written_after_the_last_pass_count_before_the_next(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    calls, spans = random_history(5, agents=3, start=START)
    await _write(sessions, calls, spans)
    raw, tallied = _services(sessions)
    await tallied.tallies.rebuild("acme", START - timedelta(days=1), END)

    # A late call on the first day and the open intervals closed by a sign-out.
    late_at = START + timedelta(hours=3)
    late = CallRecord(
        call_id="late",
        started_at=late_at,
        state=CallState.ENDED,
        tenant="acme",
        caller="13900000000",
        skill_group="sales",
        agent_no="A9",
        queued_at=late_at,
        answered_at=late_at + timedelta(seconds=12),
        ended_at=late_at + timedelta(seconds=200),
        segments=(
            CallSegment(
                1,
                "A9",
                "PJSIP/A9",
                "sales",
                "13900000000",
                "4001",
                "queue",
                late_at + timedelta(seconds=12),
                late_at + timedelta(seconds=200),
            ),
        ),
    )
    await CallRepository(sessions).upsert_many([late])
    intervals = StateIntervalRepository(sessions)
    open_agents = {s.agent_no for s in spans if s.ended_at is None}
    for agent in sorted(open_agents):
        await intervals.append(
            StateInterval("acme", agent, AgentState.SIGNED_OUT, "", END + timedelta(minutes=30))
        )
    await _assert_same(raw, tallied)  # before any pass: the touched days come from raw rows

    before = tallied.tallies.days_from_store
    assert await tallied.tallies.refresh() >= 1
    await _assert_same(raw, tallied)
    assert tallied.tallies.days_from_store > before


async def test_changed_thresholds_invalidate_the_tallies(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    calls, spans = random_history(8, agents=3, start=START)
    await _write(sessions, calls, spans)
    raw, tallied = _services(sessions)
    await tallied.tallies.rebuild("acme", START - timedelta(days=1), END)
    who = Principal(actor="test", role=Role.PLATFORM_ADMIN, tenant_id=None)
    await tallied.put_settings(who, "acme", KpiSettings(service_level_seconds=5), {})
    await _assert_same(raw, tallied)
    assert await tallied.tallies.refresh() >= 2  # every covered day recomputed under T = 5 s
    await _assert_same(raw, tallied)


async def test_tallies_are_per_tenant(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    await _tenant(sessions, "other")
    calls, spans = random_history(2, agents=2, start=START)
    await _write(sessions, calls, spans)
    _, tallied = _services(sessions)
    await tallied.tallies.rebuild("other", START - timedelta(days=1), END)
    store = SqlReportTallies(sessions)
    assert await store.read("other", START - timedelta(days=1), END) == ({}, {})
    await tallied.tallies.rebuild("acme", START - timedelta(days=1), END)
    assert (await store.read("acme", START - timedelta(days=1), END))[0]
    assert await store.state("other") is not None
    state = await store.state("acme")
    assert state is not None
    assert state.covered_from <= START


async def test_cli_rebuild_fills_a_period_and_is_idempotent(
    engine: AsyncEngine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from typer.testing import CliRunner

    from ccbridge.cli import app as cli_app

    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    calls, spans = random_history(4, agents=2, start=START)
    await _write(sessions, calls, spans)
    monkeypatch.setenv("CCBRIDGE_DATABASE_URL", db_url)
    runner = CliRunner()
    args = ["reports", "rebuild", "--tenant", "acme", "--from", str(FIRST), "--to", str(LAST)]
    first = await asyncio.to_thread(runner.invoke, cli_app, args)
    assert first.exit_code == 0, first.output
    assert "recomputed" in first.output
    store = SqlReportTallies(sessions)
    stored = await store.read("acme", START - timedelta(days=1), END + timedelta(days=1))
    assert stored[0]
    assert stored[1]
    again = await asyncio.to_thread(runner.invoke, cli_app, args)
    assert again.exit_code == 0, again.output
    assert await store.read("acme", START - timedelta(days=1), END + timedelta(days=1)) == stored
    raw, tallied = _services(sessions)
    await _assert_same(raw, tallied)
    bad = await asyncio.to_thread(runner.invoke, cli_app, [*args[:5], "--from", "2026-13-01"])
    assert bad.exit_code == 2
    nobody = [*args[:3], "nobody", *args[4:]]
    assert (await asyncio.to_thread(runner.invoke, cli_app, nobody)).exit_code == 2


async def test_one_tenants_failure_does_not_starve_the_others(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    await _tenant(sessions, "zeta")
    calls, spans = random_history(6, agents=2, start=datetime.now(UTC) - timedelta(hours=3))
    await _write(sessions, calls, spans)
    _, tallied = _services(sessions)
    real = tallied.tallies.refresh_tenant

    async def flaky(tenant_id: str, *args: object, **kw: object) -> int:
        if tenant_id == "acme":
            raise RuntimeError("acme's pass failed")
        return await real(tenant_id)

    tallied.tallies.refresh_tenant = flaky  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="acme"):
        await tallied.tallies.refresh()
    store = SqlReportTallies(sessions)
    assert await store.state("zeta") is not None  # zeta's pass ran after acme's failed
    assert await store.state("acme") is None
