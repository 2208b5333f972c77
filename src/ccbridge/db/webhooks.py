"""Webhook subscriptions, their delivery cursors and the delivery log in SQL.

Each delivery is claimed on its endpoint's row before the POST and marked after it (ADR
0030). With several nodes both run in a transaction that first reads this node's lease row
``FOR KEY SHARE`` (as the call batches do, ADR 0026): a node whose term ended can neither claim
nor mark, and a takeover waits for a mark already past the check. The claim reads the
endpoint row ``FOR UPDATE SKIP LOCKED``: while another transaction holds it (a mark, an
admin's edit, a late claimant), this one skips instead of queueing behind it.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.call_batches import FencingToken
from ccbridge.db.event_tables import WebhookDeliveryRow, WebhookEndpointRow
from ccbridge.services.event_ports import (
    SETTINGS_FIELDS,
    DeliveryAttempt,
    DeliveryClaim,
    DeliveryFenced,
    WebhookEndpoint,
    WebhookSecret,
)

_TERM = text(
    "SELECT epoch, set_config('idle_in_transaction_session_timeout', :idle, true) FROM pbx_owners"
    " WHERE pbx = :pbx AND node = :node AND epoch = :epoch FOR KEY SHARE"
)
"""The term check, and (in the same round trip) ``SET LOCAL`` of the idle timeout."""
_CURRENT_CLAIM = text(
    "SELECT cursor, claim_seq, claim_node, claim_epoch FROM webhook_endpoints WHERE id = :id"
)
_SET_CLAIM = text(
    "UPDATE webhook_endpoints SET claim_seq = :seq, claim_node = :node, claim_epoch = :epoch,"
    " claimed_at = :now WHERE id = :id"
)
_PG_CLAIM = text(
    """
WITH cur AS (
    SELECT id, cursor, claim_seq, claim_node, claim_epoch FROM webhook_endpoints
     WHERE id = :id FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE webhook_endpoints AS e
       SET claim_seq = :seq, claim_node = :node, claim_epoch = :epoch, claimed_at = :now
      FROM cur WHERE e.id = cur.id AND cur.cursor < :seq
)
SELECT cursor, claim_seq, claim_node, claim_epoch FROM cur
"""
)
"""The endpoint row ``FOR UPDATE SKIP LOCKED``, its claim before ours, and ours written."""
SINGLE_NODE = "single"
"""The claimant's name without HA (its epoch is 0)."""


def _secrets_to_json(endpoint: WebhookEndpoint) -> list[dict[str, Any]]:
    return [
        {
            "secret": s.secret,
            "created_at": s.created_at.isoformat(),
            "expires_at": None if s.expires_at is None else s.expires_at.isoformat(),
        }
        for s in endpoint.secrets
    ]


def row_to_endpoint(row: WebhookEndpointRow) -> WebhookEndpoint:
    """Rebuild a subscription from its row."""
    return WebhookEndpoint(
        id=row.id,
        tenant=row.tenant,
        url=row.url,
        event_types=tuple(row.event_types),
        secrets=tuple(
            WebhookSecret(
                secret=s["secret"],
                created_at=datetime.fromisoformat(s["created_at"]),
                expires_at=None
                if s["expires_at"] is None
                else datetime.fromisoformat(s["expires_at"]),
            )
            for s in row.secrets
        ),
        enabled=row.enabled,
        cursor=row.cursor,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        failing_since=row.failing_since,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
    )


def _values(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "secrets": _secrets_to_json(endpoint),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "cursor": endpoint.cursor,
        "attempts": endpoint.attempts,
        "next_attempt_at": endpoint.next_attempt_at,
        "failing_since": endpoint.failing_since,
    }


def _attempt_values(a: DeliveryAttempt, tenant: str) -> dict[str, Any]:
    return {
        "endpoint_id": a.endpoint_id,
        "tenant": tenant,
        "event_seq": a.event_seq,
        "event_id": a.event_id,
        "status": a.status,
        "manual": a.manual,
        "attempt": a.attempt,
        "http_status": a.http_status,
        "error": a.error,
        "duration_ms": a.duration_ms,
        "at": a.at,
    }


def row_to_attempt(row: WebhookDeliveryRow) -> DeliveryAttempt:
    """Rebuild a delivery-log row."""
    return DeliveryAttempt(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_seq=row.event_seq,
        event_id=row.event_id,
        status=row.status,
        manual=row.manual,
        attempt=row.attempt,
        at=row.at,
        http_status=row.http_status,
        error=row.error,
        duration_ms=row.duration_ms,
    )


