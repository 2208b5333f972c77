"""Calls waiting and the longest wait, per tenant and skill group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.calls.queue_figures import QueueWait, waiting_by_queue

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def call(
    cid: str,
    state: CallState,
    *,
    group: str | None = "sales",
    tenant: str | None = "t1",
    queued_s: int | None = 0,
) -> CallRecord:
    return CallRecord(
        call_id=cid,
        started_at=T0,
        state=state,
        tenant=tenant,
        skill_group=group,
        queued_at=None if queued_s is None else T0 + timedelta(seconds=queued_s),
    )


def test_waiting_calls_are_counted_per_group_with_the_oldest_wait() -> None:
    now = T0 + timedelta(seconds=100)
    calls = [
        call("a", CallState.QUEUED, queued_s=10),
        call("b", CallState.AGENT_RINGING, queued_s=40),
        call("c", CallState.CONNECTED, queued_s=0),  # answered: no longer waiting
        call("d", CallState.QUEUED, group="support", queued_s=70),
        call("e", CallState.QUEUED, tenant="t2", queued_s=95),
        call("f", CallState.IVR, group=None, queued_s=None),  # not in a queue yet
    ]

    assert waiting_by_queue(calls, now) == [
        QueueWait("t1", "sales", 2, 90.0),
        QueueWait("t1", "support", 1, 30.0),
        QueueWait("t2", "sales", 1, 5.0),
    ]


def test_no_waiting_call_gives_no_row() -> None:
    assert waiting_by_queue([call("a", CallState.ENDED)], T0) == []
