"""Inbound numbers over the API: the platform admin assigns a number to a tenant, the tenant's
admin points it at an IVR flow or a skill group; calls see a change on the very next call."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime

from ccbridge.domain.access import AccessDeniedError, Principal
from ccbridge.domain.inbound_numbers import (
    InboundNumber,
    InvalidNumberError,
    NumberTarget,
    TargetType,
    classify_number,
)
from ccbridge.errors import CcbridgeError, ErrorCode, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.ivr_ports import IvrFlowRepo
from ccbridge.services.routing_cache import SnapshotCache
from ccbridge.services.routing_ports import InboundNumberRepo, NumberTakenError
from ccbridge.services.seat_ports import SkillGroupRepo


class NumberRefusedError(CcbridgeError):
    """Raised for a number that is not one, or a target the tenant does not have (422)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid request"


class NumberDirectory:
    """Which tenant and target a dialled number reaches, for calls (a cached snapshot)."""

    def __init__(
        self, repo: InboundNumberRepo, *, pbx: str | None = None, ttl: float = 30.0
    ) -> None:
        """*pbx*: route only the numbers of the tenants placed on it (ADR 0033)."""
        self._cache: SnapshotCache[dict[str, InboundNumber]] = SnapshotCache(self._load, ttl=ttl)
        self._repo = repo
        self._pbx = pbx

    async def _load(self) -> dict[str, InboundNumber]:
        return {n.number: n for n in await self._repo.every(self._pbx)}

    async def lookup(self, did: str) -> InboundNumber | None:
        """The number's assignment, or ``None`` when no tenant holds it."""
        return (await self._cache.get()).get(did) if did else None

    def invalidate(self) -> None:
        """A number changed: the next call reads the store again."""
        self._cache.invalidate()

    @property
    def loads(self) -> int:
        """How many times the table was read (tests count them)."""
        return self._cache.loads


class InboundNumberService:
    """Assign, map, list and release numbers; every change is audited and effective at once."""

    def __init__(
        self,
        repo: InboundNumberRepo,
        groups: SkillGroupRepo,
        flows: IvrFlowRepo,
        audit: AuditRecorder,
        now: Callable[[], datetime],
        on_change: Callable[[], None],
    ) -> None:
        self._repo = repo
        self._groups = groups
        self._flows = flows
        self._audit = audit
        self._now = now
        self._on_change = on_change

    async def assign(
        self, who: Principal, tenant_id: str, number: str, description: str = ""
    ) -> tuple[InboundNumber, bool]:
        """Assign *number* to the tenant (platform admin); ``(number, created)``.

        Assigning a number the tenant holds already changes nothing; one another tenant holds
        is refused (409, audited) without saying which tenant holds it.
        """
        if not who.is_platform:
            raise AccessDeniedError("only the platform admin assigns numbers to tenants")
        try:
            kind = classify_number(number)
        except InvalidNumberError as exc:
            raise NumberRefusedError(str(exc), field="number") from exc
        held = await self._repo.get(number)
        if held is not None and held.tenant_id == tenant_id:
            return held, False
        at = self._now()
        record = InboundNumber(
            number, tenant_id, kind, None, description, at, who.actor, at, who.actor
        )
        try:
            await self._repo.add(record)
        except NumberTakenError:
            await self._audit.record(
                who,
                tenant_id,
                "number.assign_refused",
                "inbound_number",
                number,
                {"why": "assigned to another tenant"},
            )
            raise
        await self._audit.record(
            who, tenant_id, "number.assign", "inbound_number", number, {"kind": kind.value}
        )
        self._on_change()
        return record, True

    async def release(self, who: Principal, tenant_id: str, number: str) -> None:
        """Take the number back from the tenant (platform admin); its calls are unrouted."""
        if not who.is_platform:
            raise AccessDeniedError("only the platform admin releases a tenant's numbers")
        found = await self.get(tenant_id, number)
        if not await self._repo.remove(tenant_id, number):
            raise NotFoundError(f"number {number} not found")
        await self._audit.record(
            who,
            tenant_id,
            "number.release",
            "inbound_number",
            number,
            {"target": _target_detail(found.target)},
        )
        self._on_change()

    async def set_target(
        self, who: Principal, tenant_id: str, number: str, target: NumberTarget | None
    ) -> InboundNumber:
        """Send the number's calls to one of the tenant's flows or skill groups (or nowhere)."""
        found = await self.get(tenant_id, number)
        if target is not None:
            await self._check_target(tenant_id, target)
        updated = await self._repo.set_target(tenant_id, number, target, self._now(), who.actor)
        if updated is None:
            raise NotFoundError(f"number {number} not found")
        await self._audit.record(
            who,
            tenant_id,
            "number.map",
            "inbound_number",
            number,
            {"target": _target_detail(target), "before": _target_detail(found.target)},
        )
        self._on_change()
        return updated

    async def get(self, tenant_id: str, number: str) -> InboundNumber:
        """The tenant's number; another tenant's (or none) is not found."""
        found = await self._repo.get(number)
        if found is None or found.tenant_id != tenant_id:
            raise NotFoundError(f"number {number} not found")
        return found

    async def list(
        self, tenant_id: str, after: str | None, limit: int
    ) -> builtins.list[InboundNumber]:
        """The tenant's numbers in number order."""
        return await self._repo.list(tenant_id, after=after, limit=limit)

    async def _check_target(self, tenant_id: str, target: NumberTarget) -> None:
        if target.type is TargetType.GROUP:
            exists = await self._groups.get(tenant_id, target.id) is not None
        else:
            exists = await self._flows.get_flow(tenant_id, target.id) is not None
        if not exists:
            raise NumberRefusedError(
                f"tenant {tenant_id} has no {target.type.value} {target.id}", field="target.id"
            )


def _target_detail(target: NumberTarget | None) -> dict[str, str] | None:
    return None if target is None else {"type": target.type.value, "id": target.id}