class SqlWebhookStore:
    """Implements ``services.event_ports.WebhookStore``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method is one short transaction."""
        self._sessions = session_factory
        self.fence: Callable[[], FencingToken | None] | None = None
        """With several nodes: this node's term; claims and marks check it in the database."""
        self.idle_in_transaction_ms: int | None = None
        """With several nodes: a claim or mark transaction left idle this long (the node
        froze inside it) is ended by the server, so it cannot hold the lease row."""

    def _term(self) -> FencingToken | None:
        if self.fence is None:
            return None
        token = self.fence()
        if token is None:
            raise DeliveryFenced("this node does not own the PBX")
        return token

    async def _check_term(self, db: AsyncSession, token: FencingToken) -> None:
        pbx, node, epoch = token
        idle = str(int(self.idle_in_transaction_ms or 0))  # 0: PostgreSQL's "no limit"
        found = await db.execute(_TERM, {"pbx": pbx, "node": node, "epoch": epoch, "idle": idle})
        if found.first() is None:
            raise DeliveryFenced(f"the lease no longer names this term ({token})")

    async def add(self, endpoint: WebhookEndpoint) -> None:
        """Insert a subscription."""
        values = _values(endpoint)
        values.update(
            id=endpoint.id,
            tenant=endpoint.tenant,
            created_at=endpoint.created_at or datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )
        async with self._sessions() as db, db.begin():
            await db.execute(insert(WebhookEndpointRow), [values])

    async def get(self, tenant: str, endpoint_id: str) -> WebhookEndpoint | None:
        """One subscription of *tenant*."""
        async with self._sessions() as db:
            row = await db.get(WebhookEndpointRow, endpoint_id)
        return None if row is None or row.tenant != tenant else row_to_endpoint(row)

    async def list(self, tenant: str | None = None) -> builtins.list[WebhookEndpoint]:
        """Subscriptions by creation, of one tenant or all."""
        stmt = select(WebhookEndpointRow).order_by(
            WebhookEndpointRow.created_at, WebhookEndpointRow.id
        )
        if tenant is not None:
            stmt = stmt.where(WebhookEndpointRow.tenant == tenant)
        async with self._sessions() as db:
            rows = (await db.execute(stmt)).scalars().all()
        return [row_to_endpoint(r) for r in rows]

    async def update(self, endpoint: WebhookEndpoint, fields: Collection[str]) -> None:
        """Write only the named settings, so a stale copy never rewinds the worker's state."""
        unknown = set(fields) - SETTINGS_FIELDS
        if unknown:
            raise ValueError(f"not endpoint settings: {sorted(unknown)}")
        values = {k: v for k, v in _values(endpoint).items() if k in fields}
        if not values:
            return
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(WebhookEndpointRow)
                .where(WebhookEndpointRow.id == endpoint.id)
                .values(**values, updated_at=datetime.now(UTC))
            )

    async def delete(self, tenant: str, endpoint_id: str) -> bool:
        """Remove a subscription and its log."""
        async with self._sessions() as db, db.begin():
            gone = await db.execute(
                delete(WebhookEndpointRow)
                .where(WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.tenant == tenant)
                .returning(WebhookEndpointRow.id)
            )
            if gone.first() is None:
                return False
            await db.execute(
                delete(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == endpoint_id)
            )
        return True

    async def log(self, attempt: DeliveryAttempt) -> None:
        """Append one log row."""
        async with self._sessions() as db, db.begin():
            tenant = await self._tenant(db, attempt.endpoint_id)
            await db.execute(insert(WebhookDeliveryRow), [_attempt_values(attempt, tenant)])

    async def claim(self, endpoint_id: str, seq: int) -> DeliveryClaim | None:
        """Claim event *seq*'s delivery to the endpoint for this node's term (see the module)."""
        token = self._term()
        node, epoch = (token[1], token[2]) if token is not None else (SINGLE_NODE, 0)
        values = {"id": endpoint_id, "seq": seq, "node": node, "epoch": epoch}
        async with self._sessions() as db, db.begin():
            if token is not None:
                await self._check_term(db, token)
            if db.get_bind().dialect.name == "postgresql":
                # One round trip: lock (or skip), read the old claim, write ours.
                row = (await db.execute(_PG_CLAIM, values | {"now": datetime.now(UTC)})).first()
            else:
                row = (await db.execute(_CURRENT_CLAIM, values)).first()
                if row is not None and row.cursor < seq:
                    await db.execute(_SET_CLAIM, values | {"now": datetime.now(UTC)})
            if row is None or row.cursor >= seq:
                return None  # held by another transaction, gone, or delivered meanwhile
        prior = (row.claim_node or "", row.claim_epoch or 0) if row.claim_seq == seq else None
        return DeliveryClaim(endpoint_id, seq, node, epoch, prior)

    async def advance(
        self,
        endpoint: WebhookEndpoint,
        attempt: DeliveryAttempt | None,
        claim: DeliveryClaim | None = None,
    ) -> None:
        """Cursor/retry state and its log row together (a crash never splits them).

        The worker's copy of the settings may be stale (an admin just rotated the secret or
        disabled the endpoint), so only the delivery state is written, plus ``enabled=False``
        when the worker disables a failing endpoint; it never re-enables one. With *claim*
        this is the delivery's mark: written only while the claim is still this term's, and
        it clears the claim.
        """
        state: dict[str, Any] = {
            "cursor": endpoint.cursor,
            "attempts": endpoint.attempts,
            "next_attempt_at": endpoint.next_attempt_at,
            "failing_since": endpoint.failing_since,
        }
        if not endpoint.enabled:
            state |= {"enabled": False, "disabled_reason": endpoint.disabled_reason}
        stmt = update(WebhookEndpointRow).where(WebhookEndpointRow.id == endpoint.id)
        token: FencingToken | None = None
        if claim is not None:
            token = self._term()
            if token is not None and token[2] != claim.epoch:
                raise DeliveryFenced(f"the claim is of term {claim.epoch}, not {token[2]}")
            stmt = stmt.where(
                WebhookEndpointRow.claim_seq == claim.seq,
                WebhookEndpointRow.claim_node == claim.node,
                WebhookEndpointRow.claim_epoch == claim.epoch,
            )
            state |= {"claim_seq": None, "claim_node": None, "claim_epoch": None}
            state["claimed_at"] = None
        async with self._sessions() as db, db.begin():
            if token is not None:
                await self._check_term(db, token)
            done: CursorResult[Any] = await db.execute(  # type: ignore[assignment]
                stmt.values(**state, updated_at=datetime.now(UTC))
            )
            if claim is not None and done.rowcount != 1:
                raise DeliveryFenced(f"another node claimed event {claim.seq} meanwhile")
            if attempt is not None:
                await db.execute(
                    insert(WebhookDeliveryRow), [_attempt_values(attempt, endpoint.tenant)]
                )

    async def deliveries(
        self, endpoint_id: str, *, before: int | None = None, limit: int = 100
    ) -> builtins.list[DeliveryAttempt]:
        """The log newest first (keyset on id)."""
        stmt = select(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == endpoint_id)
        if before is not None:
            stmt = stmt.where(WebhookDeliveryRow.id < before)
        stmt = stmt.order_by(WebhookDeliveryRow.id.desc()).limit(limit)
        async with self._sessions() as db:
            rows = (await db.execute(stmt)).scalars().all()
        return [row_to_attempt(r) for r in rows]

    async def queued(self, endpoint_id: str, limit: int = 100) -> builtins.list[DeliveryAttempt]:
        """Manual redeliveries still waiting, oldest first."""
        stmt = (
            select(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.endpoint_id == endpoint_id,
                WebhookDeliveryRow.status == "queued",
            )
            .order_by(WebhookDeliveryRow.id)
            .limit(limit)
        )
        async with self._sessions() as db:
            rows = (await db.execute(stmt)).scalars().all()
        return [row_to_attempt(r) for r in rows]

    async def finish_queued(self, row_id: int, attempt: DeliveryAttempt) -> None:
        """Record a manual delivery's outcome on its queued row."""
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.id == row_id)
                .values(
                    status=attempt.status,
                    attempt=attempt.attempt,
                    http_status=attempt.http_status,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                    at=attempt.at,
                )
            )

    async def delete_deliveries_before(self, cutoff: datetime, *, batch: int = 5000) -> int:
        """Retention: delete sent or failed log rows older than *cutoff*, in bounded batches
        (a queued manual redelivery is never dropped before it is sent)."""
        total = 0
        while True:
            async with self._sessions() as db:
                ids = (
                    (
                        await db.execute(
                            select(WebhookDeliveryRow.id)
                            .where(
                                WebhookDeliveryRow.at < cutoff,
                                WebhookDeliveryRow.status != "queued",
                            )
                            .limit(batch)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return total
                await db.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.id.in_(ids)))
                await db.commit()
            total += len(ids)

    async def _tenant(self, db: AsyncSession, endpoint_id: str) -> str:
        row = await db.get(WebhookEndpointRow, endpoint_id)
        return "" if row is None else row.tenant
