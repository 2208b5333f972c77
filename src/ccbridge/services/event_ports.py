"""Ports of the CRM event journal, call parameters and webhooks (Protocols)."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.journal.types import EncodedEvent, NewEvent, StoredEvent


class JournalStore(Protocol):
    """The append-only per-tenant journal."""

    async def write(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Append events in a transaction of their own; return what was stored."""
        ...

    async def list_after(
        self,
        tenant: str,
        after: int,
        limit: int = 100,
        *,
        types: Sequence[str] | None = None,
        call_id: str | None = None,
    ) -> list[StoredEvent]:
        """Events with ``seq > after`` in cursor order."""
        ...

    async def list_encoded(
        self, tenant: str, after: int, limit: int = 100, *, types: Sequence[str] | None = None
    ) -> list[EncodedEvent]:
        """Events with ``seq > after`` in cursor order, as stored envelope bytes."""
        ...

    async def get(self, tenant: str, seq: int) -> StoredEvent | None:
        """One event by cursor."""
        ...

    async def last_seq(self, tenant: str) -> int:
        """The tenant's newest cursor (0 before its first event)."""
        ...

    async def delete_before(self, cutoff: datetime) -> int:
        """Retention: delete events recorded before *cutoff*."""
        ...


class EventSettingsStore(Protocol):
    """Per-tenant switches."""

    async def get(self, tenant: str) -> tuple[list[str], bool, list[str]] | None:
        """``(extras, sandbox, allow_private)`` or ``None``."""
        ...

    async def put(
        self, tenant: str, extras: Sequence[str], sandbox: bool, allow_private: Sequence[str]
    ) -> None:
        """Create or overwrite."""
        ...


class CallParamsStore(Protocol):
    """Calls with their per-leg detail."""

    async def get_with_params(self, call_id: str, tenant: str | None = None) -> CallRecord | None:
        """One call with legs, offers, transfers and extras."""
        ...

    async def list_with_params(
        self,
        *,
        tenant: str,
        start: datetime,
        end: datetime,
        after: tuple[datetime, str] | None = None,
        limit: int = 500,
    ) -> list[CallRecord]:
        """Calls started in ``[start, end)``, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class EventSettings:
    """A tenant's event switches (all off by default)."""

    extras: frozenset[str] = frozenset()
    sandbox: bool = False
    allow_private: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """One signing secret; a rotated-out secret stays valid until ``expires_at``."""

    secret: str
    created_at: datetime
    expires_at: datetime | None = None


SETTINGS_FIELDS = frozenset(
    {"url", "event_types", "secrets", "enabled", "disabled_reason", "attempts"}
    | {"next_attempt_at", "failing_since"}
)
"""Endpoint fields an admin may write: settings, and the failure state a re-enable clears.
``cursor`` is not among them: only the delivery worker moves it (``WebhookStore.advance``)."""


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A tenant's subscription and its delivery state."""

    id: str
    tenant: str
    url: str
    event_types: tuple[str, ...]
    secrets: tuple[WebhookSecret, ...]
    enabled: bool
    cursor: int
    attempts: int = 0
    next_attempt_at: datetime | None = None
    failing_since: datetime | None = None
    disabled_reason: str | None = None
    created_at: datetime | None = None

    def wants(self, event_type: str) -> bool:
        """Whether the filter selects *event_type* (empty filter = every type)."""
        return not self.event_types or event_type in self.event_types

    def valid_secrets(self, now: datetime) -> list[str]:
        """Secrets that sign now (newest first)."""
        live = [s for s in self.secrets if s.expires_at is None or s.expires_at > now]
        return [s.secret for s in sorted(live, key=lambda s: s.created_at, reverse=True)]


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One row of the delivery log."""

    id: int
    endpoint_id: str
    event_seq: int
    event_id: str
    status: str
    manual: bool
    attempt: int
    at: datetime
    http_status: int | None = None
    error: str | None = None
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one HTTP attempt produced."""

    ok: bool
    status: int | None = None
    error: str | None = None
    duration_ms: int = 0
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliveryClaim:
    """This node's claim on an endpoint's head event, made before the POST (ADR 0030)."""

    endpoint_id: str
    seq: int
    node: str
    epoch: int
    """The claimant's fencing term (0 with a single node)."""
    in_doubt_from: tuple[str, int] | None = None
    """``(node, epoch)`` of an earlier claim of the same delivery whose outcome nobody
    recorded (a crash, fence or lost database between its POST and its mark): the receiver
    may have this event already, so it may now get it twice (same ``webhook-id``)."""


class DeliveryFenced(Exception):
    """This node's term ended (or the endpoint's claim is no longer its own): it may neither
    send nor mark a delivery."""


class WebhookStore(Protocol):
    """Subscriptions, their cursors and the delivery log."""

    async def add(self, endpoint: WebhookEndpoint) -> None:
        """Insert a subscription."""
        ...

    async def get(self, tenant: str, endpoint_id: str) -> WebhookEndpoint | None:
        """One subscription of *tenant*."""
        ...

    async def list(self, tenant: str | None = None) -> list[WebhookEndpoint]:
        """Subscriptions of a tenant (``None``: all, for the dispatcher)."""
        ...

    async def update(self, endpoint: WebhookEndpoint, fields: Collection[str]) -> None:
        """Write only the named settings of *endpoint* (never the worker's cursor).

        *fields* is a subset of ``SETTINGS_FIELDS``; writing only what changed keeps an admin's
        edit from overwriting the delivery state the worker advanced meanwhile.
        """
        ...

    async def delete(self, tenant: str, endpoint_id: str) -> bool:
        """Remove a subscription; ``False`` if absent."""
        ...

    async def log(self, attempt: DeliveryAttempt) -> None:
        """Append one delivery-log row (``id`` is assigned by the store)."""
        ...

    async def advance(
        self,
        endpoint: WebhookEndpoint,
        attempt: DeliveryAttempt | None,
        claim: DeliveryClaim | None = None,
    ) -> None:
        """Store the endpoint's cursor/retry state and the log row in one transaction; with
        *claim*, only while that claim (and its term) is still current, clearing it
        (``DeliveryFenced`` otherwise, and nothing is written)."""
        ...

    async def claim(self, endpoint_id: str, seq: int) -> DeliveryClaim | None:
        """Claim the delivery of event *seq* to the endpoint before sending it. ``None`` when
        another transaction holds the endpoint (try again shortly) or its cursor is already
        past *seq*; ``DeliveryFenced`` when this node may not deliver."""
        ...

    async def deliveries(
        self, endpoint_id: str, *, before: int | None = None, limit: int = 100
    ) -> builtins.list[DeliveryAttempt]:
        """The delivery log newest first."""
        ...

    async def queued(self, endpoint_id: str, limit: int = 100) -> builtins.list[DeliveryAttempt]:
        """Manual redeliveries waiting to be sent, oldest first."""
        ...

    async def delete_deliveries_before(self, cutoff: datetime) -> int:
        """Retention: drop log rows from before *cutoff* (queued redeliveries stay)."""
        ...

    async def finish_queued(self, row_id: int, attempt: DeliveryAttempt) -> None:
        """Turn a queued manual row into its outcome."""
        ...


class WebhookSender(Protocol):
    """Sends one signed request (the HTTP adapter; guards the target address)."""

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], allow_private: Sequence[str]
    ) -> SendResult:
        """POST *body*; never raises for network or HTTP errors."""
        ...

    async def check_target(self, url: str, allow_private: Sequence[str]) -> None:
        """Resolve the URL's host; raise ``TargetRefusedError`` for a forbidden address."""
        ...
