"""The per-tenant facts cache reads the store once at a time, however many calls start."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from ccbridge.domain.dialing import NO_OUTBOUND
from ccbridge.services.ivr_ports import TenantFacts
from ccbridge.services.ivr_runtime import CachedTenantFacts

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


class SlowStore:
    """A tenant store that answers only when released, counting its reads."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.reads = 0
        self.fail = False

    async def facts(self, tenant_id: str, at: datetime) -> TenantFacts:
        self.reads += 1
        await self.release.wait()
        if self.fail:
            raise OSError("database down")
        return TenantFacts(f"zone-{self.reads}", frozenset({"sales"}), NO_OUTBOUND)


async def test_calls_starting_during_a_read_share_it() -> None:
    store = SlowStore()
    ticks = [0.0]
    cache = CachedTenantFacts(store, ttl=5.0, monotonic=lambda: ticks[0])
    calls = [asyncio.create_task(cache.facts("t1", AT)) for _ in range(50)]
    await asyncio.sleep(0)
    calls[0].cancel()  # one caller hanging up does not cancel the read for the others
    store.release.set()
    done = await asyncio.gather(*calls[1:])
    assert {f.timezone for f in done} == {"zone-1"}
    assert store.reads == 1
    with pytest.raises(asyncio.CancelledError):
        await calls[0]
    assert (await cache.facts("t1", AT)).timezone == "zone-1"  # cached within the TTL
    ticks[0] = 5.0
    store.fail = True
    stale = await asyncio.gather(*(cache.facts("t1", AT) for _ in range(10)))
    assert {f.timezone for f in stale} == {"zone-1"}  # unreadable: the last facts stand
    assert store.reads == 2
