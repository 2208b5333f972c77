"""Queue figures from the calls in progress: how many wait per skill group, and for how long."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ccbridge.domain.calls.model import CallRecord, CallState

WAITING_STATES = frozenset({CallState.QUEUED, CallState.AGENT_RINGING})
"""A call waits from entering the queue until an agent answers (ringing agents included)."""


@dataclass(frozen=True, slots=True)
class QueueWait:
    """Calls waiting in one tenant's skill group, and the oldest one's wait in seconds."""

    tenant: str
    skill_group: str
    waiting: int
    longest_wait_s: float


def waiting_by_queue(calls: Iterable[CallRecord], now: datetime) -> list[QueueWait]:
    """Group the waiting calls by (tenant, skill group); calls not yet attributed are skipped."""
    counts: dict[tuple[str, str], int] = {}
    oldest: dict[tuple[str, str], datetime] = {}
    for call in calls:
        if call.state not in WAITING_STATES or call.tenant is None or call.skill_group is None:
            continue
        key = (call.tenant, call.skill_group)
        counts[key] = counts.get(key, 0) + 1
        since = call.queued_at or call.started_at
        if key not in oldest or since < oldest[key]:
            oldest[key] = since
    return [
        QueueWait(t, g, n, max(0.0, (now - oldest[(t, g)]).total_seconds()))
        for (t, g), n in sorted(counts.items())
    ]
