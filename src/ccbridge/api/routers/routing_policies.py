"""Routing policies of a tenant's skill groups, and the call-back requests they produce."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from ccbridge.api.schemas.routing import CallbackOut, RoutingPolicyIn, RoutingPolicyOut
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.services.callbacks import CallbackService
from ccbridge.services.routing_policies import RoutingPolicyService

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["routing"])

TenantPath = Annotated[str, Path(max_length=64)]
GroupPath = Annotated[str, Path(max_length=64, description="The entry skill group")]
MAX_PAGE = 500
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No policy for the group (or another tenant's)"},
}


def _policies(request: Request) -> RoutingPolicyService:
    service: RoutingPolicyService = request.app.state.routing_policies
    return service


def _callbacks(request: Request) -> CallbackService:
    service: CallbackService = request.app.state.callbacks
    return service


@router.put(
    "/routing-policies/{group}",
    response_model=RoutingPolicyOut,
    responses={
        **_RESPONSES,
        422: {"description": "A group the tenant lacks, a wait that cannot apply…; `field`"},
    },
)
async def put_routing_policy(
    request: Request,
    tenant_id: TenantPath,
    group: GroupPath,
    body: RoutingPolicyIn,
    who: Annotated[Principal, Depends(require("ivr:write"))],
) -> RoutingPolicyOut:
    """Create or replace the policy of calls routed to ``group`` (audited as
    ``routing_policy.put``); the next call follows it."""
    document = body.model_dump(mode="json", exclude_none=True)
    return RoutingPolicyOut.of(await _policies(request).put(who, tenant_id, group, document))


@router.get("/routing-policies", response_model=list[RoutingPolicyOut], responses=_RESPONSES)
async def list_routing_policies(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> list[RoutingPolicyOut]:
    """The tenant's policies by group."""
    return [RoutingPolicyOut.of(r) for r in await _policies(request).list(tenant_id)]


@router.get("/routing-policies/{group}", response_model=RoutingPolicyOut, responses=_RESPONSES)
async def get_routing_policy(
    request: Request,
    tenant_id: TenantPath,
    group: GroupPath,
    _who: Annotated[Principal, Depends(require("ivr:read"))],
) -> RoutingPolicyOut:
    """One group's policy."""
    return RoutingPolicyOut.of(await _policies(request).get(tenant_id, group))


@router.delete("/routing-policies/{group}", status_code=204, responses=_RESPONSES)
async def delete_routing_policy(
    request: Request,
    tenant_id: TenantPath,
    group: GroupPath,
    who: Annotated[Principal, Depends(require("ivr:write"))],
) -> Response:
    """Remove the policy: calls to the group are queued plainly again."""
    await _policies(request).delete(who, tenant_id, group)
    return Response(status_code=204)


@router.get("/callback-requests", response_model=list[CallbackOut])
async def list_callback_requests(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("calls:read"))],
    before: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[CallbackOut]:
    """Call-back requests, newest first; pass the last ``id`` as ``before`` for the next page."""
    return [CallbackOut.of(r) for r in await _callbacks(request).list(tenant_id, before, limit)]
