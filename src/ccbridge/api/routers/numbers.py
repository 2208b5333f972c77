"""Inbound numbers (DIDs): assigned to a tenant by the platform admin, pointed at an IVR flow or
a skill group by the tenant's admin; the next call follows the change (no restart)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from ccbridge.api.schemas.routing import NumberAssignIn, NumberMapIn, NumberOut
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.domain.inbound_numbers import NumberTarget
from ccbridge.services.inbound_numbers import InboundNumberService

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["routing"])

TenantPath = Annotated[str, Path(max_length=64)]
NumberPath = Annotated[str, Path(max_length=32, description="Digits, optionally after `+`")]
MAX_PAGE = 500
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such number (or another tenant's)"},
}
_ASSIGN_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only the platform admin assigns and releases numbers"},
    404: {"description": "No such tenant"},
    409: {"description": "Another tenant holds the number (the answer never says which)"},
    422: {"description": "Not a 400/800/95xxx/96xxx number or a DID; `errors[].field`"},
}


def _svc(request: Request) -> InboundNumberService:
    service: InboundNumberService = request.app.state.numbers
    return service


@router.put(
    "/numbers/{number}",
    response_model=NumberOut,
    status_code=201,
    responses={200: {"description": "The tenant held it already"}, **_ASSIGN_RESPONSES},
)
async def assign_number(
    request: Request,
    response: Response,
    tenant_id: TenantPath,
    number: NumberPath,
    who: Annotated[Principal, Depends(require("tenants:write"))],
    body: NumberAssignIn | None = None,
) -> NumberOut:
    """Assign the number to the tenant (platform admin; audited as ``number.assign``).

    A number belongs to one tenant at a time. It routes nothing until the tenant's admin
    points it at a flow or a group (or the tenant has an IVR flow listing it).
    """
    description = body.description if body is not None else ""
    assigned, created = await _svc(request).assign(who, tenant_id, number, description)
    if not created:
        response.status_code = 200
    return NumberOut.of(assigned)


@router.get("/numbers", response_model=list[NumberOut], responses=_RESPONSES)
async def list_numbers(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
    after: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[NumberOut]:
    """The tenant's numbers in number order; pass the last number as ``after``."""
    return [NumberOut.of(n) for n in await _svc(request).list(tenant_id, after, limit)]


@router.get("/numbers/{number}", response_model=NumberOut, responses=_RESPONSES)
async def get_number(
    request: Request,
    tenant_id: TenantPath,
    number: NumberPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> NumberOut:
    """One of the tenant's numbers."""
    return NumberOut.of(await _svc(request).get(tenant_id, number))


@router.patch(
    "/numbers/{number}",
    response_model=NumberOut,
    responses={
        **_RESPONSES,
        422: {"description": "The tenant has no such flow or skill group (`target.id`)"},
    },
)
async def map_number(
    request: Request,
    tenant_id: TenantPath,
    number: NumberPath,
    body: NumberMapIn,
    who: Annotated[Principal, Depends(require("ivr:write"))],
) -> NumberOut:
    """Send the number's calls to an IVR flow or a skill group (audited as ``number.map``);
    the next call follows it."""
    target = NumberTarget(body.target.type, body.target.id) if body.target else None
    return NumberOut.of(await _svc(request).set_target(who, tenant_id, number, target))


@router.delete("/numbers/{number}", status_code=204, responses=_ASSIGN_RESPONSES)
async def release_number(
    request: Request,
    tenant_id: TenantPath,
    number: NumberPath,
    who: Annotated[Principal, Depends(require("tenants:write"))],
) -> Response:
    """Take the number back (platform admin; audited as ``number.release``): unrouted now."""
    await _svc(request).release(who, tenant_id, number)
    return Response(status_code=204)
