"""CRM events: poll (keyset, long-poll), SSE stream, sample events, switches and exports."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from ccbridge.api.schemas.bounds import INT64_MAX, Int64
from ccbridge.api.schemas.events import EventOut, EventPage
from ccbridge.api.security import require
from ccbridge.domain.access import Principal, scoped_tenant
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.egress import MAX_ALLOW_ENTRIES, parse_networks
from ccbridge.domain.journal.derive import call_params, segment_params
from ccbridge.domain.journal.types import EventType
from ccbridge.errors import CcbridgeError, ErrorCode
from ccbridge.services.event_ports import EventSettings
from ccbridge.services.events import KNOWN_EXTRAS, EventService

router = APIRouter(prefix="/api/v1/events", tags=["events"])

MAX_PAGE = 1000
MAX_WAIT = 25
EventsReader = Annotated[Principal, Depends(require("events:read"))]
EventsWriter = Annotated[Principal, Depends(require("events:write"))]
TenantQuery = Annotated[str | None, Query(max_length=64, description="Platform admin only")]


class TenantRequiredError(CcbridgeError):
    """A platform-wide credential must name the tenant whose journal it reads."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Tenant required"


def one_tenant(who: Principal, tenant: str | None) -> str:
    """The tenant a journal request is about (own tenant; platform admin must name one)."""
    scope = scoped_tenant(who, tenant)
    if scope is None:
        raise TenantRequiredError("name the tenant with ?tenant=", field="query.tenant")
    return scope


def _service(request: Request) -> EventService:
    service: EventService = request.app.state.events
    return service


def _cursor(value: str | None, field: str) -> int:
    if value is None or value == "":
        return 0
    # isascii: "²".isdigit() holds but int("²") raises; a cursor beyond BIGINT never exists.
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > INT64_MAX:
        raise TenantRequiredError("a cursor is a non-negative integer", field=field)
    return int(value)


@router.get("", response_model=EventPage, summary="Events after a cursor (poll, long-poll)")
async def list_events(
    request: Request,
    who: EventsReader,
    after: Annotated[str | None, Query(max_length=19, description="Last cursor you saw")] = None,
    limit: Annotated[Int64, Query(ge=1, le=MAX_PAGE)] = 100,
    wait: Annotated[
        Int64, Query(ge=0, le=MAX_WAIT, description="Seconds to hold an empty answer (long-poll)")
    ] = 0,
    types: Annotated[
        list[EventType] | None, Query(alias="type", description="Only these types")
    ] = None,
    tenant: TenantQuery = None,
) -> EventPage:
    """Keyset page of the tenant's journal in cursor order; never OFFSET.

    With ``wait``, an empty page is held until an event commits or ``wait`` seconds pass.
    Pass ``next_after`` back as ``after``; it only moves forward.
    """
    scope = one_tenant(who, tenant)
    start = _cursor(after, "query.after")
    service = _service(request)
    page = await service.poll(
        scope, start, limit, wait=float(wait), types=[t.value for t in types or []] or None
    )
    # The envelopes are the journal's stored JSON bytes: the page is their concatenation, with
    # no decoding, pydantic pass or re-encoding (the response_model documents the shape).
    body = b'{"items":[%s],"next_after":"%d"}' % (
        b",".join(e.envelope for e in page),
        page[-1].seq if page else start,
    )
    return Response(body, media_type="application/json")  # type: ignore[return-value]


@router.get(
    "/stream",
    summary="Server-sent events (resume with Last-Event-ID; ping every 15 s)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    who: EventsReader,
    last_event_id: Annotated[str | None, Header(max_length=19)] = None,
    after: Annotated[str | None, Query(max_length=19)] = None,
    tenant: TenantQuery = None,
) -> StreamingResponse:
    """``id:`` is the cursor, ``event:`` the type, ``data:`` the envelope (one line)."""
    scope = one_tenant(who, tenant)
    start = _cursor(last_event_id or after, "header.last-event-id")
    service = _service(request)
    ping: float = getattr(request.app.state, "sse_ping_seconds", 15.0)

    async def frames() -> AsyncIterator[bytes]:
        yield b": connected\n\nretry: 3000\n\n"
        async for chunk in service.stream(scope, start, ping_every=ping):
            yield b": ping\n\n" if chunk is None else chunk

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


class SettingsIn(BaseModel):
    """Per-tenant switches; everything is off by default."""

    extras: list[Literal["ivr", "crm", "queue_wait", "recording"]] = Field(
        default_factory=list, description=f"Extras to expose: {sorted(KNOWN_EXTRAS)}"
    )
    sandbox: bool = Field(default=False, description="Allow POST /events/test (CPI-03)")
    allow_private: list[str] = Field(
        default_factory=list,
        max_length=MAX_ALLOW_ENTRIES,
        description=(
            "The tenant's egress allow-list: networks (CIDR) its webhooks, recording export "
            "and IVR CRM lookups may reach although private, e.g. an on-prem CRM. Only a "
            "platform admin may change it (a tenant admin may send it back unchanged)."
        ),
    )


