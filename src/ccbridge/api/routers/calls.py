"""Call listing and lookup: the four call variables of every call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from ccbridge.api.schemas.calls import CallOut, CallPage, decode_cursor, encode_cursor
from ccbridge.domain.calls.model import CallState
from ccbridge.errors import NotFoundError
from ccbridge.services.ports import CallStore

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])

MAX_PAGE = 500


def _store(request: Request) -> CallStore:
    store: CallStore = request.app.state.call_store
    return store


@router.get("", response_model=CallPage, summary="List calls, newest first")
async def list_calls(
    request: Request,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    state: CallState | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> CallPage:
    """Keyset-paginated list; pass ``next_cursor`` back as ``cursor`` for the next page."""
    before = decode_cursor(cursor) if cursor else None
    rows = await _store(request).list(tenant=tenant, state=state, before=before, limit=limit + 1)
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
    tenant: Annotated[str | None, Query(max_length=64)] = None,
) -> CallOut:
    """Return one call with its four variables."""
    record = await _store(request).get(call_id, tenant)
    if record is None:
        raise NotFoundError(f"call {call_id} not found")
    return CallOut.from_record(record)
