"""Tenants (client companies) and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from ccbridge.api.schemas.access import (
    TENANT_ID_PATTERN,
    AuditOut,
    AuditPage,
    TenantCreate,
    TenantOut,
    TenantPage,
    TenantPatch,
)
from ccbridge.api.schemas.bounds import Int64
from ccbridge.api.security import CurrentPrincipal, require
from ccbridge.domain.access import Principal
from ccbridge.services.tenants import AccessService, TenantChanges

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"])
audit_router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

MAX_PAGE = 500
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such tenant (or another tenant's)"}
}
TenantPath = Annotated[str, Path(max_length=64)]


def _access(request: Request) -> AccessService:
    service: AccessService = request.app.state.access
    return service


@router.post("", status_code=201, response_model=TenantOut, summary="Create a tenant")
async def create_tenant(request: Request, body: TenantCreate, who: CurrentPrincipal) -> TenantOut:
    """Platform admin only; ``id`` becomes ``CCB_TENANT`` and the queue-name prefix."""
    tenant = await _access(request).create_tenant(
        who,
        tenant_id=body.id,
        name=body.name,
        business_contact=body.business_contact.to_domain() if body.business_contact else None,
        technical_contact=body.technical_contact.to_domain() if body.technical_contact else None,
        timezone=body.timezone,
        pbx_id=body.pbx_id,
    )
    return TenantOut.from_domain(tenant, show_pbx=who.is_platform)


@router.get("", response_model=TenantPage, summary="List tenants")
async def list_tenants(
    request: Request,
    who: CurrentPrincipal,
    after: Annotated[str | None, Query(pattern=TENANT_ID_PATTERN)] = None,
    limit: Annotated[Int64, Query(ge=1, le=MAX_PAGE)] = 100,
) -> TenantPage:
    """Every tenant for the platform admin; everyone else sees only their own."""
    rows = await _access(request).list_tenants(who, after=after, limit=limit + 1)
    page = list(rows[:limit])
    nxt = page[-1].id if len(rows) > limit else None
    items = [TenantOut.from_domain(t, show_pbx=who.is_platform) for t in page]
    return TenantPage(items=items, next_after=nxt)


@router.get("/{tenant_id}", response_model=TenantOut, summary="One tenant", responses=_NOT_FOUND)
async def get_tenant(request: Request, tenant_id: TenantPath, who: CurrentPrincipal) -> TenantOut:
    """Another tenant's answers 404, exactly like a missing one."""
    tenant = await _access(request).get_tenant(who, tenant_id)
    return TenantOut.from_domain(tenant, show_pbx=who.is_platform)


@router.patch(
    "/{tenant_id}",
    response_model=TenantOut,
    summary="Change a tenant",
    responses=_NOT_FOUND
    | {
        409: {
            "description": "A move to another PBX while the tenant has signed-in seats or "
            "calls not ended (field ``body.pbx_id``)"
        }
    },
)
async def update_tenant(
    request: Request, tenant_id: TenantPath, body: TenantPatch, who: CurrentPrincipal
) -> TenantOut:
    """Name, contacts and time zone; ``status`` (suspend/terminate) and ``pbx_id`` (the
    tenant's PBX) are platform-admin only. A tenant moves to another PBX only while none of
    its seats is signed in and none of its calls is live (409 otherwise)."""
    changes = TenantChanges(
        name=body.name,
        business_contact=body.business_contact.to_domain() if body.business_contact else None,
        technical_contact=body.technical_contact.to_domain() if body.technical_contact else None,
        status=body.status,
        timezone=body.timezone,
        pbx_id=body.pbx_id,
    )
    tenant = await _access(request).update_tenant(who, tenant_id, changes)
    return TenantOut.from_domain(tenant, show_pbx=who.is_platform)


@audit_router.get("", response_model=AuditPage, summary="The audit log, newest first")
async def list_audit(
    request: Request,
    who: Annotated[Principal, Depends(require("audit:read"))],
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    before_id: Annotated[Int64 | None, Query(ge=1)] = None,
    limit: Annotated[Int64, Query(ge=1, le=MAX_PAGE)] = 100,
) -> AuditPage:
    """Who did what, when. Your own tenant's entries; the platform admin sees all or one.

    ``tenant`` naming another tenant answers 404.
    """
    rows = await _access(request).list_audit(
        who, tenant_id=tenant, before_id=before_id, limit=limit + 1
    )
    page = rows[:limit]
    nxt = page[-1].id if len(rows) > limit else None
    return AuditPage(items=[AuditOut.from_domain(e) for e in page], next_before_id=nxt)
