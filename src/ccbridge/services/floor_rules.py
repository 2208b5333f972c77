"""Per-tenant floor rules: the platform defaults with a tenant's overrides, read and replaced."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from ccbridge.domain.access import Principal
from ccbridge.domain.floor.rules import FloorRules, FloorRulesError, overrides_of, with_overrides
from ccbridge.errors import CcbridgeError, ErrorCode
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.floor_ports import FloorRulesStore, StoredFloorRules

log = structlog.get_logger(__name__)


class FloorRulesInvalidError(CcbridgeError):
    """A floor-rule value is out of range or unknown (422 naming the field)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid request"


@dataclass(frozen=True, slots=True)
class TenantFloorRules:
    """A tenant's rules in force, and whether (and by whom) they were customised."""

    tenant_id: str
    rules: FloorRules
    customised: bool
    updated_at: datetime | None = None
    updated_by: str | None = None


class FloorRuleService:
    """Read and replace a tenant's floor rules; the evaluator reads them every second, so the
    effective rules are cached and a write refreshes the cache (one process owns them)."""

    def __init__(
        self,
        store: FloorRulesStore,
        defaults: FloorRules,
        audit: AuditRecorder,
        now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._defaults = defaults
        self._audit = audit
        self._now = now
        self._cache: dict[str, TenantFloorRules] = {}

    @property
    def defaults(self) -> FloorRules:
        """The platform's rules (settings)."""
        return self._defaults

    async def get(self, tenant_id: str) -> TenantFloorRules:
        """The tenant's rules in force (defaults where it set nothing)."""
        hit = self._cache.get(tenant_id)
        if hit is not None:
            return hit
        stored = await self._store.get(tenant_id)
        if stored is None:
            value = TenantFloorRules(tenant_id, self._defaults, customised=False)
        else:
            try:
                rules = with_overrides(self._defaults, stored.overrides)
            except FloorRulesError as exc:  # a stored rule the current code no longer accepts
                log.warning("floor_rules_stored_invalid", tenant=tenant_id, field=exc.field)
                rules = self._defaults
            value = TenantFloorRules(tenant_id, rules, True, stored.updated_at, stored.updated_by)
        self._cache[tenant_id] = value
        return value

    async def rules(self, tenant_id: str) -> FloorRules:
        """Just the rules in force."""
        return (await self.get(tenant_id)).rules

    async def put(
        self, who: Principal, tenant_id: str, overrides: Mapping[str, Any]
    ) -> TenantFloorRules:
        """Check and store the tenant's overrides (rules left out keep the defaults); audited."""
        try:
            rules = with_overrides(self._defaults, overrides)
        except FloorRulesError as exc:
            raise FloorRulesInvalidError(str(exc), field=f"body.{exc.field}") from exc
        stored = overrides_of(rules, overrides)
        now = self._now()
        await self._store.put(StoredFloorRules(tenant_id, stored, now, who.actor))
        self._cache.pop(tenant_id, None)
        await self._audit.record(
            who, tenant_id, "floor_rules.update", "floor_rules", tenant_id, stored
        )
        return await self.get(tenant_id)
