"""Webhook subscriptions: create, filter, rotate secrets, delivery log, redeliver, replay."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from ccbridge.api.routers.events import TenantQuery, one_tenant
from ccbridge.api.schemas.bounds import Int64
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.domain.journal.types import EventType
from ccbridge.services.event_ports import DeliveryAttempt, WebhookEndpoint
from ccbridge.services.webhooks import WebhookService

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

Reader = Annotated[Principal, Depends(require("events:read"))]
Writer = Annotated[Principal, Depends(require("events:write"))]
IdPath = Annotated[str, Path(max_length=36)]
_404: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such webhook (or another tenant's)"}
}


def _service(request: Request) -> WebhookService:
    service: WebhookService = request.app.state.webhooks
    return service


class WebhookIn(BaseModel):
    """A subscription: where to POST and which event types (empty = all)."""

    url: str = Field(max_length=2048, description="https URL (http only to allow-listed networks)")
    event_types: list[EventType] = Field(default_factory=list)
    from_start: bool = Field(
        default=False, description="Deliver the retained journal from the start, not from now"
    )


class WebhookPatch(BaseModel):
    """Change URL, filter, or enable/disable (re-enabling clears the failure state)."""

    url: str | None = Field(default=None, max_length=2048)
    event_types: list[EventType] | None = None
    enabled: bool | None = None


class WebhookOut(BaseModel):
    """A subscription and its delivery state (secrets are never shown again)."""

    id: str
    tenant: str
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    cursor: str = Field(description="Last journal cursor delivered (or given up)")
    attempts: int
    next_attempt_at: datetime | None
    failing_since: datetime | None
    secrets_valid: int

    @classmethod
    def of(cls, ep: WebhookEndpoint, now: datetime) -> WebhookOut:
        """Public shape of an endpoint."""
        return cls(
            id=ep.id,
            tenant=ep.tenant,
            url=ep.url,
            event_types=list(ep.event_types),
            enabled=ep.enabled,
            disabled_reason=ep.disabled_reason,
            cursor=str(ep.cursor),
            attempts=ep.attempts,
            next_attempt_at=ep.next_attempt_at,
            failing_since=ep.failing_since,
            secrets_valid=len(ep.valid_secrets(now)),
        )


class WebhookCreated(WebhookOut):
    """The new subscription with its signing secret, shown this once."""

    secret: str = Field(description="whsec_…: verify webhook-signature with it")


class DeliveryOut(BaseModel):
    """One delivery-log row."""

    id: int
    event_cursor: str
    event_id: str
    status: str
    manual: bool
    attempt: int
    at: datetime
    http_status: int | None
    error: str | None
    duration_ms: int | None

    @classmethod
    def of(cls, a: DeliveryAttempt) -> DeliveryOut:
        """Public shape of a log row."""
        return cls(
            id=a.id,
            event_cursor=str(a.event_seq),
            event_id=a.event_id,
            status=a.status,
            manual=a.manual,
            attempt=a.attempt,
            at=a.at,
            http_status=a.http_status,
            error=a.error,
            duration_ms=a.duration_ms,
        )


class RedeliverIn(BaseModel):
    """Events to send again, by cursor."""

    cursors: list[Int64] = Field(min_length=1, max_length=500)


class ReplayIn(BaseModel):
    """A past call whose events are sent again in order."""

    call_id: str = Field(max_length=64)


class Queued(BaseModel):
    """How many deliveries were queued."""

    queued: int


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.events_clock.now()
    return now


@router.post("", response_model=WebhookCreated, status_code=201, summary="Subscribe")
async def create_webhook(
    request: Request, who: Writer, body: WebhookIn, tenant: TenantQuery = None
) -> Any:
    """The URL is checked now (form and resolved addresses) and again at every connect."""
    scope = one_tenant(who, tenant)
    ep, secret = await _service(request).create(
        who, scope, body.url, [t.value for t in body.event_types], from_now=not body.from_start
    )
    return WebhookCreated(**WebhookOut.of(ep, _now(request)).model_dump(), secret=secret)


@router.get("", response_model=list[WebhookOut], summary="The tenant's subscriptions")
async def list_webhooks(request: Request, who: Reader, tenant: TenantQuery = None) -> Any:
    """Every subscription with its delivery state."""
    scope = one_tenant(who, tenant)
    now = _now(request)
    return [WebhookOut.of(e, now) for e in await _service(request).list(scope)]


@router.get("/{webhook_id}", response_model=WebhookOut, responses=_404, summary="One subscription")
async def get_webhook(
    request: Request, who: Reader, webhook_id: IdPath, tenant: TenantQuery = None
) -> Any:
    """Another tenant's subscription answers 404."""
    ep = await _service(request).get(one_tenant(who, tenant), webhook_id)
    return WebhookOut.of(ep, _now(request))


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=_404, summary="Change")
async def patch_webhook(
    request: Request,
    who: Writer,
    webhook_id: IdPath,
    body: WebhookPatch,
    tenant: TenantQuery = None,
) -> Any:
    """URL, filter, enable/disable."""
    ep = await _service(request).update(
        who,
        one_tenant(who, tenant),
        webhook_id,
        url=body.url,
        event_types=None if body.event_types is None else [t.value for t in body.event_types],
        enabled=body.enabled,
    )
    return WebhookOut.of(ep, _now(request))


