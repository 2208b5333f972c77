"""Ports of the floor services (implemented in ``ccbridge.db.repositories.floor``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ccbridge.domain.floor.alerts import FloorAlert


@dataclass(frozen=True, slots=True)
class StoredFloorRules:
    """A tenant's stored overrides, as JSON-able values."""

    tenant_id: str
    overrides: Mapping[str, Any]
    updated_at: datetime
    updated_by: str


class FloorRulesStore(Protocol):
    """Per-tenant floor-rule overrides."""

    async def get(self, tenant_id: str) -> StoredFloorRules | None:
        """The tenant's overrides, or None while the platform defaults apply."""
        ...

    async def put(self, rules: StoredFloorRules) -> None:
        """Insert or replace the tenant's overrides."""
        ...


class FloorAlertStore(Protocol):
    """Alert episodes, each written together with its journal event (outbox)."""

    async def open_alerts(self, tenant_id: str | None) -> list[FloorAlert]:
        """The alerts not yet cleared (of one tenant, or of all), oldest first."""
        ...

    async def raise_alerts(self, alerts: Sequence[FloorAlert]) -> None:
        """Store new alerts and append their ``floor.alert`` events in one transaction."""
        ...

    async def clear_alerts(self, alerts: Sequence[FloorAlert], at: datetime) -> None:
        """Close open alerts and append their ``floor.alert_cleared`` events together."""
        ...

    async def recent(self, tenant_id: str, limit: int) -> list[FloorAlert]:
        """The tenant's newest alerts, open or cleared, newest first."""
        ...
