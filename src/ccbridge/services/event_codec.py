"""The one JSON encoding of an event envelope (poll items and SSE ``data:`` lines share it)."""

from __future__ import annotations

from typing import Any

import orjson

from ccbridge.domain.journal.types import StoredEvent


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, keys in insertion order (orjson: ~10x the stdlib's speed)."""
    return orjson.dumps(value)


def envelope_bytes(event: StoredEvent) -> bytes:
    """The event's unfiltered envelope as JSON: the journal's copy when it has one."""
    return event.encoded if event.encoded is not None else orjson.dumps(event.envelope())


def sse_frame(seq: int, event_type: str, envelope: bytes) -> bytes:
    """One server-sent event: ``id`` = cursor, ``event`` = type, ``data`` = envelope."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (seq, event_type.encode(), envelope)