@router.delete("/{webhook_id}", status_code=204, responses=_404, summary="Unsubscribe")
async def delete_webhook(
    request: Request, who: Writer, webhook_id: IdPath, tenant: TenantQuery = None
) -> Response:
    """Stop deliveries and drop the log."""
    await _service(request).delete(who, one_tenant(who, tenant), webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookCreated,
    responses=_404,
    summary="New secret; the old one stays valid for 24 h",
)
async def rotate_secret(
    request: Request, who: Writer, webhook_id: IdPath, tenant: TenantQuery = None
) -> Any:
    """During the overlap every request carries two signatures (one per secret)."""
    ep, secret = await _service(request).rotate_secret(who, one_tenant(who, tenant), webhook_id)
    return WebhookCreated(**WebhookOut.of(ep, _now(request)).model_dump(), secret=secret)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryOut],
    responses=_404,
    summary="Delivery log, newest first",
)
async def deliveries(
    request: Request,
    who: Reader,
    webhook_id: IdPath,
    before: Annotated[Int64 | None, Query(ge=1)] = None,
    limit: Annotated[Int64, Query(ge=1, le=500)] = 100,
    tenant: TenantQuery = None,
) -> Any:
    """Keyset on the row id: pass the last ``id`` as ``before``."""
    rows = await _service(request).deliveries(
        one_tenant(who, tenant), webhook_id, before=before, limit=limit
    )
    return [DeliveryOut.of(a) for a in rows]


@router.post(
    "/{webhook_id}/redeliver",
    response_model=Queued,
    status_code=202,
    responses=_404,
    summary="Send events again",
)
async def redeliver(
    request: Request, who: Writer, webhook_id: IdPath, body: RedeliverIn, tenant: TenantQuery = None
) -> Any:
    """Queued ahead of the live stream; same ``webhook-id`` as the first delivery."""
    n = await _service(request).redeliver(who, one_tenant(who, tenant), webhook_id, body.cursors)
    return Queued(queued=n)


@router.post(
    "/{webhook_id}/replay",
    response_model=Queued,
    status_code=202,
    responses=_404,
    summary="Replay a past call's events (CPI-03)",
)
async def replay(
    request: Request, who: Writer, webhook_id: IdPath, body: ReplayIn, tenant: TenantQuery = None
) -> Any:
    """Every journal event of the call, in order, to this endpoint."""
    n = await _service(request).replay_call(who, one_tenant(who, tenant), webhook_id, body.call_id)
    return Queued(queued=n)
