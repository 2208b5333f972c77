"""A call-back request's lifecycle: requested → dialing → connected, or back to requested
for the next attempt until the attempts run out (failed); cancelled while not over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ccbridge.domain.callbacks import (
    CallbackRequest,
    CallbackStateError,
    CallbackStatus,
    cancel,
    settle_attempt,
    start_attempt,
    status_event,
)
from ccbridge.domain.journal.types import EventType

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
REQUEST = CallbackRequest(
    id="cb1",
    tenant_id="t1",
    caller="13800138000",
    did="4008001234",
    skill_group="sales",
    call_id="1796300000.1",
    waited_seconds=240,
    requested_at=T0,
)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_an_answered_attempt_connects() -> None:
    dialing = start_attempt(REQUEST, "1101", "ccb-a1", at(1))
    assert (dialing.status, dialing.attempts, dialing.agent_no, dialing.attempt_call_id) == (
        CallbackStatus.DIALING,
        1,
        "1101",
        "ccb-a1",
    )
    done = settle_attempt(dialing, True, at(2))
    assert (done.status, done.attempts, done.updated_at) == (CallbackStatus.CONNECTED, 1, at(2))
    assert done.status.is_final


def test_unanswered_attempts_retry_then_fail() -> None:
    request = REQUEST
    for attempt in (1, 2):
        request = settle_attempt(
            start_attempt(request, "1101", f"c{attempt}", at(attempt)), False, at(attempt)
        )
        assert (request.status, request.attempts, request.reason) == (
            CallbackStatus.REQUESTED,
            attempt,
            "no_answer",
        )
    last = settle_attempt(start_attempt(request, "1102", "c3", at(3)), False, at(4))
    assert (last.status, last.attempts, last.agent_no) == (CallbackStatus.FAILED, 3, "1102")
    with pytest.raises(CallbackStateError):
        start_attempt(last, "1101", "c4", at(5))


def test_a_request_can_be_cancelled_until_it_is_over() -> None:
    gone = cancel(start_attempt(REQUEST, "1101", "c1", at(1)), "key:crm", at(2))
    assert (gone.status, gone.reason) == (CallbackStatus.CANCELLED, "key:crm")
    with pytest.raises(CallbackStateError):
        cancel(gone, "key:crm", at(3))
    with pytest.raises(CallbackStateError):
        settle_attempt(gone, True, at(3))
    with pytest.raises(CallbackStateError):
        start_attempt(start_attempt(REQUEST, "1101", "c1", at(1)), "1102", "c2", at(1))


def test_each_change_is_one_keyed_event() -> None:
    dialing = start_attempt(REQUEST, "1101", "c1", at(1))
    retry = settle_attempt(dialing, False, at(2))
    events = [status_event(r) for r in (dialing, retry, cancel(retry, "sup", at(3)))]
    assert [(e.type, e.data["status"], e.data["final"]) for e in events] == [
        (EventType.CALLBACK_DIALING, "dialing", False),
        (EventType.CALLBACK_FAILED, "requested", False),
        (EventType.CALLBACK_CANCELLED, "cancelled", True),
    ]
    assert [e.occurred_at for e in events] == [at(1), at(2), at(3)]
    assert all(e.call_id == "1796300000.1" for e in events)
    assert len({e.key for e in events}) == 3
    assert status_event(dialing).key == status_event(dialing).key  # re-deriving: the same key
    second = start_attempt(retry, "1101", "c2", at(4))
    assert status_event(second).key != events[0].key  # the next attempt is a new event
