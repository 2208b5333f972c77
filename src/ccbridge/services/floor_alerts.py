"""Floor alerts: evaluate every tenant's rules, raise and clear alert episodes in the journal.

One process owns the seats and the live queues (ADR 0001), so one job evaluates. Each alert
is stored together with its ``floor.alert`` event and closed together with its
``floor.alert_cleared`` event; the open ones are read back from the database every time, so a
restart continues the episodes it finds instead of repeating them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import structlog

from ccbridge.domain.floor.alerts import FloorAlert, FloorFacts, breaches, opened, settle
from ccbridge.domain.time import Clock
from ccbridge.errors import CcbridgeError
from ccbridge.services.floor_ports import FloorAlertStore
from ccbridge.services.floor_rules import FloorRuleService

log = structlog.get_logger(__name__)

RECENT_ALERTS = 1000
"""How many of a tenant's newest alerts ``GET …/seats/alerts`` lists."""
EVALUATE_SECONDS = 1.0


class FloorAlertService:
    """Judge the floor against the tenant's rules; list a tenant's alerts."""

    def __init__(
        self,
        *,
        store: FloorAlertStore,
        rules: FloorRuleService,
        facts: Callable[[str], Awaitable[FloorFacts]],
        tenants: Callable[[], Awaitable[set[str]]],
        clock: Clock,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        placed: Callable[[], Awaitable[frozenset[str]]] | None = None,
    ) -> None:
        """*tenants* names the tenants worth judging (seats signed in or calls waiting);
        *placed*, the tenants on this node's PBX: another PBX's floor is its owner's to judge
        (this node holds none of its calls), open alerts included (ADR 0033)."""
        self._placed = placed
        self._store = store
        self._rules = rules
        self._facts = facts
        self._tenants = tenants
        self._clock = clock
        self._new_id = new_id

    async def evaluate(self) -> int:
        """One pass over every tenant with a floor or an open alert; return alerts raised."""
        open_alerts = await self._store.open_alerts(None)
        by_tenant: dict[str, list[FloorAlert]] = {}
        for alert in open_alerts:
            by_tenant.setdefault(alert.tenant_id, []).append(alert)
        raised = 0
        judged = await self._tenants() | set(by_tenant)
        if self._placed is not None:
            judged &= await self._placed()
        for tenant_id in sorted(judged):
            try:
                raised += await self.evaluate_tenant(tenant_id, by_tenant.get(tenant_id, []))
            except CcbridgeError as exc:  # one tenant (e.g. deleted meanwhile) never stops all
                log.warning("floor_alerts_tenant_skipped", tenant=tenant_id, error=str(exc))
        return raised

    async def evaluate_tenant(self, tenant_id: str, open_alerts: list[FloorAlert]) -> int:
        """Settle one tenant's alerts with its floor now; return how many were raised."""
        rules = await self._rules.rules(tenant_id)
        facts = await self._facts(tenant_id)
        now = self._clock.now()
        outcome = settle(open_alerts, breaches(rules, facts, now))
        if outcome.clear:
            await self._store.clear_alerts(outcome.clear, now)
        new = [opened(b, self._new_id(), tenant_id, now) for b in outcome.raise_]
        if new:
            await self._store.raise_alerts(new)
        for alert in new:
            log.warning(
                "floor_alert",
                tenant=tenant_id,
                rule=alert.rule.value,
                agent_no=alert.agent_no,
                skill_group=alert.skill_group,
                value=alert.value,
            )
        for alert in outcome.clear:
            log.info("floor_alert_cleared", tenant=tenant_id, rule=alert.rule.value)
        return len(new)

    async def open_alerts(self, tenant_id: str) -> list[FloorAlert]:
        """The tenant's alerts still open, oldest first."""
        return await self._store.open_alerts(tenant_id)

    async def recent(self, tenant_id: str, limit: int = RECENT_ALERTS) -> list[FloorAlert]:
        """The tenant's newest alerts, open and cleared, newest first."""
        return await self._store.recent(tenant_id, limit)
