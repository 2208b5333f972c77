"""The flat per-call report lines (ADR 0019, part 3) on SQLite and PostgreSQL: the seat-detail
and call-attributes reports read from stored lines equal the same reports computed from the raw
rows, a call that changes after its line was stored (late backfill, transfer, queue entry moved
to another day) is re-flattened by the next pass and counted from raw rows until then, a pass
equals a rebuild, a new service (a restart) reads the same figures, and tenants stay apart."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.access_tables import TenantRow
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.report_tallies import SqlReportTallies
from ccbridge.domain.calls.model import CallRecord, CallSegment, CallTransfer
from ccbridge.domain.reports.call_lines import CallLine
from ccbridge.domain.reports.model import ReportKind
from ccbridge.services.reports import ReportService
from tests.integration.test_report_tallies import END, FIRST, LAST, START, _services, _tenant
from tests.integration.test_report_tallies import _write as _write_history
from tests.unit.reports.random_calls import random_history

PER_CALL = (ReportKind.SEAT_DETAIL, ReportKind.CALL_ATTRIBUTES)
SINCE = START - timedelta(days=1)


def _with_extras(calls: list[CallRecord]) -> list[CallRecord]:
    """Every third call carries IVR choices and a VIP tier (the attributes report's columns)."""
    out = []
    for i, c in enumerate(calls):
        if i % 3 == 0:
            tier = "gold" if i % 2 else "silver"
            c = replace(c, extras=(("ivr_menu", "1"), ("ivr_choice", str(i % 4)), ("vip", tier)))
        out.append(c)
    return out


async def _assert_same(raw: ReportService, stored: ReportService, agent: str = "A1") -> None:
    for kind in PER_CALL:
        a = await raw.run("acme", kind, FIRST, LAST)
        b = await stored.run("acme", kind, FIRST, LAST)
        assert b.table.rows == a.table.rows, kind
        assert a.table.rows, kind
    a = await raw.run("acme", ReportKind.SEAT_DETAIL, FIRST, LAST, agent_no=agent)
    b = await stored.run("acme", ReportKind.SEAT_DETAIL, FIRST, LAST, agent_no=agent)
    assert b.table.rows == a.table.rows
    assert a.table.rows


def _by_id(lines: list[CallLine]) -> dict[str, CallLine]:
    ids = [line.call_id for line in lines]
    assert len(ids) == len(set(ids)), "a call has one line"
    return {line.call_id: line for line in lines}


async def test_reports_from_stored_lines_equal_reports_from_raw_rows(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    calls, spans = random_history(21, agents=4, start=START)
    await CallRepository(sessions).upsert_many(_with_extras(calls))
    await _write_history(sessions, [], spans)
    raw, tallied = _services(sessions)
    await tallied.tallies.rebuild("acme", SINCE, END)

    stored = _by_id(await SqlReportTallies(sessions).read_lines("acme", [(SINCE, END)]))
    assert set(stored) == {c.call_id for c in calls}
    await _assert_same(raw, tallied)
    assert tallied.tallies.lines_from_store > 0

    # A restart: new objects over the same database read the same stored figures.
    _, restarted = _services(sessions)
    await _assert_same(raw, restarted)
    assert restarted.tallies.lines_from_store > 0


async def test_a_call_changed_after_it_was_flattened_counts_as_changed(
    engine: AsyncEngine,
) -> None:
    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    calls, spans = random_history(5, agents=3, start=START)
    await _write_history(sessions, calls, spans)
    raw, tallied = _services(sessions)
    store = SqlReportTallies(sessions)
    await tallied.tallies.rebuild("acme", SINCE, END)

    answered = next(c for c in calls if c.segments and not c.transfers and c.ended_at)
    leg = answered.segments[0]
    other = "A2" if leg.agent_no != "A2" else "A0"
    assert answered.ended_at is not None
    assert answered.answered_at is not None
    mid = answered.answered_at + (answered.ended_at - answered.answered_at) / 2
    transferred = replace(
        answered,
        version=answered.version + 1,
        agent_no=other,
        segments=(
            replace(leg, ended_at=mid),
            CallSegment(
                2,
                other,
                f"PJSIP/{other}",
                leg.skill_group,
                leg.caller,
                leg.callee,
                "blind_transfer",
                mid,
                answered.ended_at,
            ),
        ),
        transfers=(CallTransfer("blind", mid, leg.agent_no, other),),
    )
    # A late backfill: the region-less caller's number and the IVR path arrive afterwards.
    late = next(c for c in calls if c.queued_at and c.call_id != answered.call_id)
    backfilled = replace(
        late, version=late.version + 1, caller="01058001234", extras=(("ivr_menu", "9"),)
    )
    # The queue entry of a third call moves to the next UTC day (its line must move with it).
    moved = next(
        c
        for c in calls
        if c.queued_at
        and c.call_id not in (answered.call_id, late.call_id)
        and c.started_at < START + timedelta(hours=9)
    )
    assert moved.queued_at is not None
    next_day = moved.queued_at + timedelta(hours=10)
    moved_later = replace(moved, version=moved.version + 1, queued_at=next_day)
    await CallRepository(sessions).upsert_many([transferred, backfilled, moved_later])

    await _assert_same(raw, tallied, agent=other)  # before any pass: touched days from raw rows
    before = _by_id(await store.read_lines("acme", [(SINCE, END + timedelta(days=1))]))
    assert before[answered.call_id].disposition == "answered"

    assert await tallied.tallies.refresh() >= 1
    after = _by_id(await store.read_lines("acme", [(SINCE, END + timedelta(days=1))]))
    line = after[answered.call_id]
    assert (line.agents, line.transfers, line.disposition) == (
        f"{leg.agent_no}→{other}",
        1,
        "transferred",
    )
    assert (after[late.call_id].caller, after[late.call_id].region) == ("01058001234", "北京市")
    assert after[late.call_id].ivr_path == "9"
    assert after[moved.call_id].at == next_day
    assert set(after) == set(before)
    served = tallied.tallies.lines_from_store
    await _assert_same(raw, tallied, agent=other)
    assert tallied.tallies.lines_from_store > served


async def test_a_pass_after_each_write_equals_a_rebuild(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    calls, spans = random_history(13, agents=3, start=START)
    half = len(calls) // 2
    store = SqlReportTallies(sessions)
    raw, tallied = _services(sessions)
    await tallied.tallies.rebuild("acme", SINCE, END)  # coverage over an empty period
    assert await store.read_lines("acme", [(SINCE, END)]) == []

    await _write_history(sessions, calls[:half], spans)
    await tallied.tallies.refresh()
    await CallRepository(sessions).upsert_many(calls[half:])
    await tallied.tallies.refresh()
    incremental = _by_id(await store.read_lines("acme", [(SINCE, END)]))
    assert set(incremental) == {c.call_id for c in calls}

    await tallied.tallies.rebuild("acme", SINCE, END)
    assert _by_id(await store.read_lines("acme", [(SINCE, END)])) == incremental
    await _assert_same(raw, tallied)


async def test_lines_are_per_tenant_and_follow_the_tenants_zone(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    await _tenant(sessions, "acme")
    await _tenant(sessions, "other")
    mine, spans = random_history(2, agents=2, start=START)
    theirs, _ = random_history(3, agents=2, start=START, tenant="other")
    await _write_history(sessions, mine, spans)
    await CallRepository(sessions).upsert_many(theirs)
    store = SqlReportTallies(sessions)
    raw, tallied = _services(sessions)

    await tallied.tallies.rebuild("other", SINCE, END)
    assert await store.read_lines("acme", [(SINCE, END)]) == []
    assert set(_by_id(await store.read_lines("other", [(SINCE, END)]))) == {
        c.call_id for c in theirs
    }
    await tallied.tallies.rebuild("acme", SINCE, END)  # same days: the other's lines stay
    assert set(_by_id(await store.read_lines("acme", [(SINCE, END)]))) == {c.call_id for c in mine}
    assert len(await store.read_lines("other", [(SINCE, END)])) == len(theirs)
    await _assert_same(raw, tallied, agent="A0")

    # The stored local times are in the tenant's zone: a new zone is not read from them.
    async with sessions() as db, db.begin():
        await db.execute(update(TenantRow).where(TenantRow.id == "acme").values(timezone="UTC"))
    served = tallied.tallies.lines_from_store
    await _assert_same(raw, tallied, agent="A0")
    assert tallied.tallies.lines_from_store == served
