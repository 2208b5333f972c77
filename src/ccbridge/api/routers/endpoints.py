"""A tenant's phones (endpoints): the only interfaces its seats can join queues on (ADR 0009)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from ccbridge.api.schemas.bounds import Int64
from ccbridge.api.schemas.endpoints import EndpointIn, EndpointOut
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.services.endpoints import EndpointService

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["endpoints"])

TenantPath = Annotated[str, Path(max_length=64)]
EndpointPath = Annotated[str, Path(max_length=64)]
MAX_PAGE = 500
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such endpoint (or another tenant's)"},
}
_CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_RESPONSES,
    409: {"description": "The phone is already claimed (the answer never says by whom)"},
    422: {"description": "Not a safe endpoint name; `errors[].field` names it (audited)"},
}


def _svc(request: Request) -> EndpointService:
    service: EndpointService = request.app.state.endpoints
    return service


@router.post("/endpoints", status_code=201, response_model=EndpointOut, responses=_CREATE_RESPONSES)
async def create_endpoint(
    request: Request,
    tenant_id: TenantPath,
    body: EndpointIn,
    who: Annotated[Principal, Depends(require("agents:write"))],
) -> EndpointOut:
    """Claim a phone for the tenant; a phone is claimed by one tenant at a time."""
    endpoint = await _svc(request).create(
        who, tenant_id, body.technology, body.name, body.description
    )
    return EndpointOut.of(endpoint)


@router.get("/endpoints", response_model=list[EndpointOut], responses=_RESPONSES)
async def list_endpoints(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("agents:read"))],
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[Int64, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[EndpointOut]:
    """The tenant's phones ordered by name; pass the last name as ``after`` for the next page."""
    return [EndpointOut.of(e) for e in await _svc(request).list(tenant_id, after, limit)]


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut, responses=_RESPONSES)
async def get_endpoint(
    request: Request,
    tenant_id: TenantPath,
    endpoint_id: EndpointPath,
    _who: Annotated[Principal, Depends(require("agents:read"))],
) -> EndpointOut:
    """One phone."""
    return EndpointOut.of(await _svc(request).get(tenant_id, endpoint_id))


@router.delete("/endpoints/{endpoint_id}", status_code=204, responses=_RESPONSES)
async def delete_endpoint(
    request: Request,
    tenant_id: TenantPath,
    endpoint_id: EndpointPath,
    who: Annotated[Principal, Depends(require("agents:write"))],
) -> Response:
    """Release a phone (409 while it is an agent's phone or carries a signed-in seat)."""
    await _svc(request).delete(who, tenant_id, endpoint_id)
    return Response(status_code=204)
