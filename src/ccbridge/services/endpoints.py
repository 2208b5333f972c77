"""A tenant's phones: claimed by tenant admins, and the one gate every interface passes through
before it can reach ``QueueAdd`` (sign-in, an agent's default phone, the reconciler)."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Collection
from datetime import datetime

import structlog

from ccbridge.domain.access import Principal, Role
from ccbridge.domain.endpoints import (
    Endpoint,
    InvalidEndpointError,
    Technology,
    interface_for,
)
from ccbridge.errors import CcbridgeError, ErrorCode, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.endpoint_ports import EndpointClaimedError, EndpointRepo

log = structlog.get_logger(__name__)

SYSTEM = Principal(actor="system:ccbridge", role=Role.PLATFORM_ADMIN, tenant_id=None)
"""Who the audit log names when no person or key asked (internal callers)."""
_SHOWN = 64


class EndpointRefusedError(CcbridgeError):
    """Raised when a value is not one of the tenant's endpoints, or cannot be one (422)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid request"


def _shown(value: str) -> str:
    """The refused value as the audit log keeps it: printable and short."""
    text = "".join(ch if ch.isprintable() else "?" for ch in value[:_SHOWN])
    return text + ("…" if len(value) > _SHOWN else "")


class EndpointGuard:
    """Resolve a client's choice of phone to one of its tenant's endpoints, or refuse it.

    Whatever reaches a queue is the stored endpoint's interface, never the request's string.
    """

    def __init__(self, repo: EndpointRepo, audit: AuditRecorder) -> None:
        self._repo = repo
        self._audit = audit

    async def resolve(
        self, who: Principal, tenant_id: str, selector: str, *, field: str
    ) -> Endpoint:
        """The tenant's endpoint named by id, name or interface; else audit and raise (422)."""
        endpoint = await self._repo.find(tenant_id, selector) if selector else None
        if endpoint is not None:
            return endpoint
        await self._audit.record(
            who,
            tenant_id,
            "endpoint.refused",
            "endpoint",
            _shown(selector) or "-",
            {"field": field, "value": _shown(selector)},
        )
        log.warning("endpoint_refused", tenant=tenant_id, field=field, actor=who.actor)
        raise EndpointRefusedError(
            f"{field} is not one of tenant {tenant_id}'s endpoints; a tenant admin claims "
            f"phones under /api/v1/tenants/{tenant_id}/endpoints",
            field=field,
        )

    async def owners(self, interfaces: Collection[str]) -> dict[str, str]:
        """Map each claimed interface among *interfaces* to its tenant (the reconciler's check)."""
        return await self._repo.owners(interfaces)


class EndpointService:
    """Tenant admins claim, list and release their phones; every write is audited."""

    def __init__(
        self,
        repo: EndpointRepo,
        audit: AuditRecorder,
        now: Callable[[], datetime],
        agents_context: str,
    ) -> None:
        self._repo = repo
        self._audit = audit
        self._now = now
        self._context = agents_context

    async def create(
        self,
        who: Principal,
        tenant_id: str,
        technology: Technology,
        name: str,
        description: str = "",
    ) -> Endpoint:
        """Claim a phone for the tenant: 422 for a bad name, 409 if anyone claimed it already."""
        try:
            interface = interface_for(technology, name, self._context)
        except InvalidEndpointError as exc:
            await self._refused(who, tenant_id, name, f"body.{exc.field}", str(exc))
            raise EndpointRefusedError(str(exc), field=f"body.{exc.field}") from exc
        endpoint = Endpoint(
            id=uuid.uuid4().hex,
            tenant_id=tenant_id,
            technology=technology,
            name=name,
            interface=interface,
            created_at=self._now(),
            created_by=who.actor,
            description=description,
        )
        try:
            created = await self._repo.create(endpoint)
        except EndpointClaimedError:
            await self._refused(who, tenant_id, name, "body.name", "already claimed")
            raise
        await self._audit.record(
            who,
            tenant_id,
            "endpoint.create",
            "endpoint",
            created.id,
            {"name": created.name, "interface": created.interface},
        )
        return created

    async def list(self, tenant_id: str, after: str | None, limit: int) -> builtins.list[Endpoint]:
        """The tenant's endpoints ordered by name."""
        return await self._repo.list(tenant_id, after=after, limit=limit)

    async def get(self, tenant_id: str, endpoint_id: str) -> Endpoint:
        """One endpoint by id (another tenant's is not found)."""
        found = await self._repo.find(tenant_id, endpoint_id)
        if found is None or found.id != endpoint_id:
            raise NotFoundError(f"endpoint {endpoint_id} not found")
        return found

    async def delete(self, who: Principal, tenant_id: str, endpoint_id: str) -> None:
        """Release a phone (409 while it is an agent's phone or carries a seat)."""
        found = await self.get(tenant_id, endpoint_id)
        if not await self._repo.delete(tenant_id, endpoint_id):
            raise NotFoundError(f"endpoint {endpoint_id} not found")
        await self._audit.record(
            who,
            tenant_id,
            "endpoint.delete",
            "endpoint",
            endpoint_id,
            {"name": found.name, "interface": found.interface},
        )

    async def _refused(
        self, who: Principal, tenant_id: str, value: str, field: str, why: str
    ) -> None:
        await self._audit.record(
            who,
            tenant_id,
            "endpoint.claim_refused",
            "endpoint",
            _shown(value) or "-",
            {"field": field, "value": _shown(value), "why": why},
        )
