"""Journal event types and the unsaved event the domain hands to the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1
"""Envelope version; fields are only ever added (docs/events.md, additive-only rule)."""


class EventType(StrEnum):
    """Every event type a CRM can receive; part of the public contract."""

    CALL_QUEUED = "call.queued"
    CALL_RINGING = "call.ringing"
    CALL_ANSWERED = "call.answered"
    CALL_TRANSFERRED = "call.transferred"
    CALL_HELD = "call.held"
    CALL_RESUMED = "call.resumed"
    CALL_CONFERENCED = "call.conferenced"
    CALL_RETURNED_TO_IVR = "call.returned_to_ivr"
    CALL_ENDED = "call.ended"
    CALL_ABANDONED = "call.abandoned"
    RECORDING_READY = "recording.ready"
    RECORDING_MISSING = "recording.missing"
    AGENT_STATE_CHANGED = "agent.state_changed"
    WRAPUP_SUBMITTED = "wrapup.submitted"
    CALLBACK_REQUESTED = "callback.requested"
    CALLBACK_DIALING = "callback.dialing"
    CALLBACK_CONNECTED = "callback.connected"
    CALLBACK_FAILED = "callback.failed"
    CALLBACK_CANCELLED = "callback.cancelled"
    FLOOR_ALERT = "floor.alert"
    FLOOR_ALERT_CLEARED = "floor.alert_cleared"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event not yet in the journal; the outbox assigns its cursor and id.

    ``key`` makes the event idempotent: the outbox derives the public id (a UUID) from
    ``tenant`` and ``key``, so re-deriving the same transition never yields a second event.
    """

    tenant: str
    type: EventType
    occurred_at: datetime
    key: str
    data: dict[str, Any] = field(default_factory=dict)
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the journal holds it: ``seq`` is the tenant's monotonic cursor."""

    tenant: str
    seq: int
    id: str
    type: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    call_id: str | None = None
    encoded: bytes | None = field(default=None, compare=False, repr=False)
    """The envelope as compact JSON, when the journal already encoded it (at append)."""

    @property
    def has_extras(self) -> bool:
        """Whether the tenant's extras switches have something to filter."""
        return bool(self.data.get("extras"))

    def envelope(self) -> dict[str, Any]:
        """The public JSON shape (docs/events.md): same bytes for poll, SSE and webhooks."""
        return envelope(
            self.tenant,
            self.seq,
            self.id,
            self.type,
            self.occurred_at,
            self.recorded_at,
            self.data,
            self.call_id,
        )


def envelope(
    tenant: str,
    seq: int,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    recorded_at: datetime,
    data: dict[str, Any],
    call_id: str | None,
) -> dict[str, Any]:
    """The envelope of an event from its fields (the journal builds it before the event)."""
    return {
        "id": event_id,
        "cursor": str(seq),
        "type": event_type,
        "schema_version": SCHEMA_VERSION,
        "tenant": tenant,
        "call_id": call_id,
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "recorded_at": recorded_at.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """A journal event as the fast read path returns it: the envelope's JSON bytes, unparsed.

    ``envelope`` may hold extras the tenant has not switched on when ``has_extras`` is true.
    """

    seq: int
    type: str
    envelope: bytes
    has_extras: bool
