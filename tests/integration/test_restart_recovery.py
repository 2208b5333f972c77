"""A process that died mid-call: the next one takes over the open calls and settles them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ccbridge.db.repositories import CallRepository
from ccbridge.domain.calls.events import ChannelHungUp, ChannelSnapshot
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.services.calls import CallTrackingService
from tests.fakes.calls import MemoryCallStore

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _open(call_id: str, state: CallState = CallState.CONNECTED) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        started_at=T0,
        state=state,
        tenant="t1",
        caller="13800138000",
        callee="4008001234",
        skill_group="t1-sales",
        agent_no="1001",
        legs=(call_id, "1795433100.9"),
        version=4,
    )


async def test_open_calls_left_by_a_crash_are_reconciled_or_kept(
    call_repo: CallRepository,
) -> None:
    ended = replace(_open("1795433100.3"), state=CallState.ENDED, version=9)
    await call_repo.upsert_many([_open("1795433100.1"), _open("1795433100.2"), ended])
    restored = await call_repo.open_calls()
    assert {r.call_id for r in restored} == {"1795433100.1", "1795433100.2"}

    sink = MemoryCallStore()
    service = CallTrackingService(sink)
    assert service.restore(restored) == 2
    # The PBX still has call .2 (its channel is in the first resync); call .1 is gone.
    live = ChannelSnapshot(
        T0 + timedelta(minutes=5),
        "1795433100.2",
        "1795433100.2",
        "PJSIP/t-1",
        None,
        None,
        None,
        "Up",
    )
    closed = service.resync([live], T0 + timedelta(minutes=5))
    assert [c.call_id for c in closed] == ["1795433100.1"]
    await call_repo.upsert_many(sink.submitted)
    rec = await call_repo.get("1795433100.1")
    assert rec is not None
    assert (rec.state, rec.end_reason, rec.version) == (CallState.ENDED, "reconciled", 5)
    assert rec.agent_no == "1001"  # the four variables survive the restart
    assert [r.call_id for r in await call_repo.open_calls()] == ["1795433100.2"]


async def test_a_restored_call_still_ends_normally_from_live_events() -> None:
    service = CallTrackingService(MemoryCallStore())
    service.restore([_open("1795433100.1")])
    service.handle(
        [ChannelHungUp(T0 + timedelta(seconds=30), "1795433100.1", "1795433100.1", "PJSIP/x", "16")]
    )
    rec = service.get("1795433100.1")
    assert rec is not None
    assert (rec.state, rec.end_reason, rec.version) == (CallState.ENDED, "16", 5)
