"""Issue 15: the outbound rate and concurrency caps count in the database, on SQLite and
PostgreSQL: they survive a restart, hold between processes dialling at once, and forget a
call once it is an hour old."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.repositories.outbound_dials import SqlOutboundLedger
from ccbridge.domain.agents.policy import RefusalCode, Refused
from ccbridge.services.call_control_ports import DialledCall
from tests.support.event_rig import build_world

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
FULL = Refused(RefusalCode.SEAT_RATE_LIMITED, "cap reached")


def cap(limit: int, seen: list[int] | None = None):  # type: ignore[no-untyped-def]
    """A dial policy with one cap: refuse once *limit* calls are in the window."""

    def decide(recent: Sequence[DialledCall]) -> Refused | None:
        if seen is not None:
            seen.append(len(recent))
        return FULL if len(recent) >= limit else None

    return decide


async def test_counted_calls_survive_a_restart_and_expire_after_the_hour(
    engine: AsyncEngine,
) -> None:
    await build_world(engine)  # tenants t1, t2
    sessions = create_session_factory(engine)
    first = SqlOutboundLedger(sessions)
    assert await first.admit("t1", "1101", "ccb-1", T0, cap(2)) is None
    assert await first.admit("t1", "1102", "ccb-2", T0 + timedelta(minutes=10), cap(2)) is None
    assert await first.admit("t2", "2001", "ccb-3", T0, cap(2)) is None  # another tenant

    restarted = SqlOutboundLedger(create_session_factory(engine))
    seen: list[int] = []
    refused = await restarted.admit("t1", "1101", "ccb-4", T0 + timedelta(minutes=30), cap(2, seen))
    assert refused == FULL
    assert seen == [2]  # both of t1's calls, not t2's
    got: list[Sequence[DialledCall]] = []

    def keep(recent: Sequence[DialledCall]) -> Refused | None:
        got.append(recent)
        return None

    # An hour after the first call it no longer counts; the second still does.
    assert await restarted.admit("t1", "1101", "ccb-5", T0 + timedelta(minutes=60), keep) is None
    assert [(d.call_id, d.agent_no) for d in got[0]] == [("ccb-2", "1102")]
    assert got[0][0].at == T0 + timedelta(minutes=10)


async def test_two_processes_dialling_at_once_never_both_take_the_last_place(
    engine: AsyncEngine, db_url: str
) -> None:
    await build_world(engine)
    other = create_engine(db_url)  # a second process: its own engine and connections
    try:
        ledgers = [
            SqlOutboundLedger(create_session_factory(engine)),
            SqlOutboundLedger(create_session_factory(other)),
        ]
        for limit in (1, 3):
            tenant = "t1" if limit == 1 else "t2"
            results = await asyncio.gather(
                *(
                    ledgers[i % 2].admit(tenant, "1101", f"ccb-{limit}-{i}", T0, cap(limit))
                    for i in range(8)
                )
            )
            assert sum(r is None for r in results) == limit, results
            assert sum(r == FULL for r in results) == 8 - limit
    finally:
        await other.dispose()
