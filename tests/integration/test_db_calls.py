"""CallRepository against real SQLite and PostgreSQL: upsert guards, tenancy, keyset paging."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_engine, ping
from ccbridge.db.repositories import CallRepository
from ccbridge.domain.calls.model import CallRecord, CallState

T0 = datetime(2026, 11, 23, 9, 30, 0, 123456, tzinfo=UTC)


def call(
    call_id: str, *, version: int = 0, tenant: str | None = "acme", **kw: object
) -> CallRecord:
    """Build a record with sensible defaults for the test at hand."""
    fields: dict[str, object] = {"started_at": T0, "caller": "13800138000", "callee": "4001"}
    fields.update(kw)
    return CallRecord(call_id=call_id, version=version, tenant=tenant, **fields)  # type: ignore[arg-type]


async def test_upsert_inserts_then_updates(call_repo: CallRepository) -> None:
    first = call("1700000000.1", legs=("1700000000.1",))
    assert await call_repo.upsert_many([first]) == 1
    assert await call_repo.get(first.call_id) == first

    answered = dataclasses.replace(
        first,
        version=3,
        state=CallState.CONNECTED,
        agent_no="8001",
        skill_group="sales",
        agent_interface="PJSIP/8001",
        answered_at=T0 + timedelta(seconds=12),
        legs=("1700000000.1", "1700000000.2"),
    )
    assert await call_repo.upsert_many([answered]) == 1
    assert await call_repo.get(first.call_id) == answered
    assert await call_repo.count() == 1


async def test_replayed_batch_is_idempotent(call_repo: CallRepository) -> None:
    batch = [call(f"1700000000.{i}", version=i) for i in range(20)]
    await call_repo.upsert_many(batch)
    await call_repo.upsert_many(batch)
    assert await call_repo.count() == 20
    assert [await call_repo.get(r.call_id) for r in batch] == batch


async def test_stale_snapshot_never_overwrites_newer(call_repo: CallRepository) -> None:
    newer = call("c1", version=5, state=CallState.ENDED, end_reason="normal")
    older = call("c1", version=3, state=CallState.QUEUED)
    await call_repo.upsert_many([newer])
    assert await call_repo.upsert_many([older]) == 0
    assert await call_repo.get("c1") == newer


async def test_duplicate_ids_in_one_batch_keep_highest_version(call_repo: CallRepository) -> None:
    batch = [
        call("c1", version=2),
        call("c1", version=7, state=CallState.IVR),
        call("c1", version=4),
    ]
    assert await call_repo.upsert_many(batch) == 1
    stored = await call_repo.get("c1")
    assert stored is not None
    assert (stored.version, stored.state) == (7, CallState.IVR)


async def test_empty_batch_is_a_no_op(call_repo: CallRepository) -> None:
    assert await call_repo.upsert_many([]) == 0


async def test_get_hides_other_tenants_calls(call_repo: CallRepository) -> None:
    await call_repo.upsert_many([call("a1", tenant="acme"), call("b1", tenant="bolt")])
    assert await call_repo.get("a1", tenant="acme") is not None
    assert await call_repo.get("a1", tenant="bolt") is None
    assert await call_repo.get("a1") is not None  # no tenant: operator view
    assert await call_repo.get("missing") is None


async def test_list_filters_by_tenant_and_state(call_repo: CallRepository) -> None:
    await call_repo.upsert_many(
        [
            call("a1", tenant="acme", state=CallState.QUEUED),
            call("a2", tenant="acme", state=CallState.ENDED, started_at=T0 + timedelta(seconds=1)),
            call("b1", tenant="bolt", state=CallState.QUEUED),
        ]
    )
    assert [c.call_id for c in await call_repo.list(tenant="acme")] == ["a2", "a1"]
    queued = await call_repo.list(state=CallState.QUEUED)
    assert sorted(c.call_id for c in queued) == ["a1", "b1"]
    assert [c.call_id for c in await call_repo.list(tenant="bolt", state=CallState.ENDED)] == []
    assert await call_repo.count(tenant="acme") == 2


async def test_keyset_pages_see_every_row_once_despite_inserts(call_repo: CallRepository) -> None:
    # Groups of three calls share a started_at, so call_id must break ties.
    rows = [
        call(f"c{i:03d}", tenant="acme", started_at=T0 + timedelta(seconds=i // 3))
        for i in range(47)
    ]
    await call_repo.upsert_many([*rows, call("other", tenant="bolt")])

    seen: list[str] = []
    cursor: tuple[datetime, str] | None = None
    for page_no in range(100):
        page = await call_repo.list(tenant="acme", before=cursor, limit=10)
        if not page:
            break
        seen.extend(c.call_id for c in page)
        cursor = (page[-1].started_at, page[-1].call_id)
        # New calls arrive while a client pages; they are newer, so they never shift pages.
        await call_repo.upsert_many(
            [call(f"new{page_no}", tenant="acme", started_at=T0 + timedelta(hours=1 + page_no))]
        )
    expected = sorted(rows, key=lambda r: (r.started_at, r.call_id), reverse=True)
    assert seen == [r.call_id for r in expected]
    assert len(set(seen)) == len(seen) == 47


async def test_list_rejects_unbounded_limit(call_repo: CallRepository) -> None:
    with pytest.raises(ValueError, match="limit"):
        await call_repo.list(limit=0)


async def test_datetimes_round_trip_as_aware_utc(call_repo: CallRepository) -> None:
    shanghai = timezone(timedelta(hours=8))
    local = datetime(2026, 11, 23, 17, 30, 5, 654321, tzinfo=shanghai)
    await call_repo.upsert_many([call("tz", started_at=local, ended_at=local + timedelta(1))])
    stored = await call_repo.get("tz")
    assert stored is not None
    assert stored.started_at == local
    assert stored.started_at.utcoffset() == timedelta(0)
    assert stored.started_at.isoformat() == "2026-11-23T09:30:05.654321+00:00"
    assert stored.ended_at is not None
    assert stored.ended_at.utcoffset() == timedelta(0)
    assert stored.queued_at is None


async def test_naive_datetime_is_refused(call_repo: CallRepository) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        await call_repo.upsert_many([call("naive", started_at=datetime(2026, 1, 1))])  # noqa: DTZ001


async def test_chinese_text_round_trips(call_repo: CallRepository) -> None:
    record = call("zh", caller_name="张伟（北京）", skill_group="售后", end_reason="客户挂机")
    await call_repo.upsert_many([record])
    assert await call_repo.get("zh") == record


async def test_oversized_pbx_text_is_clamped_not_rejected(call_repo: CallRepository) -> None:
    hostile = "张" * 4000  # a 4 KB caller name must not wedge the writer's retry loop
    written = await call_repo.upsert_many([call("big", caller_name=hostile, caller="1" * 300)])
    assert written == 1
    got = await call_repo.get("big")
    assert got is not None
    assert got.caller_name == "张" * 255
    assert got.caller == "1" * 255


async def test_ping_succeeds_on_live_database(engine: AsyncEngine) -> None:
    await ping(engine)


async def test_ping_raises_when_database_is_unreachable() -> None:
    dead = create_engine("sqlite+aiosqlite:////nonexistent-dir/ccbridge.db")
    try:
        with pytest.raises(Exception, match="unable to open"):
            await ping(dead, timeout_s=2)
    finally:
        await dead.dispose()
        # aiosqlite's worker thread reports the failed connect a moment later; let it land
        # while the loop is still open.
        await asyncio.sleep(0.1)


async def test_sqlite_connections_get_pragmas(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as conn:
            values = [
                (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("foreign_keys", "journal_mode", "synchronous", "busy_timeout")
            ]
    finally:
        await engine.dispose()
    assert values == [1, "wal", 1, 30000]
