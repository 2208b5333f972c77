"""Webhook subscriptions and their delivery: one queue per endpoint, state in the database.

Each enabled endpoint has its own worker task that walks the tenant's journal from the
endpoint's stored cursor, in order, one event at a time (head-of-line per endpoint, so a
call's events arrive in order). A failure schedules a retry with exponential back-off and
jitter and blocks only that endpoint; after 3 days the event is skipped (logged), and an
endpoint failing for 5 days is disabled.

Each delivery is claimed in the database before its POST and marked after it (ADR 0030):
the mark moves the cursor, writes the log row and clears the claim in one transaction, and
with several nodes both check this node's term, so a node that lost the PBX can neither send
nor mark. Only a delivery whose outcome was never recorded (the process died, or its term or
database went, between the POST and the mark) can reach a receiver twice: the next claim of
it finds the old claim, logs ``webhook_delivery_in_doubt`` and sends it again with the same
``webhook-id``, which receivers dedupe on. A stop (SIGTERM) lets the delivery in hand finish
and be marked, within what is left of the term.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import structlog

from ccbridge.domain.access import Principal
from ccbridge.domain.journal.types import EventType, StoredEvent
from ccbridge.domain.time import Clock
from ccbridge.domain.webhooks import retry, signing
from ccbridge.domain.webhooks.targets import TargetRefusedError, check_url
from ccbridge.errors import CcbridgeError, ErrorCode, NotFoundError
from ccbridge.resilience.backoff import Backoff
from ccbridge.resilience.held import ErrorReport
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.egress import EgressPolicy
from ccbridge.services.event_hub import EventHub
from ccbridge.services.event_ports import (
    DeliveryAttempt,
    DeliveryClaim,
    DeliveryFenced,
    JournalStore,
    SendResult,
    WebhookEndpoint,
    WebhookSecret,
    WebhookSender,
    WebhookStore,
)
from ccbridge.services.events import EventService

log = structlog.get_logger(__name__)

ROTATION_OVERLAP = timedelta(hours=24)
LOG_RETENTION = timedelta(days=30)
"""How long the delivery log keeps an attempt (as long as the journal keeps the event)."""
"""How long the previous secret keeps signing after a rotation."""
IDLE_WAIT = 15.0
CLAIM_RETRY = 0.1
"""Wait before claiming again when another transaction held the endpoint's row."""
STOP_GRACE = 12.0
"""With a single node, how long a stop waits for the delivery in hand (the send timeout)."""
PAGE = 100
MAX_ENDPOINTS_PER_TENANT = 20

Sleep = Callable[[float], Awaitable[None]]


class WebhookTargetError(CcbridgeError):
    """The subscription URL is malformed or points at a forbidden address."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Webhook target refused"


def encode_body(envelope: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent (compact, UTF-8, keys in a stable order)."""
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