class SettingsOut(SettingsIn):
    """The tenant's switches."""

    tenant: str


@router.get("/settings", response_model=SettingsOut, summary="The tenant's event switches")
async def get_settings(request: Request, who: EventsReader, tenant: TenantQuery = None) -> Any:
    """Extras, sandbox mode and private webhook networks."""
    scope = one_tenant(who, tenant)
    st = await _service(request).settings(scope)
    return SettingsOut(
        tenant=scope,
        extras=sorted(st.extras),
        sandbox=st.sandbox,
        allow_private=list(st.allow_private),
    )


@router.put(
    "/settings",
    response_model=SettingsOut,
    summary="Change the tenant's event switches",
    responses={403: {"description": "A tenant admin tried to change allow_private"}},
)
async def put_settings(
    request: Request, who: EventsWriter, body: SettingsIn, tenant: TenantQuery = None
) -> Any:
    """Tenant admin: switch extras (CPI-02) and sandbox (CPI-03); audited.

    ``allow_private`` (the egress allow-list) changes only by a platform admin.
    """
    scope = one_tenant(who, tenant)
    try:
        parse_networks(body.allow_private)
    except ValueError as exc:
        raise TenantRequiredError(str(exc), field="body.allow_private") from None
    await _service(request).update_settings(
        who,
        scope,
        EventSettings(frozenset(body.extras), body.sandbox, tuple(body.allow_private)),
    )
    return SettingsOut(tenant=scope, **body.model_dump())


@router.post(
    "/test",
    response_model=EventPage,
    status_code=201,
    summary="Emit sample events (sandbox mode only)",
    responses={409: {"description": "The tenant's sandbox mode is off"}},
)
async def sample_events(request: Request, who: EventsWriter, tenant: TenantQuery = None) -> Any:
    """One sample of each call event into the journal, marked ``sandbox: true``; they reach
    pollers, SSE streams and webhooks like real ones."""
    scope = one_tenant(who, tenant)
    service = _service(request)
    stored = await service.emit_samples(who, scope)
    items = [EventOut.model_validate(e) for e in await service.present(stored)]
    return EventPage(items=items, next_after=str(stored[-1].seq if stored else 0))


EXPORT_COLUMNS = (
    "call_id",
    "leg",
    "agent_no",
    "skill_group",
    "caller",
    "callee",
    "caller_original",
    "callee_original",
    "via",
    "state",
    "started_at",
    "answered_at",
    "ended_at",
    "end_reason",
)


def _export_rows(rec: CallRecord) -> list[dict[str, Any]]:
    """One row per agent leg (one row for a call no agent took)."""
    base = {
        "call_id": rec.call_id,
        "state": rec.state.value,
        "started_at": rec.started_at.isoformat(),
        "answered_at": rec.answered_at.isoformat() if rec.answered_at else None,
        "ended_at": rec.ended_at.isoformat() if rec.ended_at else None,
        "end_reason": rec.end_reason,
    }
    if not rec.segments:
        return [{**base, "leg": 0, "via": None, **call_params(rec)}]
    return [{**base, "leg": s.seq, "via": s.via, **segment_params(s)} for s in rec.segments]


EXCEL_BOM = "\ufeff"
"""UTF-8 byte order mark: Excel opens a CSV as UTF-8 only when it starts with one."""


@router.get(
    "/export/calls",
    summary="Call-parameter records for a time range (CSV or JSON lines, streamed)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
async def export_calls(
    request: Request,
    who: EventsReader,
    start: datetime,
    end: datetime,
    fmt: Annotated[Literal["csv", "json"], Query(alias="format")] = "csv",
    tenant: TenantQuery = None,
) -> StreamingResponse:
    """For CRMs that import files: the four variables per agent leg, oldest call first."""
    scope = one_tenant(who, tenant)
    if start.tzinfo is None or end.tzinfo is None:
        raise TenantRequiredError("start and end need a UTC offset", field="query.start")
    if end <= start:
        raise TenantRequiredError("end must be after start", field="query.end")
    service = _service(request)

    async def csv_lines() -> AsyncIterator[str]:
        buf = io.StringIO()
        buf.write(EXCEL_BOM)  # zh-CN Excel reads a BOM-less CSV as GBK and garbles 技能组
        writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        async for rec in service.export_calls(scope, start, end):
            for row in _export_rows(rec):
                writer.writerow(row)
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        yield buf.getvalue()

    async def json_lines() -> AsyncIterator[str]:
        async for rec in service.export_calls(scope, start, end):
            for row in _export_rows(rec):
                yield json.dumps(row, ensure_ascii=False) + "\n"

    if fmt == "csv":
        return StreamingResponse(
            csv_lines(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="calls-{scope}.csv"'},
        )
    return StreamingResponse(json_lines(), media_type="application/x-ndjson")
