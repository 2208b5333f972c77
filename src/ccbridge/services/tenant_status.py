"""One cached answer to "is this tenant active?" for every credential and every inbound call.

Each tenant's status is read at most every ``ttl`` seconds; a change made in this process
(suspend, reinstate, terminate) replaces the cached status at once, so it takes effect on the
next request and the next call. Another process (``ccbridge api`` beside ``ccbridge serve``)
sees the change within ``ttl``. While the store cannot be read, the last status read stands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ccbridge.domain.access import TenantStatus

DEFAULT_TTL_SECONDS = 5.0
CLOSED = frozenset({TenantStatus.SUSPENDED, TenantStatus.TERMINATED})

StatusRead = Callable[[str], Awaitable[TenantStatus | None]]
"""Reads one tenant's status from the store (``None``: no such tenant)."""


class TenantStatusCache:
    """Tenant statuses by id, read through to the store at most every ``ttl`` seconds."""

    def __init__(
        self,
        read: StatusRead,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._monotonic = monotonic
        self._cached: dict[str, tuple[float, TenantStatus | None]] = {}
        self._reading: dict[str, asyncio.Future[TenantStatus | None]] = {}
        self._writes: dict[str, int] = {}
        """Changes recorded per tenant: a read that started before one must not undo it."""
        self.reads = 0

    def read_through(self, read: StatusRead) -> None:
        """Read the store through *read* from now on: the service's read pool exists only
        once the service is wired, after the IVR runtime that shares this cache."""
        self._read = read

    async def status(self, tenant_id: str) -> TenantStatus | None:
        """The tenant's status (``None``: no such tenant); one store read per tenant at a time."""
        now = self._monotonic()
        hit = self._cached.get(tenant_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        reading = self._reading.get(tenant_id)
        if reading is None:
            writes = self._writes.get(tenant_id, 0)
            reading = asyncio.ensure_future(self._load(tenant_id, now, writes))
            self._reading[tenant_id] = reading
        return await asyncio.shield(reading)  # one caller going away must not cancel the others'

    async def is_active(self, tenant_id: str) -> bool:
        """Say whether the tenant exists and is active (its credentials and numbers work)."""
        return await self.status(tenant_id) is TenantStatus.ACTIVE

    async def is_closed(self, tenant_id: str) -> bool:
        """Say whether the tenant is suspended or terminated (its numbers are not routed); a
        tenant the store does not know is not closed (a configured route still works)."""
        return await self.status(tenant_id) in CLOSED

    def changed(self, tenant_id: str, status: TenantStatus | None) -> None:
        """Record a status this process just wrote (effective at once, no store read)."""
        self._writes[tenant_id] = self._writes.get(tenant_id, 0) + 1
        self._cached[tenant_id] = (self._monotonic(), status)

    def remember(self, tenant_id: str, status: TenantStatus | None) -> None:
        """Keep a status read elsewhere in the same transaction as other work (a key look-up)."""
        now = self._monotonic()
        hit = self._cached.get(tenant_id)
        if self._ttl <= 0 or (hit is not None and now - hit[0] < self._ttl):
            return  # what is cached is as fresh, and may be a change made meanwhile
        self._cached[tenant_id] = (now, status)

    async def _load(self, tenant_id: str, now: float, writes: int) -> TenantStatus | None:
        try:
            self.reads += 1
            status = await self._read(tenant_id)
        except Exception:
            hit = self._cached.get(tenant_id)
            if hit is None:
                raise
            return hit[1]  # the store is unreachable: the last status read stands
        finally:
            del self._reading[tenant_id]
        if self._writes.get(tenant_id, 0) != writes:  # changed here while the read ran
            return self._cached[tenant_id][1]
        if self._ttl > 0:
            self._cached[tenant_id] = (now, status)
        return status
