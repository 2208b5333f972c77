"""Routing policies of a tenant's skill groups, and the call-back requests they produce."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from ccbridge.api.owner_forwarding import AT_PBX_OWNER
from ccbridge.api.routers.call_control import IdempotencyKey
from ccbridge.api.schemas.routing import (
    CallbackDialIn,
    CallbackOut,
    RoutingPolicyIn,
    RoutingPolicyOut,
)
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.domain.callbacks import CallbackStatus
from ccbridge.services.call_control import CallControlService
from ccbridge.services.callbacks import CallbackService
from ccbridge.services.idempotency import Answer, IdempotencyService, fingerprint
from ccbridge.services.routing_policies import RoutingPolicyService

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["routing"])

TenantPath = Annotated[str, Path(max_length=64)]
GroupPath = Annotated[str, Path(max_length=64, description="The entry skill group")]
RequestPath = Annotated[str, Path(max_length=32, description="The call-back request's id")]
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
    status: Annotated[CallbackStatus | None, Query(description="Only this status")] = None,
) -> list[CallbackOut]:
    """Call-back requests, newest first; pass the last ``id`` as ``before`` for the next page
    (``status=requested``: the ones waiting for an agent)."""
    found = await _callbacks(request).list(tenant_id, before, limit, status)
    return [CallbackOut.of(r) for r in found]


_CALLBACK_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such request (or another tenant's)"},
    409: {"description": "The request's status does not allow it (e.g. already connected)"},
}


@router.get(
    "/callback-requests/{request_id}", response_model=CallbackOut, responses=_CALLBACK_RESPONSES
)
async def get_callback_request(
    request: Request,
    tenant_id: TenantPath,
    request_id: RequestPath,
    _who: Annotated[Principal, Depends(require("calls:read"))],
) -> CallbackOut:
    """One call-back request with its status and attempts."""
    return CallbackOut.of(await _callbacks(request).get(tenant_id, request_id))


@router.post(
    "/callback-requests/{request_id}/dial",
    dependencies=[AT_PBX_OWNER],
    response_model=CallbackOut,
    responses={
        **_CALLBACK_RESPONSES,
        403: {"description": "The seat kind or the dial policy refuses it; `reason` names it"},
        422: {"description": "A bad body field or Idempotency-Key, named in `errors`"},
        429: {"description": "A rate or concurrency cap of the dial policy; `reason` names it"},
    },
)
async def dial_callback_request(
    request: Request,
    tenant_id: TenantPath,
    request_id: RequestPath,
    body: CallbackDialIn,
    who: Annotated[Principal, Depends(require("seats:read"))],
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Call the caller back: the agent's phone rings, then the caller's (click-to-call under
    the dial policy). Event ``callback.dialing``; when that call ends, ``callback.connected``,
    or ``callback.failed`` (``final: false`` while attempts remain)."""
    control: CallControlService = request.app.state.call_control

    async def dialler(who: Principal, tenant: str, agent_no: str, number: str) -> str:
        return (await control.dial(who, tenant, agent_no, number)).call_id

    async def run() -> Answer:
        done = await _callbacks(request).dial(who, tenant_id, request_id, body.agent_no, dialler)
        return Answer(200, CallbackOut.of(done).model_dump(mode="json"))

    idem: IdempotencyService = request.app.state.idempotency
    print_ = fingerprint("POST", request.url.path, body.model_dump(mode="json"))
    answer = await idem.run(tenant_id, who.actor, key, print_, run)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, answer.status, headers=headers)


@router.post(
    "/callback-requests/{request_id}/cancel",
    response_model=CallbackOut,
    responses=_CALLBACK_RESPONSES,
)
async def cancel_callback_request(
    request: Request,
    tenant_id: TenantPath,
    request_id: RequestPath,
    who: Annotated[Principal, Depends(require("seats:write"))],
) -> CallbackOut:
    """Nobody will call back (the CRM reached the caller another way…): ``cancelled``, event
    ``callback.cancelled`` with who cancelled (a supervisor or tenant admin). A request
    already over answers 409."""
    return CallbackOut.of(await _callbacks(request).cancel(who, tenant_id, request_id))
