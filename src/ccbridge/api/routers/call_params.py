"""The call-parameter interface: the four variables per conversation and per leg; wrap-up."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from ccbridge.api.schemas.events import CallParams, EventOut
from ccbridge.api.security import require
from ccbridge.domain.access import AccessDeniedError, Principal, Role, scoped_tenant
from ccbridge.domain.journal.derive import call_params, four_variables, segment_params
from ccbridge.services.events import EventService, filter_extras

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])

CallsReader = Annotated[Principal, Depends(require("calls:read"))]
CallPath = Annotated[str, Path(max_length=64)]


class LegOut(BaseModel):
    """One agent leg with its own frozen four variables."""

    leg: int
    via: str = Field(description="queue, blind_transfer, attended_transfer or threeway")
    params: CallParams
    started_at: datetime
    ended_at: datetime | None


class TransferOut(BaseModel):
    """A transfer of the call."""

    kind: str
    at: datetime
    from_agent_no: str | None
    target: str


class CallParamsOut(BaseModel):
    """The call-parameter interface (CPI-01): the four variables of the conversation."""

    call_id: str
    tenant: str | None
    state: str
    params: CallParams = Field(description="Now: the current (or last) agent leg's variables")
    first: CallParams = Field(description="As first answered: the first agent and skill group")
    legs: list[LegOut]
    transfers: list[TransferOut]
    extras: dict[str, Any]


def _service(request: Request) -> EventService:
    service: EventService = request.app.state.events
    return service


@router.get(
    "/{call_id}/params",
    response_model=CallParamsOut,
    summary="The four call variables, per conversation and per leg",
    responses={404: {"description": "No such call (or another tenant's)"}},
)
async def get_params(
    request: Request,
    call_id: CallPath,
    who: CallsReader,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    """工号, 技能组, 主叫, 被叫: numbers in E.164 when parseable, the original beside them."""
    service = _service(request)
    rec = await service.call(scoped_tenant(who, tenant), call_id)
    enabled = (await service.settings(rec.tenant)).extras if rec.tenant else frozenset()
    extras = filter_extras({"extras": dict(rec.extras)}, enabled)["extras"]
    return CallParamsOut(
        call_id=rec.call_id,
        tenant=rec.tenant,
        state=rec.state.value,
        params=CallParams(**call_params(rec)),
        first=CallParams(
            **four_variables(
                agent_no=rec.agent_no,
                skill_group=rec.skill_group,
                caller=rec.caller,
                callee=rec.callee,
            )
        ),
        legs=[
            LegOut(
                leg=s.seq,
                via=s.via,
                params=CallParams(**segment_params(s)),
                started_at=s.started_at,
                ended_at=s.ended_at,
            )
            for s in rec.segments
        ],
        transfers=[
            TransferOut(kind=t.kind, at=t.at, from_agent_no=t.from_agent_no, target=t.target)
            for t in rec.transfers
        ],
        extras=extras,
    )


class WrapupIn(BaseModel):
    """The agent's record after the call (CPI-08)."""

    agent_no: str | None = Field(
        default=None, max_length=32, description="Defaults to the calling agent's 工号"
    )
    disposition: str = Field(min_length=1, max_length=64)
    notes: str = Field(default="", max_length=4000)
    fields: dict[str, str] = Field(default_factory=dict, max_length=50)
    submission_id: str | None = Field(
        default=None, max_length=64, description="Idempotency key: a retry is not a second event"
    )


@router.post(
    "/{call_id}/wrapup",
    response_model=EventOut,
    status_code=201,
    summary="Submit the wrap-up (disposition) of a call",
    responses={
        404: {"description": "No such call (or another tenant's)"},
        409: {"description": "That agent did not handle the call"},
    },
)
async def submit_wrapup(
    request: Request,
    call_id: CallPath,
    who: CallsReader,
    body: WrapupIn,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    """An agent records its own wrap-up; supervisors and admins may for any agent."""
    scope = scoped_tenant(who, tenant)
    agent_no = body.agent_no or who.agent_no
    if agent_no is None:
        raise AccessDeniedError("name the agent_no whose wrap-up this is")
    if not who.has("seats:write") and not (who.role is Role.AGENT and who.agent_no == agent_no):
        raise AccessDeniedError("an agent submits only its own wrap-up")
    service = _service(request)
    rec = await service.call(scope, call_id)
    assert rec.tenant is not None  # a tenant-less call has no journal
    stored = await service.submit_wrapup(
        who,
        rec.tenant,
        call_id,
        agent_no=agent_no,
        disposition=body.disposition,
        notes=body.notes,
        fields=body.fields,
        submission_id=body.submission_id or str(uuid.uuid4()),
    )
    if stored is None:  # the same submission_id again: already recorded
        page = await service.call_events(rec.tenant, call_id)
        stored = next(e for e in reversed(page) if e.type == "wrapup.submitted")
    return EventOut.model_validate((await service.present([stored]))[0])