class WebhookService:
    """Manage subscriptions (audited); queue redeliveries and replays."""

    def __init__(
        self,
        store: WebhookStore,
        events: EventService,
        sender: WebhookSender,
        journal: JournalStore,
        audit: AuditRecorder | None,
        clock: Clock,
        *,
        wake: Callable[[], None] | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self._store = store
        self._events = events
        self._egress = egress or EgressPolicy(events)
        self._sender = sender
        self._journal = journal
        self._audit = audit
        self._clock = clock
        self._wake = wake or (lambda: None)

    async def _validate(self, tenant: str, url: str) -> None:
        allow = await self._egress.allow_list(tenant)
        try:
            check_url(url, allow_http=bool(allow))
            await self._sender.check_target(url, allow)
        except TargetRefusedError as exc:
            raise WebhookTargetError(str(exc), field="url") from exc

    async def _audit_write(
        self, who: Principal, tenant: str, action: str, ep_id: str, detail: dict[str, Any]
    ) -> None:
        if self._audit is not None:
            await self._audit.record(who, tenant, action, "webhook", ep_id, detail)

    async def create(
        self,
        who: Principal,
        tenant: str,
        url: str,
        event_types: Sequence[str],
        *,
        from_now: bool = True,
    ) -> tuple[WebhookEndpoint, str]:
        """Subscribe; return the endpoint and its secret (shown once)."""
        _check_types(event_types)
        await self._validate(tenant, url)
        if len(await self._store.list(tenant)) >= MAX_ENDPOINTS_PER_TENANT:
            raise WebhookTargetError(
                f"at most {MAX_ENDPOINTS_PER_TENANT} webhooks per tenant", field="url"
            )
        now = self._clock.now()
        secret = signing.new_secret()
        cursor = await self._journal.last_seq(tenant) if from_now else 0
        endpoint = WebhookEndpoint(
            id=str(uuid.uuid4()),
            tenant=tenant,
            url=url,
            event_types=tuple(event_types),
            secrets=(WebhookSecret(secret, now),),
            enabled=True,
            cursor=cursor,
            created_at=now,
        )
        await self._store.add(endpoint)
        await self._audit_write(
            who, tenant, "webhook.create", endpoint.id, {"url": url, "types": list(event_types)}
        )
        self._wake()
        return endpoint, secret

    async def get(self, tenant: str, endpoint_id: str) -> WebhookEndpoint:
        """One subscription or 404 (also another tenant's)."""
        endpoint = await self._store.get(tenant, endpoint_id)
        if endpoint is None:
            raise NotFoundError(f"webhook {endpoint_id} not found")
        return endpoint

    async def list(self, tenant: str) -> list[WebhookEndpoint]:
        """A tenant's subscriptions."""
        return await self._store.list(tenant)

    async def update(
        self,
        who: Principal,
        tenant: str,
        endpoint_id: str,
        *,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> WebhookEndpoint:
        """Change URL, filter or enable/disable (re-enabling clears the failure state)."""
        ep = await self.get(tenant, endpoint_id)
        changed: set[str] = set()
        if url is not None and url != ep.url:
            await self._validate(tenant, url)
            ep = replace(ep, url=url)
            changed.add("url")
        if event_types is not None:
            _check_types(event_types)
            ep = replace(ep, event_types=tuple(event_types))
            changed.add("event_types")
        if enabled is not None and enabled != ep.enabled:
            ep = replace(
                ep,
                enabled=enabled,
                disabled_reason=None if enabled else "disabled by a tenant admin",
                attempts=0,
                next_attempt_at=None,
                failing_since=None,
            )
            changed |= {"enabled", "disabled_reason", "attempts", "next_attempt_at"}
            changed.add("failing_since")
        await self._store.update(ep, changed)
        await self._audit_write(
            who, tenant, "webhook.update", ep.id, {"url": ep.url, "enabled": ep.enabled}
        )
        self._wake()
        return ep

    async def delete(self, who: Principal, tenant: str, endpoint_id: str) -> None:
        """Unsubscribe."""
        if not await self._store.delete(tenant, endpoint_id):
            raise NotFoundError(f"webhook {endpoint_id} not found")
        await self._audit_write(who, tenant, "webhook.delete", endpoint_id, {})
        self._wake()

    async def rotate_secret(
        self, who: Principal, tenant: str, endpoint_id: str
    ) -> tuple[WebhookEndpoint, str]:
        """New secret now; the previous one keeps signing for 24 h (two valid secrets)."""
        ep = await self.get(tenant, endpoint_id)
        now = self._clock.now()
        kept = [
            replace(
                s, expires_at=min(s.expires_at or now + ROTATION_OVERLAP, now + ROTATION_OVERLAP)
            )
            for s in ep.secrets
            if s.expires_at is None or s.expires_at > now
        ]
        kept.sort(key=lambda s: s.created_at, reverse=True)
        secret = signing.new_secret()
        ep = replace(ep, secrets=(WebhookSecret(secret, now), *kept[:1]))
        await self._store.update(ep, {"secrets"})
        await self._audit_write(who, tenant, "webhook.rotate_secret", ep.id, {})
        return ep, secret

    async def deliveries(
        self, tenant: str, endpoint_id: str, *, before: int | None, limit: int
    ) -> builtins.list[DeliveryAttempt]:
        """The endpoint's delivery log, newest first."""
        await self.get(tenant, endpoint_id)
        return await self._store.deliveries(endpoint_id, before=before, limit=limit)

    async def redeliver(
        self, who: Principal, tenant: str, endpoint_id: str, seqs: Sequence[int]
    ) -> int:
        """Queue events (by cursor) for a manual redelivery, sent before the live queue."""
        ep = await self.get(tenant, endpoint_id)
        count = 0
        for seq in seqs:
            event = await self._journal.get(tenant, seq)
            if event is None:
                raise NotFoundError(f"event {seq} not found")
            await self._store.log(
                DeliveryAttempt(
                    id=0,
                    endpoint_id=ep.id,
                    event_seq=event.seq,
                    event_id=event.id,
                    status="queued",
                    manual=True,
                    attempt=0,
                    at=self._clock.now(),
                )
            )
            count += 1
        await self._audit_write(who, tenant, "webhook.redeliver", ep.id, {"events": list(seqs)})
        self._wake()
        return count

    async def prune_log(self) -> int:
        """Retention job: drop delivery-log rows older than 30 days."""
        return await self._store.delete_deliveries_before(self._clock.now() - LOG_RETENTION)

    async def replay_call(self, who: Principal, tenant: str, endpoint_id: str, call_id: str) -> int:
        """CPI-03: send every event of a past call to the endpoint again, in order."""
        events = await self._events.call_events(tenant, call_id)
        if not events:
            raise NotFoundError(f"call {call_id} has no events")
        return await self.redeliver(who, tenant, endpoint_id, [e.seq for e in events])


def _check_types(event_types: Sequence[str]) -> None:
    known = {t.value for t in EventType}
    bad = [t for t in event_types if t not in known]
    if bad:
        raise WebhookTargetError(f"unknown event types {bad}", field="event_types")


class WebhookDispatcher:
    """Run one delivery worker per enabled endpoint; pick up subscription changes."""

    def __init__(
        self,
        store: WebhookStore,
        journal: JournalStore,
        events: EventService,
        sender: WebhookSender,
        hub: EventHub,
        clock: Clock,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        idle_wait: float = IDLE_WAIT,
        refresh: float = 5.0,
        egress: EgressPolicy | None = None,
        on_error: ErrorReport | None = None,
        may_act_for: Callable[[], float] | None = None,
    ) -> None:
        """*on_error* is told each failed storage read (the database availability tracker).
        *may_act_for* says how many seconds this node may still deliver (with several nodes:
        what is left of its term); a stop waits that long for the delivery in hand."""
        self._store = store
        self._may_act_for = may_act_for or (lambda: STOP_GRACE)
        self._on_error = on_error
        self._journal = journal
        self._events = events
        self._egress = egress or EgressPolicy(events)
        self._sender = sender
        self._hub = hub
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._idle_wait = idle_wait
        self._refresh = refresh
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._changed = asyncio.Event()
        self.sent = 0
        self.failed = 0
        self.storage_errors = 0
        self.in_doubt = 0
        """Deliveries sent again because an earlier attempt's outcome was never recorded."""
        self.fenced = 0
        """Claims or marks refused because this node's term had ended."""

    def wake(self) -> None:
        """Re-read subscriptions now (after a create, update or delete)."""
        self._changed.set()

    async def run(self) -> None:
        """Supervise the workers until cancelled; while the subscriptions cannot be read (the
        database is away) the running workers keep going and the read is tried again."""
        backoff = Backoff(initial=min(1.0, self._refresh), maximum=max(30.0, self._refresh))
        try:
            while True:
                try:
                    await self._sync_workers()
                except Exception as exc:
                    self._storage_error(exc, "webhook-dispatcher")
                    await self._sleep(backoff.next_delay())
                    continue
                backoff.reset()
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._refresh):
                        await self._changed.wait()
        finally:
            for task in self._workers.values():
                task.cancel()
            await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def _sync_workers(self) -> None:
        endpoints = {e.id: e for e in await self._store.list() if e.enabled}
        for ep_id, task in list(self._workers.items()):
            if ep_id not in endpoints or task.done():
                task.cancel()
                del self._workers[ep_id]
        for ep_id, ep in endpoints.items():
            if ep_id not in self._workers:
                self._workers[ep_id] = asyncio.create_task(
                    self._worker(ep.tenant, ep_id), name=f"webhook-{ep_id}"
                )

    def _storage_error(self, exc: Exception, component: str) -> None:
        """Count and report a failed read or write; a bug gets its traceback logged."""
        self.storage_errors += 1
        outage = self._on_error(exc, component) if self._on_error is not None else False
        if outage:
            log.warning("webhook_storage_unavailable", component=component, error=repr(exc))
        else:
            log.error("webhook_storage_error", component=component, exc_info=exc)

    async def _worker(self, tenant: str, endpoint_id: str) -> None:
        backoff = Backoff(initial=1.0, maximum=30.0)
        while True:
            try:
                idle = await self.step(tenant, endpoint_id)
                if idle is not None and idle > 0:
                    ep = await self._store.get(tenant, endpoint_id)
                    await self._hub.wait(tenant, ep.cursor if ep else 0, idle)
            except asyncio.CancelledError:
                raise
            except DeliveryFenced as exc:
                # The term ended: the dispatcher is about to be cancelled; send nothing more.
                self.fenced += 1
                log.info("webhook_delivery_fenced", endpoint=endpoint_id, reason=str(exc))
                await self._sleep(backoff.next_delay())
                continue
            except Exception as exc:  # a storage hiccup must not kill the endpoint's queue
                self._storage_error(exc, "webhook-worker")
                await self._sleep(backoff.next_delay())
                continue
            backoff.reset()
            if idle is None:
                return

    async def backlog(self) -> list[tuple[str, str, int]]:
        """``(tenant, endpoint, events)``: journal events after each enabled endpoint's cursor.

        Counts every event after the cursor, also those of types the endpoint does not take.
        """
        heads: dict[str, int] = {}
        rows: list[tuple[str, str, int]] = []
        for ep in await self._store.list():
            if not ep.enabled:
                continue
            if ep.tenant not in heads:
                heads[ep.tenant] = await self._journal.last_seq(ep.tenant)
            rows.append((ep.tenant, ep.id, max(0, heads[ep.tenant] - ep.cursor)))
        return rows

    async def step(self, tenant: str, endpoint_id: str) -> float | None:
        """Do one unit of work; return how long to idle (0 = more to do, None = stop)."""
        ep = await self._store.get(tenant, endpoint_id)
        if ep is None or not ep.enabled:
            return None
        for queued in await self._store.queued(ep.id, 20):
            await self._send_manual(ep, queued)
        now = self._clock.now()
        if ep.next_attempt_at is not None and ep.next_attempt_at > now:
            await self._sleep((ep.next_attempt_at - now).total_seconds())
            return 0.0
        page = await self._journal.list_after(
            tenant, ep.cursor, PAGE, types=list(ep.event_types) or None
        )
        if not page:
            return self._idle_wait
        for event in page:
            ep, ok = await self._deliver(ep, event)
            if not ok:
                return 0.0
        return 0.0

    async def _attempt(self, ep: WebhookEndpoint, event: StoredEvent) -> SendResult:
        envelope = (await self._events.present([event]))[0]
        body = encode_body(envelope)
        timestamp = int(self._clock.now().timestamp())
        headers = signing.headers(ep.valid_secrets(self._clock.now()), event.id, timestamp, body)
        headers["content-type"] = "application/json"
        allow = await self._egress.allow_list(ep.tenant)
        if self._may_act_for() <= 0:  # the term ended while this node was busy (or frozen)
            raise DeliveryFenced("the term ended before the POST")
        return await self._sender.send(ep.url, body, headers, allow)

    async def _deliver(
        self, ep: WebhookEndpoint, event: StoredEvent
    ) -> tuple[WebhookEndpoint, bool]:
        claim = await self._store.claim(ep.id, event.seq)
        if claim is None:  # another transaction holds the endpoint, or it moved on: re-read
            await self._sleep(CLAIM_RETRY)
            return ep, False
        if claim.in_doubt_from is not None:
            self.in_doubt += 1
            node, epoch = claim.in_doubt_from
            log.warning(
                "webhook_delivery_in_doubt",
                endpoint=ep.id,
                tenant=ep.tenant,
                event_id=event.id,
                seq=event.seq,
                claimed_by=node,
                claimed_epoch=epoch,
            )
        delivery = asyncio.ensure_future(self._send_and_mark(ep, event, claim))
        try:
            return await asyncio.shield(delivery)
        except asyncio.CancelledError:
            await self._finish_in_hand(delivery)
            raise

    async def _finish_in_hand(self, delivery: asyncio.Future[Any]) -> None:
        """Cancelled mid-delivery: a stop lets it finish (and be marked) while this node may
        still act; a lost term cuts it off at once (its mark would be refused anyway)."""
        try:
            grace = self._may_act_for()
            if grace > 0 and not delivery.done():
                await asyncio.wait({delivery}, timeout=grace)
        finally:
            if not delivery.done():
                delivery.cancel()
            with contextlib.suppress(BaseException):
                await delivery

    async def _send_and_mark(
        self, ep: WebhookEndpoint, event: StoredEvent, claim: DeliveryClaim
    ) -> tuple[WebhookEndpoint, bool]:
        result = await self._attempt(ep, event)
        now = self._clock.now()
        attempt_no = ep.attempts + 1
        entry = DeliveryAttempt(
            id=0,
            endpoint_id=ep.id,
            event_seq=event.seq,
            event_id=event.id,
            status="succeeded" if result.ok else "failed",
            manual=False,
            attempt=attempt_no,
            at=now,
            http_status=result.status,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        if result.ok:
            self.sent += 1
            ep = replace(ep, cursor=event.seq, attempts=0, next_attempt_at=None, failing_since=None)
            await self._store.advance(ep, entry, claim)
            return ep, True
        self.failed += 1
        failing_since = ep.failing_since or now
        if retry.should_disable(now - failing_since):
            ep = replace(
                ep,
                enabled=False,
                disabled_reason=f"failing since {failing_since.isoformat()}",
                attempts=attempt_no,
            )
            log.warning("webhook_disabled", endpoint=ep.id, tenant=ep.tenant)
        elif ep.attempts > 0 and retry.should_give_up(now - (ep.failing_since or now)):
            # The head event has failed for 3 days: skip it (it stays in the log) and go on.
            ep = replace(ep, cursor=event.seq, attempts=0, next_attempt_at=None)
        else:
            delay = retry.retry_delay(attempt_no, self._rng)
            ep = replace(
                ep, attempts=attempt_no, next_attempt_at=now + delay, failing_since=failing_since
            )
        await self._store.advance(ep, entry, claim)
        return ep, False

    async def _send_manual(self, ep: WebhookEndpoint, queued: DeliveryAttempt) -> None:
        event = await self._journal.get(ep.tenant, queued.event_seq)
        if event is None:
            await self._store.finish_queued(
                queued.id, replace(queued, status="failed", error="event expired", attempt=1)
            )
            return
        result = await self._attempt(ep, event)
        await self._store.finish_queued(
            queued.id,
            replace(
                queued,
                status="succeeded" if result.ok else "failed",
                attempt=1,
                at=self._clock.now(),
                http_status=result.status,
                error=result.error,
                duration_ms=result.duration_ms,
            ),
        )
