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
from datetime import datetime

import orjson

from ccbridge.domain.journal.types import EncodedEvent, StoredEvent
from ccbridge.services.event_codec import envelope_bytes

DEFAULT_BUFFER = 5000

_Entry = tuple[int, str, bytes, bool]
"""``(seq, type, envelope JSON, has_extras)``: a plain tuple of atoms, which the cyclic garbage
collector stops tracking, so a full buffer (100,000 events for 20 tenants) adds nothing to a
full collection's pause (a buffer of event objects with their dicts cost pauses of 0.1–0.3 s)."""


def _seq(entry: _Entry) -> int:
    return entry[0]


@dataclass(slots=True)
class _Tenant:
    buffer: deque[_Entry]
    base: int | None = None
    """Cursor just before the oldest buffered event (reads after it are complete)."""
    last: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    waiters: int = 0


class EventHub:
    """Per-tenant recent events plus a wake-up signal on every commit."""

    def __init__(self, *, buffer: int = DEFAULT_BUFFER) -> None:
        self._size = buffer
        self._tenants: dict[str, _Tenant] = {}
        self.published = 0
        self.closed = False
        """Set at shutdown: streams and long-polls end instead of waiting for more."""

    def close(self) -> None:
        """Shutdown: wake every waiter; readers see :attr:`closed` and end their answer.

        Without it an SSE stream never ends, and the HTTP server waits for it forever.
        Webhook workers just wake once; the service stops them with everything else.
        """
        self.closed = True
        self._wake(set(self._tenants))

    def _tenant(self, tenant: str) -> _Tenant:
        state = self._tenants.get(tenant)
        if state is None:
            state = self._tenants[tenant] = _Tenant(buffer=deque(maxlen=self._size))
        return state

    def publish(self, events: Sequence[StoredEvent]) -> None:
        """Take committed events (in commit order) and wake every waiter of their tenants."""
        touched: set[str] = set()
        for event in events:
            entry = (event.seq, event.type, envelope_bytes(event), event.has_extras)
            if self._append(event.tenant, entry):
                touched.add(event.tenant)
        self._wake(touched)

    def publish_encoded(self, tenant: str, events: Sequence[EncodedEvent]) -> None:
        """Take one tenant's committed events read back from the database, in cursor order
        (another process wrote them; ``PgEventListener`` heard its commit)."""
        touched = False
        for e in events:
            touched |= self._append(tenant, (e.seq, e.type, e.envelope, e.has_extras))
        self._wake({tenant} if touched else set())

    def _append(self, tenant: str, entry: _Entry) -> bool:
        state = self._tenant(tenant)
        if entry[0] <= state.last:
            return False
        if state.base is None:
            state.base = entry[0] - 1
        if len(state.buffer) == state.buffer.maxlen:
            state.base = state.buffer[0][0]
        state.buffer.append(entry)
        state.last = entry[0]
        self.published += 1
        return True

    def _wake(self, tenants: set[str]) -> None:
        for tenant in tenants:
            state = self._tenants[tenant]
            state.changed.set()
            state.changed = asyncio.Event()

    def knows(self, tenant: str) -> bool:
        """Whether this hub has heard of *tenant* since it started."""
        return tenant in self._tenants and self._tenants[tenant].base is not None

    def tenants(self) -> list[str]:
        """Every tenant heard of (a listener catches them up after a reconnect)."""
        return [t for t in self._tenants if self.knows(t)]

    def last_seq(self, tenant: str) -> int:
        """The newest cursor this process has published for *tenant* (0 if none)."""
        state = self._tenants.get(tenant)
        return 0 if state is None else state.last

    def _entries(self, tenant: str, after: int, limit: int) -> list[_Entry] | None:
        state = self._tenants.get(tenant)
        if state is None or state.base is None or after < state.base:
            return None
        buffer = state.buffer
        if not buffer or buffer[-1][0] <= after:
            return []
        # Bisect, not a scan: hundreds of streams at the tail each read only what is new.
        start = bisect.bisect_right(buffer, after, key=_seq)
        end = min(len(buffer), start + limit)
        if start > len(buffer) // 2:  # deque indexing is cheap near the ends
            return [buffer[i] for i in range(start, end)]
        return list(itertools.islice(buffer, start, end))

    def read_encoded(self, tenant: str, after: int, limit: int) -> list[EncodedEvent] | None:
        """Buffered events with ``seq > after`` as envelope bytes; ``None`` when the buffer
        cannot answer (then ask the database)."""
        entries = self._entries(tenant, after, limit)
        return None if entries is None else [EncodedEvent(*e) for e in entries]

    def read_after(self, tenant: str, after: int, limit: int) -> list[StoredEvent] | None:
        """Like :meth:`read_encoded`, decoded back into events (tests, diagnostics)."""
        entries = self._entries(tenant, after, limit)
        return None if entries is None else [_decode(e) for e in entries]

    async def wait(self, tenant: str, after: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until *tenant* has an event past *after* or *timeout* passes; say which."""
        state = self._tenant(tenant)
        if state.last > after:
            return True
        changed = state.changed
        state.waiters += 1
        try:
            async with asyncio.timeout(timeout):
                await changed.wait()
        except TimeoutError:
            return False
        finally:
            state.waiters -= 1
        return True

    def watched(self, tenant: str) -> bool:
        """Whether a long-poll or stream of *tenant* is waiting for its next event."""
        return self.waiting(tenant) > 0

    def waiting(self, tenant: str) -> int:
        """How many long-polls, streams and webhook workers of *tenant* wait right now."""
        state = self._tenants.get(tenant)
        return 0 if state is None else state.waiters

    def skip_to(self, tenant: str, last: int) -> None:
        """Note that *tenant* has events up to *last* without holding them (nobody waits for
        them here): the buffer is dropped, so readers go to the database until it refills."""
        state = self._tenant(tenant)
        if last <= state.last:
            return
        state.buffer.clear()
        state.base = None
        state.last = last
        self._wake({tenant})


def _decode(entry: _Entry) -> StoredEvent:
    """The event a buffered envelope was encoded from."""
    env = orjson.loads(entry[2])
    return StoredEvent(
        tenant=env["tenant"],
        seq=entry[0],
        id=env["id"],
        type=entry[1],
        occurred_at=datetime.fromisoformat(env["occurred_at"]),
        recorded_at=datetime.fromisoformat(env["recorded_at"]),
        data=env["data"],
        call_id=env["call_id"],
        encoded=entry[2],
    )
