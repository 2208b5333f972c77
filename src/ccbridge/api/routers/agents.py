"""Agents (坐席人员) and skill groups (技能组) of a tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from ccbridge.api.schemas.bounds import Int64
from ccbridge.api.schemas.seats import (
    AgentIn,
    AgentNo,
    AgentOut,
    GroupName,
    SkillGroupIn,
    SkillGroupOut,
)
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.errors import CcbridgeError, ErrorCode
from ccbridge.services.agents import AgentAdminService

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["agents"])

TenantPath = Annotated[str, Path(max_length=64)]
AgentPath = Annotated[AgentNo, Path()]
GroupPath = Annotated[GroupName, Path()]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such object (or another tenant's)"}
}
_PBX_MISMATCH: dict[int | str, dict[str, Any]] = {
    502: {
        "description": "Stored, but after the reload the PBX does not report the queue "
        "(problem code PBX_CONFIG_MISMATCH; see /readyz check pbx_config)"
    }
}
MAX_PAGE = 500


class PathMismatchError(CcbridgeError):
    """Raised when the body names another object than the path."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid request"


def _svc(request: Request) -> AgentAdminService:
    service: AgentAdminService = request.app.state.agent_admin
    return service


@router.post("/agents", status_code=201, response_model=AgentOut, responses=_NOT_FOUND)
async def create_agent(
    request: Request,
    tenant_id: TenantPath,
    body: AgentIn,
    who: Annotated[Principal, Depends(require("agents:write"))],
) -> AgentOut:
    """Add an agent with its 工号, softphone endpoint and skill groups (409 if 工号 is taken)."""
    return AgentOut.of(await _svc(request).create_agent(who, body.to_record(tenant_id)))


@router.get("/agents", response_model=list[AgentOut], responses=_NOT_FOUND)
async def list_agents(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("agents:read"))],
    after: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[Int64, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[AgentOut]:
    """Agents ordered by 工号; pass the last 工号 as ``after`` for the next page."""
    return [AgentOut.of(a) for a in await _svc(request).list_agents(tenant_id, after, limit)]


@router.get("/agents/{agent_no}", response_model=AgentOut, responses=_NOT_FOUND)
async def get_agent(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    _who: Annotated[Principal, Depends(require("agents:read"))],
) -> AgentOut:
    """One agent."""
    return AgentOut.of(await _svc(request).get_agent(tenant_id, agent_no))


@router.put("/agents/{agent_no}", response_model=AgentOut, responses=_NOT_FOUND)
async def replace_agent(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    body: AgentIn,
    who: Annotated[Principal, Depends(require("agents:write"))],
) -> AgentOut:
    """Replace an agent (name, certification, endpoint, seat kind, skills)."""
    if body.agent_no != agent_no:
        raise PathMismatchError("agent_no differs from the path", field="body.agent_no")
    return AgentOut.of(await _svc(request).update_agent(who, body.to_record(tenant_id)))


@router.delete("/agents/{agent_no}", status_code=204, responses=_NOT_FOUND)
async def delete_agent(
    request: Request,
    tenant_id: TenantPath,
    agent_no: AgentPath,
    who: Annotated[Principal, Depends(require("agents:write"))],
) -> Response:
    """Remove an agent (409 while signed in)."""
    await _svc(request).delete_agent(who, tenant_id, agent_no)
    return Response(status_code=204)


@router.post(
    "/skill-groups",
    status_code=201,
    response_model=SkillGroupOut,
    responses={**_NOT_FOUND, **_PBX_MISMATCH},
)
async def create_skill_group(
    request: Request,
    tenant_id: TenantPath,
    body: SkillGroupIn,
    who: Annotated[Principal, Depends(require("agents:write"))],
) -> SkillGroupOut:
    """Add a skill group; its Asterisk queue is ``<tenant>-<name>``."""
    group = await _svc(request).create_group(
        who, tenant_id, body.name, body.strategy, body.description
    )
    return SkillGroupOut.of(group)


@router.get("/skill-groups", response_model=list[SkillGroupOut], responses=_NOT_FOUND)
async def list_skill_groups(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("agents:read"))],
    after: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[Int64, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[SkillGroupOut]:
    """Skill groups ordered by name."""
    groups = await _svc(request).list_groups(tenant_id, after, limit)
    return [SkillGroupOut.of(g) for g in groups]


@router.get("/skill-groups/{name}", response_model=SkillGroupOut, responses=_NOT_FOUND)
async def get_skill_group(
    request: Request,
    tenant_id: TenantPath,
    name: GroupPath,
    _who: Annotated[Principal, Depends(require("agents:read"))],
) -> SkillGroupOut:
    """One skill group."""
    return SkillGroupOut.of(await _svc(request).get_group(tenant_id, name))


@router.delete("/skill-groups/{name}", status_code=204, responses={**_NOT_FOUND, **_PBX_MISMATCH})
async def delete_skill_group(
    request: Request,
    tenant_id: TenantPath,
    name: GroupPath,
    who: Annotated[Principal, Depends(require("agents:write"))],
) -> Response:
    """Remove a skill group and every agent's membership of it."""
    await _svc(request).delete_group(who, tenant_id, name)
    return Response(status_code=204)
