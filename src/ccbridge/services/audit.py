"""Record writes outside the access module in the append-only audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ccbridge.domain.access import AuditEntry, Principal
from ccbridge.services.ports import AccessUnitOfWork


class AuditRecorder:
    """Append one audit entry per write (who, what, when), each in its own transaction."""

    def __init__(self, uow: Callable[[], AccessUnitOfWork], now: Callable[[], datetime]) -> None:
        self._uow = uow
        self._now = now

    async def record(
        self,
        who: Principal,
        tenant_id: str | None,
        action: str,
        object_type: str,
        object_id: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Write the entry now; a failure propagates, so an unaudited write is never silent."""
        entry = AuditEntry(
            at=self._now(),
            tenant_id=tenant_id,
            actor=who.actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            detail=detail or {},
        )
        async with self._uow() as uow:
            await uow.audit.append(entry)
            await uow.commit()
