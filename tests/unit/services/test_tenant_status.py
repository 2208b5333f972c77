"""The tenant-status cache: reads bounded by the TTL, one read per tenant at a time, and a
change made in this process wins over a read that started before it."""

from __future__ import annotations

import asyncio

from ccbridge.domain.access import TenantStatus
from ccbridge.services.tenant_status import TenantStatusCache


async def test_reads_once_per_ttl_and_concurrent_callers_share_one_read() -> None:
    tick = [0.0]
    reads: list[str] = []
    gate = asyncio.Event()

    async def read(tenant: str) -> TenantStatus | None:
        reads.append(tenant)
        await gate.wait()
        return TenantStatus.ACTIVE if tenant == "t1" else None

    cache = TenantStatusCache(read, ttl=5.0, monotonic=lambda: tick[0])
    waiting = [asyncio.create_task(cache.is_active("t1")) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    assert all(await asyncio.gather(*waiting))
    assert reads == ["t1"]
    tick[0] = 4.9
    assert await cache.is_active("t1")
    assert reads == ["t1"]
    tick[0] = 5.0
    assert await cache.is_active("t1")
    assert reads == ["t1", "t1"]
    assert not await cache.is_active("nobody")


async def test_a_change_made_here_beats_a_read_already_under_way() -> None:
    gate = asyncio.Event()

    async def stale_read(tenant: str) -> TenantStatus | None:
        await gate.wait()
        return TenantStatus.ACTIVE

    cache = TenantStatusCache(stale_read, monotonic=lambda: 0.0)
    pending = asyncio.create_task(cache.status("t1"))
    await asyncio.sleep(0)
    cache.changed("t1", TenantStatus.SUSPENDED)
    gate.set()
    assert await pending is TenantStatus.SUSPENDED
    assert await cache.status("t1") is TenantStatus.SUSPENDED
    cache.remember("t1", TenantStatus.ACTIVE)  # an older read from elsewhere does not win
    assert await cache.status("t1") is TenantStatus.SUSPENDED
