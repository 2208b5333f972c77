"""Call listing and lookup: the four call variables of every call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from ccbridge.api.schemas.bounds import Int64
from ccbridge.api.schemas.calls import CallOut, CallPage, decode_cursor, encode_cursor
from ccbridge.api.security import require
from ccbridge.domain.access import Principal, scoped_tenant
from ccbridge.domain.calls.model import CallState
from ccbridge.errors import NotFoundError
from ccbridge.services.ports import CallStore

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])

MAX_PAGE = 500
CallsReader = Annotated[Principal, Depends(require("calls:read"))]


def _store(request: Request) -> CallStore:
    store: CallStore = request.app.state.call_store
    return store


@router.get("", response_model=CallPage, summary="List calls, newest first")
async def list_calls(
    request: Request,
    who: CallsReader,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    state: CallState | None = None,
    limit: Annotated[Int64, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> CallPage:
    """Keyset-paginated list; pass ``next_cursor`` back as ``cursor`` for the next page.

    Your own tenant's calls only; ``tenant`` is for the platform admin (naming another
    tenant answers 404).
    """
    scope = scoped_tenant(who, tenant)
    before = decode_cursor(cursor) if cursor else None
    rows = await _store(request).list(tenant=scope, state=state, before=before, limit=limit + 1)
    page = list(rows[:limit])
    next_cursor = encode_cursor(page[-1]) if len(rows) > limit else None
    return CallPage(items=[CallOut.from_record(r) for r in page], next_cursor=next_cursor)


@router.get(
    "/{call_id}",
    response_model=CallOut,
    summary="One call",
    responses={404: {"description": "No such call (or another tenant's)"}},
)
async def get_call(
    request: Request,
    call_id: Annotated[str, Path(max_length=64)],
    who: CallsReader,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> CallOut:
    """Return one call with its four variables; another tenant's call answers 404."""
    record = await _store(request).get(call_id, scoped_tenant(who, tenant))
    if record is None:
        raise NotFoundError(f"call {call_id} not found")
    return CallOut.from_record(record)
