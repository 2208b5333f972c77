"""Call control in the database: Idempotency-Key claims are atomic, and call-control steps
reach the event journal with the four variables, once, through the call store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_session_factory
from ccbridge.db.journal import SqlJournal
from ccbridge.db.repositories.idempotency import IdempotencyRepository
from ccbridge.domain.calls.events import (
    AgentAnswered,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelVariableSet,
)
from ccbridge.domain.calls.model import CallControl
from ccbridge.domain.calls.tracker import CallTracker
from tests.support.call_writes import JournalledCalls

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
L1 = "1795433102.17"


async def _tenant(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (id, name, business_contact, technical_contact, status, "
                "timezone, created_at) VALUES ('t1', 'T1', NULL, NULL, 'active', "
                "'Asia/Shanghai', :at)"
            ),
            {"at": T0},
        )


async def test_of_concurrent_claims_of_one_key_exactly_one_wins(engine: AsyncEngine) -> None:
    await _tenant(engine)
    repo = IdempotencyRepository(create_session_factory(engine))
    claims = await asyncio.gather(
        *(repo.claim("t1", "k1", f"user:{n}", "fp", T0) for n in range(8))
    )
    assert sum(1 for c in claims if c is None) == 1
    assert all(c is not None and c.status is None for c in claims if c is not None)
    await repo.finish("t1", "k1", 200, {"call_id": "c1"})
    again = await repo.claim("t1", "k1", "user:9", "fp", T0)
    assert again is not None
    assert (again.status, again.body) == (200, {"call_id": "c1"})
    await repo.release("t1", "k1")  # a finished answer is never released
    assert await repo.claim("t1", "k1", "user:9", "fp", T0) is not None
    assert await repo.claim("t1", "k2", "user:9", "fp", T0) is None
    await repo.release("t1", "k2")
    assert await repo.claim("t1", "k2", "user:9", "fp", T0) is None
    assert await repo.purge(T0 + timedelta(seconds=1)) == 2


async def test_hold_and_resume_reach_the_journal_once_with_the_four_variables(
    engine: AsyncEngine,
) -> None:
    await _tenant(engine)
    sessions = create_session_factory(engine)
    journal = SqlJournal(sessions)
    calls = JournalledCalls(engine, journal)
    tracker = CallTracker()
    trunk = "PJSIP/trunk-00000001"
    tracker.apply_all(
        [
            ChannelCreated(T0, L1, L1, trunk, "13800138000", None, "4008001234", "in"),
            ChannelVariableSet(T0, L1, L1, trunk, "CCB_TENANT", "t1"),
            CallerJoinedQueue(T0, L1, L1, trunk, "t1-sales", "13800138000", None),
            AgentAnswered(T0, L1, L1, trunk, "t1-sales", "Local/1101@agents", "1101 A"),
        ]
    )
    first = tracker.get(L1)
    assert first is not None
    await calls.upsert_many([first])
    held = tracker.note(L1, CallControl("held", T0 + timedelta(seconds=5), "1101"))
    assert held is not None
    await calls.upsert_many([held])
    resumed = tracker.note(L1, CallControl("resumed", T0 + timedelta(seconds=9), "1101"))
    assert resumed is not None
    await calls.upsert_many([resumed])
    await calls.upsert_many([resumed])  # a replayed snapshot adds nothing
    events = await journal.list_after("t1", 0, 100)
    assert [e.type for e in events] == ["call.queued", "call.answered", "call.held", "call.resumed"]
    four = {
        "agent_no": "1101",
        "skill_group": "t1-sales",
        "caller": "+8613800138000",
        "callee": "+864008001234",
        "caller_original": "13800138000",
        "callee_original": "4008001234",
    }
    assert events[2].data["params"] == four
    assert events[3].data["params"] == four
    assert events[2].data["control"] == {"kind": "held", "agent_no": "1101"}
    stored = await calls.get_with_params(L1, "t1")
    assert stored is not None
    assert [c.kind for c in stored.controls] == ["held", "resumed"]
