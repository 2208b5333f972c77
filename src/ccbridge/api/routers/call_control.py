"""Call control on an agent's current call: hold, mute, transfer, 3-way, hand back to IVR,
hang-up; and click-to-call. Every POST takes an ``Idempotency-Key`` (docs/call-control.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ccbridge.api.owner_forwarding import AT_PBX_OWNER
from ccbridge.api.schemas.call_control import (
    CallControlOut,
    ConferenceIn,
    DialIn,
    ReturnToIvrIn,
    TransferIn,
)
from ccbridge.api.schemas.seats import AgentNo
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.services.call_control import CallControlService, ControlResult
from ccbridge.services.idempotency import HEADER, Answer, IdempotencyService, fingerprint

router = APIRouter(
    prefix="/api/v1/tenants/{tenant_id}/seats/{agent_no}",
    tags=["call control"],
    dependencies=[AT_PBX_OWNER],  # the owner's AMI session and live calls (ADR 0031)
    responses={
        504: {
            "description": "With several nodes: the PBX owner took the forwarded request "
            "and did not answer in time; retry with the same Idempotency-Key"
        }
    },
)

TenantPath = Annotated[str, Path(max_length=64)]
AgentPath = Annotated[AgentNo, Path()]
Who = Annotated[Principal, Depends(require("seats:read"))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        max_length=128,
        description="Any unique string (a UUID); a replay answers the first answer and never "
        "dials twice. Kept 24 h.",
    ),
]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "The seat kind or the dial policy refuses it; `reason` names the rule"},
    404: {"description": "No such agent, target or tenant (or another tenant's)"},
    409: {"description": "No call to act on, or the call is not in the right state"},
    422: {"description": "A bad body field or Idempotency-Key, named in `errors`"},
    429: {"description": "A rate or concurrency cap of the dial policy; `reason` names it"},
    503: {"description": "Asterisk is unavailable"},
}


def _svc(request: Request) -> CallControlService:
    service: CallControlService = request.app.state.call_control
    return service


async def _once(
    request: Request,
    who: Principal,
    tenant_id: str,
    key: str | None,
    body: BaseModel | None,
    act: Callable[[], Awaitable[ControlResult]],
) -> JSONResponse:
    """Run *act* once per Idempotency-Key; a replay answers the stored answer."""
    idem: IdempotencyService = request.app.state.idempotency

    async def run() -> Answer:
        result = await act()
        out = CallControlOut(call_id=result.call_id, action=result.action, held=result.held)
        return Answer(200, out.model_dump(mode="json"))

    payload = body.model_dump(mode="json") if body is not None else None
    answer = await idem.run(
        tenant_id, who.actor, key, fingerprint("POST", request.url.path, payload), run
    )
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, answer.status, headers=headers)


def _post(path: str, summary: str) -> Callable[[Any], Any]:
    return router.post(path, response_model=CallControlOut, responses=_RESPONSES, summary=summary)


@_post("/call/hold", "Hold: the customer hears music on hold, the agent is free")
async def hold(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Event ``call.held``. Every seat kind may hold (SEAT-01)."""
    return await _once(
        request, who, tenant_id, key, None, lambda: _svc(request).hold(who, tenant_id, agent_no)
    )


@_post("/call/resume", "Resume: customer and agent talk again")
async def resume(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Event ``call.resumed``."""
    return await _once(
        request, who, tenant_id, key, None, lambda: _svc(request).resume(who, tenant_id, agent_no)
    )


@_post("/call/mute", "Mute: the customer stops hearing the agent")
async def mute(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Recorded on the call (no event)."""
    return await _once(
        request,
        who,
        tenant_id,
        key,
        None,
        lambda: _svc(request).mute(who, tenant_id, agent_no, True),
    )


@_post("/call/unmute", "Unmute")
async def unmute(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Recorded on the call (no event)."""
    return await _once(
        request,
        who,
        tenant_id,
        key,
        None,
        lambda: _svc(request).mute(who, tenant_id, agent_no, False),
    )


@_post("/call/transfer", "Transfer to an agent, a skill group or a number (blind or attended)")
async def transfer(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    body: TransferIn,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Event ``call.transferred`` when the PBX has moved the call. A number needs an
    inbound+outbound seat, passes the dial policy, and is only possible blind for an internal
    call (no transit: use a 3-way call)."""
    return await _once(
        request,
        who,
        tenant_id,
        key,
        body,
        lambda: _svc(request).transfer(
            who, tenant_id, agent_no, body.to_target(), attended=body.mode == "attended"
        ),
    )


@_post("/call/transfer/complete", "Complete the attended transfer (the agent leaves)")
async def complete_transfer(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Event ``call.transferred`` (kind ``attended``)."""
    return await _once(
        request,
        who,
        tenant_id,
        key,
        None,
        lambda: _svc(request).complete_transfer(who, tenant_id, agent_no),
    )


@_post("/call/transfer/cancel", "Cancel the attended transfer (back to the customer)")
async def cancel_transfer(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """No event: the call is unchanged."""
    return await _once(
        request,
        who,
        tenant_id,
        key,
        None,
        lambda: _svc(request).cancel_transfer(who, tenant_id, agent_no),
    )


@_post("/call/conference", "3-way call with an agent or a number (ConfBridge)")
async def conference(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    body: ConferenceIn,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Event ``call.conferenced``. Inbound+outbound seats only (SEAT-02)."""
    return await _once(
        request,
        who,
        tenant_id,
        key,
        body,
        lambda: _svc(request).conference(who, tenant_id, agent_no, body.to_target()),
    )


@_post("/call/conference/leave", "Leave the 3-way call")
async def leave_conference(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Refused (``NO_TRANSIT``) while it would leave a customer alone with an external number."""
    return await _once(
        request,
        who,
        tenant_id,
        key,
        None,
        lambda: _svc(request).leave_conference(who, tenant_id, agent_no),
    )


@_post("/call/ivr", "Hand the caller back to the IVR at a flow node")
async def return_to_ivr(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    body: ReturnToIvrIn,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Event ``call.returned_to_ivr``; with ``back_to_agent`` the caller rings this agent again
    when the flow ends."""
    return await _once(
        request,
        who,
        tenant_id,
        key,
        body,
        lambda: _svc(request).return_to_ivr(
            who, tenant_id, agent_no, body.flow_node, back_to_agent=body.back_to_agent
        ),
    )


@_post("/call/hangup", "Hang up the agent's current call")
async def hangup(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Event ``call.ended``. The wrap-up disposition is ``POST /api/v1/calls/{call_id}/wrapup``."""
    return await _once(
        request, who, tenant_id, key, None, lambda: _svc(request).hangup(who, tenant_id, agent_no)
    )


@_post("/dial", "Click-to-call (the agent's phone rings first) or an internal call")
async def dial(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    body: DialIn,
    who: Who,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Events ``call.ringing`` (the agent's phone), ``call.answered`` (the customer), then
    ``call.ended``. A number needs an inbound+outbound seat and passes the dial policy."""
    service = _svc(request)
    if body.agent_no is not None:
        other = body.agent_no
        return await _once(
            request,
            who,
            tenant_id,
            key,
            body,
            lambda: service.call_agent(who, tenant_id, agent_no, other),
        )
    number = body.number or ""
    return await _once(
        request, who, tenant_id, key, body, lambda: service.dial(who, tenant_id, agent_no, number)
    )
