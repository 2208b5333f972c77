"""A terminated tenant leaves the PBX: its seats close, its members leave the queues, and the
queue config loses its queues (its numbers stop routing through the tenant-status check)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

import structlog

from ccbridge.domain.access import TenantStatus
from ccbridge.services.seats import SeatService

log = structlog.get_logger(__name__)


class PbxRetirement:
    """``AccessService``'s status hook: on termination, retire the tenant from the PBX.

    :meth:`sweep` (a periodic job) catches terminations made by another process.
    """

    def __init__(
        self,
        seats: SeatService,
        publish_queues: Callable[[], Awaitable[object]],
        *,
        status: Callable[[str], Awaitable[TenantStatus | None]],
        seated_tenants: Callable[[], Awaitable[Collection[str]]],
    ) -> None:
        self._seats = seats
        self._publish = publish_queues
        self._status = status
        self._seated = seated_tenants

    async def sweep(self) -> int:
        """Close the seats of every terminated tenant still seated (a termination made by
        another process, or a retirement cut short), then publish the queues; return how many
        tenants were retired."""
        retired = 0
        for tenant_id in sorted(await self._seated()):
            if await self._status(tenant_id) is TenantStatus.TERMINATED:
                await self._seats.retire_tenant(tenant_id)
                retired += 1
        await self._publish()
        return retired

    async def on_status_changed(self, tenant_id: str, status: TenantStatus) -> None:
        """Members out first (their queues still exist), then the queue file without them.

        The status change has committed: a failure here is logged, never raised, and repaired
        by the next publish (every AMI login, every skill-group change) and the reconciler.
        """
        if status is not TenantStatus.TERMINATED:
            return
        try:
            await self._seats.retire_tenant(tenant_id)
        except Exception:
            log.exception("tenant_seats_retire_failed", tenant=tenant_id)
        try:
            await self._publish()
        except Exception:
            log.exception("tenant_queues_retire_failed", tenant=tenant_id)
        log.info("tenant_retired_from_pbx", tenant=tenant_id)
