"""The supervisor's floor: wallboard (JSON and SSE), floor rules, alerts, listen/whisper/barge."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse

from ccbridge.api.owner_forwarding import AT_PBX_OWNER, AT_PBX_OWNER_STREAM
from ccbridge.api.schemas.floor import (
    FloorRulesIn,
    FloorRulesOut,
    SeatAlertOut,
    SpyIn,
    SpyOut,
    WallboardOut,
)
from ccbridge.api.schemas.seats import AgentNo
from ccbridge.api.security import CurrentPrincipal, require
from ccbridge.domain.access import AccessDeniedError, Principal, Role, scoped_tenant
from ccbridge.domain.calls.spy import SpyMode
from ccbridge.services.floor_alerts import FloorAlertService
from ccbridge.services.floor_rules import FloorRuleService
from ccbridge.services.supervision import SpyService
from ccbridge.services.wallboard import ChangeSignal, WallboardService, wallboard_stream

router = APIRouter(tags=["floor"])

TenantPath = Annotated[str, Path(max_length=64)]
AgentPath = Annotated[AgentNo, Path()]
FLOOR_VIEWERS = frozenset({Role.SUPERVISOR, Role.TENANT_ADMIN, Role.PLATFORM_ADMIN})
RULE_WRITERS = frozenset({Role.TENANT_ADMIN, Role.PLATFORM_ADMIN})
_SPY_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such agent (or another tenant's)"},
    409: {"description": "The agent is not on a call, or the supervisor not signed in"},
}


def _viewer(who: Principal) -> Principal:
    """The floor is for supervisors and admins, not agents or CRM keys."""
    if who.role not in FLOOR_VIEWERS:
        raise AccessDeniedError("the wallboard is for supervisors and admins")
    return who


FloorViewer = Annotated[Principal, Depends(require("seats:read"))]
RuleWriter = Annotated[Principal, Depends(require("seats:write"))]


def _wallboard(request: Request) -> WallboardService:
    service: WallboardService = request.app.state.wallboard
    return service


def _rules(request: Request) -> FloorRuleService:
    service: FloorRuleService = request.app.state.floor_rules
    return service


def _alerts(request: Request) -> FloorAlertService:
    service: FloorAlertService = request.app.state.floor_alerts
    return service


@router.get(
    "/api/v1/tenants/{tenant_id}/wallboard",
    dependencies=[AT_PBX_OWNER],
    response_model=WallboardOut,
    summary="The floor now: queues, seats, today's service level, open alerts",
)
async def get_wallboard(request: Request, tenant_id: TenantPath, who: FloorViewer) -> Any:
    """Calls waiting and longest wait per skill group (live), agents by state, today's
    offered/answered/abandoned and service level (the reports' KPIs), open floor alerts."""
    _viewer(who)
    return await _wallboard(request).board(tenant_id)


@router.get(
    "/api/v1/tenants/{tenant_id}/wallboard/stream",
    dependencies=[AT_PBX_OWNER_STREAM],
    summary="The wallboard as server-sent events (on change, at most 4 a second)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_wallboard(
    request: Request, tenant_id: TenantPath, who: FloorViewer
) -> StreamingResponse:
    """``event: wallboard`` whose ``data`` is the JSON of ``GET …/wallboard``, first at once
    and then on every change (coalesced to 4 a second); ``: ping`` after 15 s of quiet."""
    _viewer(who)
    service = _wallboard(request)
    signal: ChangeSignal = request.app.state.floor_signal
    heartbeat: float = getattr(request.app.state, "sse_ping_seconds", 15.0)

    async def frames() -> AsyncIterator[bytes]:
        yield b": connected\n\nretry: 3000\n\n"
        async for frame in wallboard_stream(tenant_id, service.board, signal, heartbeat=heartbeat):
            yield b": ping\n\n" if frame is None else frame

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


@router.get(
    "/api/v1/tenants/{tenant_id}/floor-rules",
    response_model=FloorRulesOut,
    summary="The floor rules and thresholds in force for the tenant",
)
async def get_floor_rules(request: Request, tenant_id: TenantPath, who: FloorViewer) -> Any:
    """Each rule with its threshold, unit and severity; platform defaults where unset."""
    _viewer(who)
    return FloorRulesOut.of(await _rules(request).get(tenant_id))


@router.put(
    "/api/v1/tenants/{tenant_id}/floor-rules",
    response_model=FloorRulesOut,
    summary="Set the tenant's floor rules (tenant admin; audited)",
)
async def put_floor_rules(
    request: Request, tenant_id: TenantPath, body: FloorRulesIn, who: RuleWriter
) -> Any:
    """Rules left out keep the platform defaults; applies from the next evaluation."""
    if who.role not in RULE_WRITERS:
        raise AccessDeniedError("only a tenant admin may change the floor rules")
    return FloorRulesOut.of(await _rules(request).put(who, tenant_id, body.overrides()))


@router.get(
    "/api/v1/seats/alerts",
    response_model=list[SeatAlertOut],
    summary="The floor alerts, newest first (open and cleared; the last 1,000)",
)
async def alerts(
    request: Request,
    who: CurrentPrincipal,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> list[SeatAlertOut]:
    """What the floor rules raised (示忙 over 15 min, 小休 overrun, queues…) for the tenant."""
    who.require("seats:read")
    tenant_id = scoped_tenant(who, tenant)
    if tenant_id is None:
        raise AccessDeniedError("name a tenant with ?tenant=")
    return [SeatAlertOut.of(a) for a in await _alerts(request).recent(tenant_id)]


@router.post(
    "/api/v1/tenants/{tenant_id}/seats/{agent_no}/spy",
    dependencies=[AT_PBX_OWNER],
    response_model=SpyOut,
    status_code=202,
    responses=_SPY_RESPONSES,
    summary="Listen, whisper or barge on an agent's call (ChanSpy; audited)",
)
async def spy_on_seat(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    body: SpyIn,
    who: RuleWriter,
) -> Any:
    """Ring the supervisor's own phone into ChanSpy on the agent's channel: ``listen`` (q),
    ``whisper`` (qw: only the agent hears) or ``barge`` (qB: both hear)."""
    service: SpyService = request.app.state.spy
    started = await service.spy(
        who, tenant_id, agent_no, SpyMode(body.mode), body.supervisor_agent_no
    )
    return SpyOut.of(started)
