"""Seat actions (签入/签出, 示闲/示忙/小休, deferred actions) and the live seat view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from ccbridge.api.owner_forwarding import AT_PBX_OWNER
from ccbridge.api.schemas.seats import AgentNo, SeatOut, SignInIn, StateChangeIn
from ccbridge.api.security import CurrentPrincipal, require
from ccbridge.domain.access import AccessDeniedError, Principal, Role, scoped_tenant
from ccbridge.domain.agents.state import (
    CancelAfterCall,
    CancelBreakRequest,
    Input,
    PauseAfterCall,
    SetNotReady,
    SetReady,
    SignOutAfterCall,
    StartBreak,
)
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.seats import SeatResult, SeatService

router = APIRouter(tags=["seats"])

TenantPath = Annotated[str, Path(max_length=64)]
AgentPath = Annotated[AgentNo, Path()]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such agent (or another tenant's)"},
    409: {"description": "A seat rule refused the request; `reason` says which"},
}
_SIGN_IN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_RESPONSES,
    422: {"description": "The phone is not one of the tenant's endpoints; the field is named"},
}
_COMMANDS: dict[str, Callable[[str], Input]] = {
    "ready": lambda _r: SetReady(),
    "not_ready": SetNotReady,
    "break": lambda _r: StartBreak(),
    "cancel_break_request": lambda _r: CancelBreakRequest(),
    "pause_after_call": PauseAfterCall,
    "sign_out_after_call": lambda _r: SignOutAfterCall(),
    "cancel_after_call": lambda _r: CancelAfterCall(),
}


def _seats(request: Request) -> SeatService:
    service: SeatService = request.app.state.seats
    return service


def _audit(request: Request) -> AuditRecorder:
    recorder: AuditRecorder = request.app.state.audit
    return recorder


def _may_act_on(who: Principal, agent_no: str) -> None:
    """Supervisors and admins act on any seat of their tenant; an agent only on its own."""
    if who.has("seats:write"):
        return
    if who.role is Role.AGENT and who.agent_no == agent_no:
        return
    raise AccessDeniedError("this credential may only change its own seat")


def _readable_tenant(who: Principal, requested: str | None) -> str:
    """The one tenant a seat view shows: the caller's own, or the one a platform admin names."""
    who.require("seats:read")
    tenant_id = scoped_tenant(who, requested)
    if tenant_id is None:
        raise AccessDeniedError("name a tenant with ?tenant=")
    return tenant_id


def _current_call(request: Request, interface: str) -> str | None:
    lookup: Callable[[str], str | None] = request.app.state.current_call
    return lookup(interface)


async def _answer(
    request: Request, who: Principal, tenant_id: str, action: str, result: SeatResult
) -> SeatOut:
    session = result.session
    await _audit(request).record(
        who,
        tenant_id,
        f"seat.{action}",
        "seat",
        session.agent_no,
        {"state": session.status.state.value, "reason": session.status.reason},
    )
    return SeatOut.of(
        session,
        current_call=_current_call(request, session.interface) if session.is_open else None,
        queued=result.queued,
        pbx_synced=result.pbx_synced,
    )


@router.post(
    "/api/v1/tenants/{tenant_id}/seats/{agent_no}/sign-in",
    dependencies=[AT_PBX_OWNER],
    response_model=SeatOut,
    responses=_SIGN_IN_RESPONSES,
    summary="签入: sign an agent in on a seat",
)
async def sign_in(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Annotated[Principal, Depends(require("seats:read"))],
    body: SignInIn | None = None,
) -> SeatOut:
    """Join the agent's skill-group queues (paused first, then ready unless asked otherwise)
    on one of the tenant's endpoints: ``endpoint`` names it, else the agent's own phone."""
    _may_act_on(who, agent_no)
    opts = body or SignInIn()
    chosen, field = (
        (opts.interface, "body.interface")
        if opts.interface is not None
        else (opts.endpoint, "body.endpoint")
    )
    result = await _seats(request).sign_in(
        tenant_id,
        agent_no,
        ready=opts.ready,
        reason=opts.reason,
        endpoint=chosen,
        endpoint_field=field,
        who=who,
    )
    return await _answer(request, who, tenant_id, "sign_in", result)


@router.post(
    "/api/v1/tenants/{tenant_id}/seats/{agent_no}/sign-out",
    dependencies=[AT_PBX_OWNER],
    response_model=SeatOut,
    responses=_RESPONSES,
    summary="签出: sign an agent out",
)
async def sign_out(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Annotated[Principal, Depends(require("seats:read"))],
) -> SeatOut:
    """Leave every queue; refused on a call (use ``sign_out_after_call``)."""
    _may_act_on(who, agent_no)
    result = await _seats(request).sign_out(tenant_id, agent_no)
    return await _answer(request, who, tenant_id, "sign_out", result)


@router.post(
    "/api/v1/tenants/{tenant_id}/seats/{agent_no}/state",
    dependencies=[AT_PBX_OWNER],
    response_model=SeatOut,
    responses=_RESPONSES,
    summary="示闲/示忙/小休 and deferred actions",
)
async def change_state(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    body: StateChangeIn,
    who: Annotated[Principal, Depends(require("seats:read"))],
) -> SeatOut:
    """Apply one seat action; a break may be queued when the floor is full."""
    _may_act_on(who, agent_no)
    command = _COMMANDS[body.action](body.reason)
    result = await _seats(request).request(tenant_id, agent_no, command)
    return await _answer(request, who, tenant_id, body.action, result)


@router.get(
    "/api/v1/seats/live",
    dependencies=[AT_PBX_OWNER],
    response_model=list[SeatOut],
    summary="Every signed-in seat: state, since when, current call",
)
async def live(
    request: Request,
    who: CurrentPrincipal,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> list[SeatOut]:
    """The wallboard of the caller's tenant (the platform admin names one with ``tenant``)."""
    tenant_id = _readable_tenant(who, tenant)
    sessions = await _seats(request).live(tenant_id)
    return [
        SeatOut.of(s, current_call=_current_call(request, s.interface))
        for s in sorted(sessions, key=lambda s: s.agent_no)
    ]
