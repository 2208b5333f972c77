"""Call-back requests and their lifecycle: a caller who waited the routing policy's maximum
time is called back by an agent, attempt by attempt, until someone answers, the attempts run
out, or the request is cancelled.

``requested`` → ``dialing`` (an agent's click-to-call to the caller, one attempt) →
``connected`` (the caller answered) or, unanswered, back to ``requested`` for the next attempt
until ``max_attempts``, then ``failed``. ``requested`` and ``dialing`` can be ``cancelled``.
Every change is one journal event (``callback.*``) keyed by the request, status and attempt,
so re-deriving never tells a CRM twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from ccbridge.domain.journal.types import EventType, NewEvent

MAX_ATTEMPTS = 3
"""Attempts before an unanswered request is given up (``failed``)."""


class CallbackStatus(StrEnum):
    """Where a call-back request is; ``connected``, ``failed`` and ``cancelled`` are final."""

    REQUESTED = "requested"
    DIALING = "dialing"
    CONNECTED = "connected"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """Say whether nothing more happens to the request."""
        return self in (CallbackStatus.CONNECTED, CallbackStatus.FAILED, CallbackStatus.CANCELLED)


class CallbackStateError(ValueError):
    """The request is not in a status that allows the step (e.g. dialling a cancelled one)."""


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """A caller who waited the maximum time and left a call-back request."""

    id: str
    tenant_id: str
    caller: str
    did: str
    skill_group: str
    call_id: str
    """The caller's original call (its Linkedid)."""
    waited_seconds: int
    requested_at: datetime
    status: CallbackStatus = CallbackStatus.REQUESTED
    attempts: int = 0
    """Attempts started so far (each is one click-to-call)."""
    agent_no: str | None = None
    """The agent of the current or last attempt."""
    attempt_call_id: str | None = None
    """The call of the current or last attempt (what decides its outcome)."""
    updated_at: datetime | None = None
    reason: str | None = None
    """Why the last attempt ended unanswered, or who cancelled."""


def start_attempt(
    request: CallbackRequest, agent_no: str, attempt_call_id: str, at: datetime
) -> CallbackRequest:
    """An agent dials the caller back: one more attempt."""
    if request.status is not CallbackStatus.REQUESTED:
        raise CallbackStateError(f"call-back request is {request.status.value}, not requested")
    return replace(
        request,
        status=CallbackStatus.DIALING,
        attempts=request.attempts + 1,
        agent_no=agent_no,
        attempt_call_id=attempt_call_id,
        updated_at=at,
        reason=None,
    )


def settle_attempt(
    request: CallbackRequest,
    answered: bool,
    at: datetime,
    *,
    reason: str = "no_answer",
    max_attempts: int = MAX_ATTEMPTS,
) -> CallbackRequest:
    """The attempt's call ended: answered is ``connected``; unanswered goes back to
    ``requested`` for the next attempt, or ``failed`` when the attempts are used up."""
    if request.status is not CallbackStatus.DIALING:
        raise CallbackStateError(f"call-back request is {request.status.value}, not dialing")
    if answered:
        return replace(request, status=CallbackStatus.CONNECTED, updated_at=at, reason=None)
    status = CallbackStatus.FAILED if request.attempts >= max_attempts else CallbackStatus.REQUESTED
    return replace(request, status=status, updated_at=at, reason=reason)


def cancel(request: CallbackRequest, by: str, at: datetime) -> CallbackRequest:
    """Nobody will call back (the CRM reached the caller otherwise, a duplicate…)."""
    if request.status.is_final:
        raise CallbackStateError(f"call-back request is already {request.status.value}")
    return replace(request, status=CallbackStatus.CANCELLED, updated_at=at, reason=by)


_EVENT_OF = {
    CallbackStatus.DIALING: EventType.CALLBACK_DIALING,
    CallbackStatus.CONNECTED: EventType.CALLBACK_CONNECTED,
    CallbackStatus.REQUESTED: EventType.CALLBACK_FAILED,
    CallbackStatus.FAILED: EventType.CALLBACK_FAILED,
    CallbackStatus.CANCELLED: EventType.CALLBACK_CANCELLED,
}


def status_event(after: CallbackRequest) -> NewEvent:
    """The journal event of a change into *after* (``callback.dialing``, ``.connected``,
    ``.failed`` with ``final`` false while attempts remain, ``.cancelled``)."""
    return NewEvent(
        tenant=after.tenant_id,
        type=_EVENT_OF[after.status],
        occurred_at=after.updated_at or after.requested_at,
        key=f"callback:{after.id}:{after.status.value}:{after.attempts}",
        call_id=after.call_id or None,
        data={
            "request_id": after.id,
            "status": after.status.value,
            "attempts": after.attempts,
            "agent_no": after.agent_no,
            "attempt_call_id": after.attempt_call_id,
            "reason": after.reason,
            "final": after.status.is_final,
        },
    )
