"""In-process fan-out of committed journal events to long-polls and SSE streams.

The journal calls :meth:`EventHub.publish` after each commit, in commit order. Waiters
are woken without any database polling; readers whose cursor is inside the recent buffer
are served from memory, so 500 SSE subscribers cost no extra queries. The hub only knows
what this process committed (ADR 0001: one process owns the PBX and writes the journal);
readers fall back to the database for anything older.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from ccbridge.domain.journal.types import StoredEvent

DEFAULT_BUFFER = 5000


def _seq(event: StoredEvent) -> int:
    return event.seq


@dataclass(slots=True)
class _Tenant:
    buffer: deque[StoredEvent]
    base: int | None = None
    """Cursor just before the oldest buffered event (reads after it are complete)."""
    last: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class EventHub:
    """Per-tenant recent events plus a wake-up signal on every commit."""

    def __init__(self, *, buffer: int = DEFAULT_BUFFER) -> None:
        self._size = buffer
        self._tenants: dict[str, _Tenant] = {}
        self.published = 0

    def _tenant(self, tenant: str) -> _Tenant:
        state = self._tenants.get(tenant)
        if state is None:
            state = self._tenants[tenant] = _Tenant(buffer=deque(maxlen=self._size))
        return state

    def publish(self, events: Sequence[StoredEvent]) -> None:
        """Take committed events (in commit order) and wake every waiter of their tenants."""
        touched: set[str] = set()
        for event in events:
            state = self._tenant(event.tenant)
            if event.seq <= state.last:
                continue
            if state.base is None:
                state.base = event.seq - 1
            if len(state.buffer) == state.buffer.maxlen:
                state.base = state.buffer[0].seq
            state.buffer.append(event)
            state.last = event.seq
            touched.add(event.tenant)
            self.published += 1
        for tenant in touched:
            state = self._tenants[tenant]
            state.changed.set()
            state.changed = asyncio.Event()

    def last_seq(self, tenant: str) -> int:
        """The newest cursor this process has published for *tenant* (0 if none)."""
        state = self._tenants.get(tenant)
        return 0 if state is None else state.last

    def read_after(self, tenant: str, after: int, limit: int) -> list[StoredEvent] | None:
        """Buffered events with ``seq > after``; ``None`` when the buffer cannot answer."""
        state = self._tenants.get(tenant)
        if state is None or state.base is None or after < state.base:
            return None
        buffer = state.buffer
        if not buffer or buffer[-1].seq <= after:
            return []
        # Bisect, not a scan: hundreds of streams at the tail each read only what is new.
        start = bisect.bisect_right(buffer, after, key=_seq)
        end = min(len(buffer), start + limit)
        if start > len(buffer) // 2:  # deque indexing is cheap near the ends
            return [buffer[i] for i in range(start, end)]
        return list(itertools.islice(buffer, start, end))

    async def wait(self, tenant: str, after: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until *tenant* has an event past *after* or *timeout* passes; say which."""
        state = self._tenant(tenant)
        if state.last > after:
            return True
        changed = state.changed
        try:
            async with asyncio.timeout(timeout):
                await changed.wait()
        except TimeoutError:
            return False
        return True
