"""Call-back requests worked to an end, on SQLite and PostgreSQL: each step is a
compare-and-set on the stored status (two agents never dial one request), journalled once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.routing import CallbackRepository
from ccbridge.domain.access import Principal, Role
from ccbridge.domain.callbacks import CallbackStatus
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.services.callbacks import (
    CallbackConflictError,
    CallbackNotFoundError,
    CallbackService,
)
from tests.support.event_rig import build_world

AGENT = Principal(actor="token:a1101", role=Role.AGENT, tenant_id="t1", agent_no="1101")
SUPERVISOR = Principal(actor="token:sup", role=Role.SUPERVISOR, tenant_id="t1")
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


class Calls:
    """The attempts' calls as the tracker would hold them."""

    def __init__(self) -> None:
        self.records: dict[str, CallRecord] = {}
        self.dialled: list[tuple[str, str]] = []

    async def dial(self, who: Principal, tenant: str, agent_no: str, number: str) -> str:
        call_id = f"ccb-{len(self.dialled) + 1}"
        self.dialled.append((agent_no, number))
        self.records[call_id] = CallRecord(call_id, T0, CallState.AGENT_RINGING, tenant="t1")
        return call_id

    def end(self, call_id: str, answered: bool) -> None:
        self.records[call_id] = CallRecord(
            call_id,
            T0,
            CallState.ENDED,
            tenant="t1",
            answered_at=T0 if answered else None,
            ended_at=T0 + timedelta(minutes=1),
        )

    async def lookup(self, call_id: str) -> CallRecord | None:
        return self.records.get(call_id)


async def test_a_request_is_dialled_retried_connected_and_journalled(engine: AsyncEngine) -> None:
    world = await build_world(engine)
    clock = iter(T0 + timedelta(seconds=s) for s in range(1000))
    service = CallbackService(
        CallbackRepository(create_session_factory(engine)), lambda: next(clock), world.journal
    )
    calls = Calls()
    req = await service.request(
        "t1",
        caller="13800138000",
        did="4008001234",
        skill_group="sales",
        call_id="17963.1",
        waited_seconds=240,
    )
    assert [r.id for r in await service.list("t1", None, 10, CallbackStatus.REQUESTED)] == [req.id]
    with pytest.raises(CallbackNotFoundError):
        await service.get("t2", req.id)

    first = await service.dial(AGENT, "t1", req.id, "1101", calls.dial)
    assert (first.status, first.attempts, first.attempt_call_id) == (
        CallbackStatus.DIALING,
        1,
        "ccb-1",
    )
    assert calls.dialled == [("1101", "13800138000")]
    with pytest.raises(CallbackConflictError):  # already being dialled: no second call
        await service.dial(AGENT, "t1", req.id, "1101", calls.dial)
    assert len(calls.dialled) == 1
    assert await service.settle(calls.lookup) == 0  # the attempt's call is still up

    calls.end("ccb-1", answered=False)
    assert await service.settle(calls.lookup) == 1
    retry = await service.get("t1", req.id)
    assert (retry.status, retry.attempts, retry.reason) == (
        CallbackStatus.REQUESTED,
        1,
        "no_answer",
    )
    assert await service.settle(calls.lookup) == 0  # settled once

    second = await service.dial(AGENT, "t1", req.id, "1101", calls.dial)
    calls.end(second.attempt_call_id or "", answered=True)
    assert await service.settle(calls.lookup) == 1
    done = await service.get("t1", req.id)
    assert (done.status, done.attempts, done.attempt_call_id) == (
        CallbackStatus.CONNECTED,
        2,
        "ccb-2",
    )
    with pytest.raises(CallbackConflictError):
        await service.cancel(SUPERVISOR, "t1", req.id)

    events = await world.journal.list_after("t1", 0, 50)
    got = [(e.type, e.data.get("status"), e.data.get("attempts")) for e in events]
    assert got == [
        ("callback.requested", None, None),
        ("callback.dialing", "dialing", 1),
        ("callback.failed", "requested", 1),
        ("callback.dialing", "dialing", 2),
        ("callback.connected", "connected", 2),
    ]
    assert all(e.call_id == "17963.1" for e in events)


async def test_a_refused_dial_gives_the_claim_back_and_racing_agents_dial_once(
    engine: AsyncEngine,
) -> None:
    await build_world(engine)
    service = CallbackService(CallbackRepository(create_session_factory(engine)), lambda: T0)
    req = await service.request(
        "t1",
        caller="13800138000",
        did="4008001234",
        skill_group="sales",
        call_id="17963.2",
        waited_seconds=60,
    )

    async def refused(who: Principal, tenant: str, agent_no: str, number: str) -> str:
        raise PermissionError("outside business hours")

    with pytest.raises(PermissionError):
        await service.dial(AGENT, "t1", req.id, "1101", refused)
    back = await service.get("t1", req.id)
    assert (back.status, back.attempts) == (CallbackStatus.REQUESTED, 0)
    with pytest.raises(CallbackNotFoundError):  # an agent dials only as itself
        await service.dial(AGENT, "t1", req.id, "1102", Calls().dial)

    calls = Calls()
    other = Principal(actor="token:a1102", role=Role.AGENT, tenant_id="t1", agent_no="1102")
    results = await asyncio.gather(
        service.dial(AGENT, "t1", req.id, "1101", calls.dial),
        service.dial(other, "t1", req.id, "1102", calls.dial),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["CallbackConflictError", "CallbackRequest"]
    assert len(calls.dialled) == 1
    gone = await service.cancel(SUPERVISOR, "t1", req.id)
    assert (gone.status, gone.reason) == (CallbackStatus.CANCELLED, "token:sup")

    # Cancelled while the phones ring: the call is placed, the request stays cancelled.
    late = await service.request(
        "t1",
        caller="13700137000",
        did="4008001234",
        skill_group="sales",
        call_id="17963.4",
        waited_seconds=60,
    )

    async def cancelled_meanwhile(who: Principal, tenant: str, agent_no: str, number: str) -> str:
        await service.cancel(SUPERVISOR, "t1", late.id)
        return "ccb-late"

    got = await service.dial(AGENT, "t1", late.id, "1101", cancelled_meanwhile)
    assert (got.status, got.attempts) == (CallbackStatus.CANCELLED, 1)


async def test_requests_stored_before_the_lifecycle_read_as_requested(engine: AsyncEngine) -> None:
    await build_world(engine)
    sessions = create_session_factory(engine)
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO callback_requests (id, tenant_id, caller, did, skill_group, call_id,"
                " waited_seconds, status, requested_at) VALUES ('old1', 't1', '13800138000',"
                " '4008001234', 'sales', '17963.3', 30, 'open', :at)"
            ),
            {"at": T0},
        )
    service = CallbackService(CallbackRepository(sessions), lambda: T0)
    (old,) = await service.list("t1", None, 10, CallbackStatus.REQUESTED)
    assert (old.id, old.status, old.attempts) == ("old1", CallbackStatus.REQUESTED, 0)
    dialing = await service.dial(AGENT, "t1", "old1", "1101", Calls().dial)
    assert dialing.status is CallbackStatus.DIALING
