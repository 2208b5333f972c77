"""Every read of the two write-heavy tables still finds an index (ADR 0029, issue 16 B8).

The call and journal write path keeps as few b-trees as the reads allow; this pins which
reads need which index. SQLite: ``EXPLAIN QUERY PLAN`` must show a SEARCH (or a covering
index scan for the ordered cross-tenant listing), never a full table SCAN. PostgreSQL: with
sequential scans switched off, the plan must not contain a ``Seq Scan`` (on empty tables the
planner would rightly prefer one, so this asks whether an index *can* serve the query).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.sqlite_reads import journal_page_sql

AT = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _named(sql: str, *names: str) -> str:
    """*sql* with its ``?`` marks replaced, in order, by *names*."""
    parts = sql.split("?")
    assert len(parts) == len(names) + 1
    return "".join(part + name for part, name in zip(parts, (*names, ""), strict=True))


POLL_PAGE = journal_page_sql(0)
POLL_PAGE_TYPED = journal_page_sql(1)
"""SQLite reads a page as one aggregated row (``sqlite_reads``); PostgreSQL as rows
(:data:`PG_READS`)."""
PG_READS = {
    "journal poll page (hot path)": (
        "SELECT seq, type, envelope, has_extras FROM events "
        "WHERE tenant = :t AND seq > :s ORDER BY seq LIMIT 100"
    ),
    "journal poll page of some types": (
        "SELECT seq, type, envelope, has_extras FROM events "
        "WHERE tenant = :t AND seq > :s AND type IN ('call.queued') ORDER BY seq LIMIT 100"
    ),
}

READS: dict[str, tuple[str, str]] = {
    # name: (SQL with :named parameters, the index that must serve it on SQLite)
    "journal poll page (hot path)": (
        _named(POLL_PAGE, ":t", ":s", "100"),
        "sqlite_autoindex_events_1",
    ),
    "journal poll page of some types": (
        _named(POLL_PAGE_TYPED, ":t", ":s", "'call.queued'", "100"),
        "sqlite_autoindex_events_1",
    ),
    "a call's events in order": (
        "SELECT seq, envelope FROM events "
        "WHERE tenant = :t AND seq > :s AND call_id = :c ORDER BY seq LIMIT 100",
        "ix_events_tenant_call_id",
    ),
    "a retried batch's event ids": (
        "SELECT tenant, seq FROM events WHERE id IN (:c, :t)",
        "sqlite_autoindex_events_2",
    ),
    "journal retention by age": (
        "SELECT tenant, seq FROM events WHERE recorded_at < :at LIMIT 5000",
        "ix_events_recorded_at",
    ),
    "calls of a tenant, newest first (keyset)": (
        "SELECT call_id FROM calls WHERE tenant = :t AND started_at < :at "
        "ORDER BY started_at DESC, call_id DESC LIMIT 50",
        "ix_calls_tenant_started_at",
    ),
    "calls of all tenants, newest first": (
        "SELECT call_id FROM calls ORDER BY started_at DESC, call_id DESC LIMIT 50",
        "ix_calls_started_at",
    ),
    "sticky routing: a caller's last call": (
        "SELECT agent_no FROM calls WHERE tenant = :t AND caller = :c "
        "ORDER BY started_at DESC LIMIT 1",
        "ix_calls_tenant_caller_started_at",
    ),
    "report tallies: calls written since": (
        "SELECT started_at, queued_at, ended_at FROM calls WHERE tenant = :t AND updated_at >= :at",
        "ix_calls_tenant_updated_at",
    ),
    "a batch's stored versions": (
        "SELECT call_id, version, tenant, caller, started_at FROM calls WHERE call_id IN (:c)",
        "sqlite_autoindex_calls_1",
    ),
}


def test_the_hot_poll_query_is_the_one_checked() -> None:
    checked = READS["journal poll page (hot path)"][0]
    assert checked == POLL_PAGE.replace("?", ":t", 1).replace("?", ":s", 1).replace("?", "100")


@pytest.mark.parametrize("name", sorted(READS))
async def test_each_read_uses_an_index(engine: AsyncEngine, name: str) -> None:
    sql, index = READS[name]
    params: dict[str, object] = {"t": "t1", "s": 0, "c": "1795433000.1", "at": AT}
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            params["at"] = AT.isoformat(" ", "microseconds")[:26]
            steps = [
                str(r[-1]) for r in await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"), params)
            ]
            assert any(f"INDEX {index}" in step for step in steps), steps
            scans = [s for s in steps if s.startswith("SCAN") and not s.startswith("SCAN (sub")]
            assert all("INDEX" in step for step in scans), steps
        else:
            sql = PG_READS.get(name, sql)
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " | ".join(str(r[0]) for r in await conn.execute(text(f"EXPLAIN {sql}"), params))
            assert "Seq Scan" not in plan, plan
