"""The event journal (outbox) in SQL: append inside the caller's transaction, read by cursor.

Cursor ordering (ADR 0008): each tenant has one ``event_counters`` row. A writing transaction
increments it with ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` and so holds that row's lock
until it commits; a second writer of the same tenant waits, takes the next numbers and commits
later. A tenant's events therefore become visible strictly in ``seq`` order, and a poller
at cursor N never misses a late-committing N-1. Commits then publish to the in-process hub
under one asyncio lock, so the hub sees them in commit order too.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Table, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.engine import PgReadPool
from ccbridge.db.event_tables import EventCounterRow, EventRow, EventSettingsRow
from ccbridge.db.sqlite_reads import (
    ReadPool,
    SqliteReadPool,
    journal_page_sql,
    split_journal_page,
)
from ccbridge.db.sqlite_rows import one_step_insert, rows_json, sqlite_time
from ccbridge.domain.journal.types import (
    SCHEMA_VERSION,
    EncodedEvent,
    NewEvent,
    StoredEvent,
    envelope,
)
from ccbridge.services.event_codec import encode_json, envelope_bytes

EVENT_NAMESPACE = uuid.UUID("1b0f2c6e-4f3a-5d7e-9a51-7c0c2b1de7a0")
"""UUIDv5 namespace of event ids: the same (tenant, key) always yields the same id."""
MAX_PAGE = 1000
YIELD_EVERY = 50
"""Events encoded between two yields to the event loop while a batch is appended."""

_EVENTS: Table = EventRow.__table__  # type: ignore[assignment]

_COLUMNS = (
    _EVENTS.c.tenant,
    _EVENTS.c.seq,
    _EVENTS.c.id,
    _EVENTS.c.type,
    _EVENTS.c.occurred_at,
    _EVENTS.c.recorded_at,
    _EVENTS.c.data,
    _EVENTS.c.call_id,
    _EVENTS.c.envelope,
)
"""In :class:`StoredEvent` field order, then the envelope (``data`` is NULL where the envelope
holds it: migration 0023 on, the JSON is stored once)."""

OnCommit = Callable[[Sequence[StoredEvent]], None]


_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


def event_id(tenant: str, key: str) -> str:
    """The idempotency id of an event (stable across re-derivation and restarts).

    ``str(uuid.uuid5(EVENT_NAMESPACE, tenant + NUL + key))``, computed without building a
    ``UUID`` object (a third of encoding an event on the write path)."""
    digest = bytearray(
        hashlib.sha1(
            _NAMESPACE_BYTES + f"{tenant}\x00{key}".encode(), usedforsecurity=False
        ).digest()
    )
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _insert(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"journal not implemented for dialect {dialect!r}")


def event_data(data: Any, envelope_json: bytes | None) -> dict[str, Any]:
    """An event's ``data``: the column where a row still has it (written before migration
    0023), else the ``data`` member of the stored envelope (the JSON is stored once)."""
    if data is not None:
        return orjson.loads(data) if isinstance(data, str | bytes) else dict(data)
    if envelope_json is None:
        raise ValueError("journal row has neither data nor envelope")
    return dict(orjson.loads(data_text(bytes(envelope_json))))


def _stored(row: Sequence[Any]) -> StoredEvent:
    """A :data:`_COLUMNS` row as a stored event (its envelope kept as encoded)."""
    envelope_json = None if row[8] is None else bytes(row[8])
    return StoredEvent(
        tenant=row[0],
        seq=row[1],
        id=row[2],
        type=row[3],
        occurred_at=row[4],
        recorded_at=row[5],
        data=event_data(row[6], envelope_json),
        call_id=row[7],
        encoded=envelope_json,
    )


def row_to_event(row: EventRow) -> StoredEvent:
    """Rebuild a stored event from its row."""
    return _stored(
        (
            row.tenant,
            row.seq,
            row.id,
            row.type,
            row.occurred_at,
            row.recorded_at,
            row.data,
            row.call_id,
            row.envelope,
        )
    )


_PG_PAGE = (
    "SELECT tenant, seq, id, type, occurred_at, recorded_at, data::text, call_id, envelope "
    "FROM events WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3"
)
_PG_ENCODED = (
    "SELECT seq, type, envelope, has_extras FROM events "
    "WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3"
)
_PG_ENCODED_TYPES = (
    "SELECT seq, type, envelope, has_extras FROM events "
    "WHERE tenant = $1 AND seq > $2 AND type = ANY($4::varchar[]) ORDER BY seq LIMIT $3"
)
_PG_ENCODED_MANY = (
    "SELECT c.tenant, e.seq, e.type, e.envelope, e.has_extras "
    "FROM unnest($1::varchar[], $2::bigint[]) AS c(tenant, after) "
    "CROSS JOIN LATERAL (SELECT seq, type, envelope, has_extras FROM events "
    "WHERE tenant = c.tenant AND seq > c.after ORDER BY seq LIMIT $3) AS e "
    "ORDER BY c.tenant, e.seq"
)
"""Several tenants' pages in one round trip (each still a keyset read on the primary key)."""
PG_EVENTS_INSERT = (
    "INSERT INTO events (tenant, seq, id, type, call_id, occurred_at, recorded_at,"
    " envelope, has_extras) "
    "SELECT u.tenant, u.seq, u.id, u.type, u.call_id, u.occurred_at, $7,"
    " u.envelope, u.has_extras "
    "FROM unnest($1::varchar[], $2::bigint[], $3::varchar[], $4::varchar[], $5::varchar[],"
    " $6::timestamptz[], $8::bytea[], $9::bool[])"
    " AS u(tenant, seq, id, type, call_id, occurred_at, envelope, has_extras) "
    "ON CONFLICT (id) DO NOTHING RETURNING tenant, seq"
)
"""The whole batch in one statement, arrays bound once (no per-row round trip or
SQLAlchemy parameter processing); the counter bump before it started the transaction. The
JSON is stored once, as the envelope (``data`` stays NULL; migration 0023)."""
_PG_BUMP = text(
    "INSERT INTO event_counters (tenant, last_seq) "
    "SELECT u.tenant, u.n FROM unnest(CAST(:tenants AS varchar[]), CAST(:counts AS bigint[]))"
    " AS u(tenant, n) ORDER BY u.tenant "
    "ON CONFLICT (tenant) DO UPDATE SET last_seq = event_counters.last_seq + EXCLUDED.last_seq "
    "RETURNING tenant, last_seq"
)
"""Every tenant of a batch in one statement; ``ORDER BY`` makes it lock the counter rows in
name order (writers of overlapping tenants queue, never deadlock). Run through the session,
so it also begins the transaction the raw INSERT below joins."""


async def _driver(db: AsyncSession) -> Any:
    """The asyncpg connection under *db* (inside its transaction once one has begun)."""
    conn = await db.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _pg_page(db: AsyncSession, tenant: str, after: int, limit: int) -> list[StoredEvent]:
    """The hot poll query on asyncpg directly: the same SQL, without per-row SQLAlchemy type
    processing (half the cost of a page of 100; docs/benchmarks.md, Events)."""
    driver = await _driver(db)
    rows = await driver.fetch(_PG_PAGE, tenant, after, limit)
    return [
        StoredEvent(
            tenant=r[0],
            seq=r[1],
            id=r[2],
            type=r[3],
            occurred_at=r[4].astimezone(UTC),
            recorded_at=r[5].astimezone(UTC),
            data=event_data(r[6], r[8]),
            call_id=r[7],
            encoded=r[8],
        )
        for r in rows
    ]


def stored_event(
    tenant: str, seq: int, e: NewEvent, recorded_at: datetime, recorded_text: str | None = None
) -> StoredEvent:
    """The event as it will be stored, its envelope encoded once for every later reader.

    *recorded_text* is ``recorded_at`` as the envelope spells it, when a batch computed it."""
    occurred_at = e.occurred_at
    if occurred_at.tzinfo is not UTC:
        if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
            raise ValueError(f"naive occurred_at {occurred_at!r}; pass an aware UTC time")
        occurred_at = occurred_at.astimezone(UTC)
    eid = event_id(tenant, e.key)
    kind = e.type.value
    if recorded_text is None:
        env = envelope(tenant, seq, eid, kind, occurred_at, recorded_at, e.data, e.call_id)
    else:  # the same keys in the same order as ``envelope``, the batch's time spelt once
        env = {
            "id": eid,
            "cursor": str(seq),
            "type": kind,
            "schema_version": SCHEMA_VERSION,
            "tenant": tenant,
            "call_id": e.call_id,
            "occurred_at": _envelope_utc(occurred_at),
            "recorded_at": recorded_text,
            "data": e.data,
        }
    return StoredEvent(
        tenant=tenant,
        seq=seq,
        id=eid,
        type=kind,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        data=e.data,
        call_id=e.call_id,
        encoded=encode_json(env),
    )


async def _pg_insert(
    db: AsyncSession, events: Sequence[StoredEvent], recorded_at: datetime
) -> set[tuple[str, int]]:
    """Insert a batch with one array-bound statement; return the (tenant, seq) written."""
    driver = await _driver(db)
    rows = await driver.fetch(
        PG_EVENTS_INSERT,
        [e.tenant for e in events],
        [e.seq for e in events],
        [e.id for e in events],
        [e.type for e in events],
        [e.call_id for e in events],
        [e.occurred_at for e in events],
        recorded_at,
        [e.encoded for e in events],
        [e.has_extras for e in events],
    )
    return {(r[0], r[1]) for r in rows}


EVENT_COLUMNS = (
    "tenant",
    "seq",
    "id",
    "type",
    "call_id",
    "occurred_at",
    "recorded_at",
    "envelope",
    "has_extras",
)
"""The columns every writer of ``events`` sets; the JSON is stored once, as the envelope, and
``data`` stays NULL (migration 0023)."""
SQLITE_EVENTS_ONE_STEP = one_step_insert(
    "events",
    EVENT_COLUMNS,
    blobs=("envelope",),
    tail="ON CONFLICT (id) DO NOTHING",
    bind=":rows",
)
"""A batch of every tenant in one statement step (``sqlite_rows``): the ORM's ``INSERT …
RETURNING`` stepped once per row, each step a GIL hand-off that waits behind a busy loop."""
_SQLITE_KEYS_WRITTEN = (
    "SELECT tenant, seq FROM events WHERE id IN (SELECT value FROM json_each(:ids))"
)
_SQLITE_BUMP_MANY = (
    "INSERT INTO event_counters (tenant, last_seq) SELECT value->>0, value->>1 "
    "FROM json_each(:counts) WHERE true ON CONFLICT (tenant) "
    "DO UPDATE SET last_seq = event_counters.last_seq + excluded.last_seq"
)
_SQLITE_COUNTERS = (
    "SELECT json_group_object(tenant, last_seq) FROM event_counters "
    "WHERE tenant IN (SELECT value FROM json_each(:tenants))"
)
"""Every tenant of a batch bumped in one statement and read back in one row (SQLite: the
database is locked whole, so there is no name order to keep)."""


def sqlite_event_row(e: StoredEvent, recorded_at: str | None, envelope: Any) -> tuple[Any, ...]:
    """An ``events`` row in :data:`EVENT_COLUMNS` order, its times spelt as SQLite stores
    them; *envelope* as the statement binds it (bytes, or text in a JSON array)."""
    return (
        e.tenant,
        e.seq,
        e.id,
        e.type,
        e.call_id,
        sqlite_time(e.occurred_at),
        recorded_at,
        envelope,
        e.has_extras,
    )


def envelope_text(e: StoredEvent) -> str:
    """The envelope as text, for a JSON-bound batch (``sqlite_rows``)."""
    return (e.encoded if e.encoded is not None else envelope_bytes(e)).decode()


async def _sqlite_bump(db: AsyncSession, counts: dict[str, int]) -> dict[str, int]:
    """Add *counts* to the tenants' counters; each tenant's last seq after it."""
    await db.execute(text(_SQLITE_BUMP_MANY), {"counts": rows_json(list(counts.items()))})
    tenants = orjson.dumps(list(counts)).decode()
    (last,) = (await db.execute(text(_SQLITE_COUNTERS), {"tenants": tenants})).one()
    return {tenant: int(seq) for tenant, seq in orjson.loads(last).items()}


async def _sqlite_insert(db: AsyncSession, events: Sequence[StoredEvent]) -> set[tuple[str, int]]:
    """Insert a batch (SQLite) in one step; return the ``(tenant, seq)`` written."""
    rows = [sqlite_event_row(e, sqlite_time(e.recorded_at), envelope_text(e)) for e in events]
    inserted = await db.execute(text(SQLITE_EVENTS_ONE_STEP), {"rows": rows_json(rows)})
    if inserted.rowcount == len(rows):  # type: ignore[attr-defined]
        return {(e.tenant, e.seq) for e in events}
    # Some ids existed (a retried batch): only the events that took their own number count.
    ids = orjson.dumps([e.id for e in events]).decode()
    found = await db.execute(text(_SQLITE_KEYS_WRITTEN), {"ids": ids})
    return {(tenant, int(seq)) for tenant, seq in found}


NOTIFY_CHANNEL = "ccbridge_events"
"""PostgreSQL channel on which a commit announces ``tenant:first_seq:last_seq`` it wrote."""
_NOTIFY_BYTES = 7000
"""Under PostgreSQL's 8,000-byte payload limit."""


_ENVELOPE_TEXT: dict[datetime, str] = {}


def _envelope_utc(at: datetime) -> str:
    """A UTC time as the envelope spells it, remembered (a call's events repeat instants)."""
    text = _ENVELOPE_TEXT.get(at)
    if text is None:
        text = at.isoformat().replace("+00:00", "Z")
        if len(_ENVELOPE_TEXT) >= 65_536:
            _ENVELOPE_TEXT.clear()
        _ENVELOPE_TEXT[at] = text
    return text


def envelope_time(at: datetime) -> str:
    """A UTC time as the envelope spells it (``…Z``)."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def data_text(encoded: bytes) -> str:
    """The ``data`` member of an encoded envelope as JSON text (it is the last member, and
    ``,"data":`` cannot occur earlier: quotes inside JSON strings are escaped)."""
    return encoded[encoded.index(b',"data":') + 8 : -1].decode()


def notify_payloads(stored: Sequence[StoredEvent]) -> list[str]:
    """``tenant:first_seq:last_seq`` per tenant of *stored*, packed under the payload limit."""
    span: dict[str, tuple[int, int]] = {}
    for e in stored:
        span[e.tenant] = (span.get(e.tenant, (e.seq, 0))[0], e.seq)
    parts = [f"{tenant}:{first}:{last}" for tenant, (first, last) in span.items()]
    payloads: list[str] = []
    while parts:
        chunk: list[str] = []
        while parts and sum(len(p) + 1 for p in chunk) + len(parts[0]) < _NOTIFY_BYTES:
            chunk.append(parts.pop(0))
        payloads.append(",".join(chunk))
    return payloads


PG_NOTIFY = "SELECT pg_notify($1, $2)"


async def _pg_notify(db: AsyncSession, stored: Sequence[StoredEvent]) -> None:
    """Queue a NOTIFY in the writing transaction: delivered at commit, in commit order, to the
    API processes' listeners (``PgEventListener``), never for a rolled-back batch."""
    driver = await _driver(db)
    for payload in notify_payloads(stored):
        await driver.execute(PG_NOTIFY, NOTIFY_CHANNEL, payload)


class CommitOrder:
    """Hands committed journal batches to the hub in commit order, whichever thread committed.

    A writer takes a ticket while it still holds its tenants' counter rows (PostgreSQL) or the
    database's write lock (SQLite), right before COMMIT; a later writer of the same tenant can
    only take its ticket after that COMMIT. Batches are published in ticket order, so the hub
    sees each tenant's events in ``seq`` order even when the call writer's thread and the
    event loop both write (ADR 0021). Every ticket must be finished, failed commits with ``[]``.
    """

    def __init__(self, publish: Callable[[Sequence[StoredEvent]], None]) -> None:
        """*publish* runs on the event loop that finishes tickets (the hub's)."""
        self._publish = publish
        self._lock = threading.Lock()
        self._issued = 0
        self._next = 1
        self._done: dict[int, Sequence[StoredEvent]] = {}

    def ticket(self) -> int:
        """Take the next place in the commit order (any thread)."""
        with self._lock:
            self._issued += 1
            return self._issued

    def finish(self, ticket: int, stored: Sequence[StoredEvent]) -> None:
        """Hand over a ticket's committed events; publish every batch whose turn has come.
        Call it on the hub's event loop."""
        self._done[ticket] = stored
        while self._next in self._done:
            ready = self._done.pop(self._next)
            self._next += 1
            if ready:
                self._publish(ready)

    def finish_from_thread(
        self, loop: asyncio.AbstractEventLoop, ticket: int, stored: Sequence[StoredEvent]
    ) -> None:
        """:meth:`finish` from another thread: scheduled on *loop* (the hub's)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
            loop.call_soon_threadsafe(self.finish, ticket, stored)


class SqlJournal:
    """Append events in a caller's transaction; read them by tenant cursor."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        on_commit: OnCommit | None = None,
        now: Callable[[], datetime] | None = None,
        read_pool: ReadPool | None = None,
    ) -> None:
        """``on_commit`` (the in-process hub) hears every committed batch in commit order;
        ``read_pool`` serves the encoded pages without an ORM session (ADR 0022)."""
        self._sessions = session_factory
        self._read_pool = read_pool
        self._on_commit = on_commit
        self._now = now or (lambda: datetime.now(UTC))
        self._commit_lock = asyncio.Lock()
        self.order = CommitOrder(self._published)
        """Shared with the call writer's thread, so the hub hears every commit in order."""

    @property
    def now(self) -> Callable[[], datetime]:
        """The clock that stamps ``recorded_at`` (the call writer's thread uses it too)."""
        return self._now

    def set_on_commit(self, on_commit: OnCommit) -> None:
        """Attach the hub after construction (the composition root wires both ways)."""
        self._on_commit = on_commit

    def _published(self, stored: Sequence[StoredEvent]) -> None:
        if self._on_commit is not None:
            self._on_commit(stored)

    async def append(self, db: AsyncSession, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Insert *events* in the open transaction of *db*; tenants are locked in name order.

        An event whose id (tenant + key) already exists is skipped; its number is then
        unused (cursors are monotonic, not dense).
        """
        if not events:
            return []
        dialect = db.get_bind().dialect.name
        recorded_at = self._now()
        by_tenant: dict[str, list[NewEvent]] = {}
        for event in events:
            by_tenant.setdefault(event.tenant, []).append(event)
        if dialect == "postgresql":
            return await self._pg_append(db, by_tenant, recorded_at)
        last = await _sqlite_bump(db, {t: len(batch) for t, batch in by_tenant.items()})
        events_in: list[StoredEvent] = []
        for tenant in sorted(by_tenant):
            first = last[tenant] - len(by_tenant[tenant]) + 1
            events_in.extend(
                stored_event(tenant, first + i, e, recorded_at)
                for i, e in enumerate(by_tenant[tenant])
            )
        written = await _sqlite_insert(db, events_in)
        return [e for e in events_in if (e.tenant, e.seq) in written]

    async def _pg_append(
        self, db: AsyncSession, by_tenant: dict[str, list[NewEvent]], recorded_at: datetime
    ) -> list[StoredEvent]:
        """Two statements whatever the batch: bump every tenant's counter (rows locked in
        name order), then insert every event with arrays bound once."""
        tenants = sorted(by_tenant)
        bumped = await db.execute(
            _PG_BUMP, {"tenants": tenants, "counts": [len(by_tenant[t]) for t in tenants]}
        )
        last = {row[0]: int(row[1]) for row in bumped}
        events_in: list[StoredEvent] = []
        for tenant in tenants:
            first = last[tenant] - len(by_tenant[tenant]) + 1
            for i, e in enumerate(by_tenant[tenant]):
                events_in.append(stored_event(tenant, first + i, e, recorded_at))
                if len(events_in) % YIELD_EVERY == 0:
                    # Encoding a large batch takes tens of ms: let polls and streams of this
                    # process run in between (docs/benchmarks.md, Events, "single").
                    await asyncio.sleep(0)
        written = await _pg_insert(db, events_in, recorded_at)
        stored = [e for e in events_in if (e.tenant, e.seq) in written]
        await _pg_notify(db, stored)
        return stored

    async def commit(self, db: AsyncSession, stored: Sequence[StoredEvent]) -> None:
        """Commit *db* and then tell the hub, in commit order across writers."""
        async with self._commit_lock:
            ticket = self.order.ticket()
            committed: Sequence[StoredEvent] = ()
            try:
                await db.commit()
                committed = stored
            finally:
                self.order.finish(ticket, committed)

    async def write(self, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Append events in a transaction of their own (API-originated events)."""
        async with self._sessions() as db:
            stored = await self.append(db, events)
            await self.commit(db, stored)
        return stored

    async def list_after(
        self,
        tenant: str,
        after: int,
        limit: int = 100,
        *,
        types: Sequence[str] | None = None,
        call_id: str | None = None,
    ) -> builtins.list[StoredEvent]:
        """Events of *tenant* with ``seq > after`` in order (keyset; never OFFSET)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        # Core columns, not ORM entities: a page of 100 is read-only and ORM identity-map
        # bookkeeping would cost more than the query itself.
        if not types and call_id is None:
            async with self._sessions() as db:
                if db.get_bind().dialect.name == "postgresql":
                    return await _pg_page(db, tenant, after, limit)
        stmt = select(*_COLUMNS).where(_EVENTS.c.tenant == tenant, _EVENTS.c.seq > after)
        if types:
            stmt = stmt.where(_EVENTS.c.type.in_(list(types)))
        if call_id is not None:
            stmt = stmt.where(_EVENTS.c.call_id == call_id)
        stmt = stmt.order_by(_EVENTS.c.seq).limit(limit)
        async with self._sessions() as db:
            rows = (await db.execute(stmt)).all()
        return [_stored(row) for row in rows]

    async def list_encoded(
        self, tenant: str, after: int, limit: int = 100, *, types: Sequence[str] | None = None
    ) -> builtins.list[EncodedEvent]:
        """Like :meth:`list_after`, as stored envelope bytes (no row decoding, no JSON work)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        pooled: list[Any]
        if isinstance(self._read_pool, SqliteReadPool):
            kinds = list(types or ())
            (row,) = await self._read_pool.fetch(
                journal_page_sql(len(kinds)), tenant, after, *kinds, limit
            )
            page = split_journal_page(row)
            if page is not None:
                return page
        if isinstance(self._read_pool, PgReadPool):
            if types:
                pooled = await self._read_pool.fetch(
                    _PG_ENCODED_TYPES, tenant, after, limit, list(types)
                )
            else:
                pooled = await self._read_pool.fetch(_PG_ENCODED, tenant, after, limit)
            return await self._encoded(pooled, tenant, after, limit, types)
        rows: Sequence[Any]
        async with self._sessions() as db:
            if db.get_bind().dialect.name == "postgresql":
                driver = await _driver(db)
                if types:
                    rows = await driver.fetch(_PG_ENCODED_TYPES, tenant, after, limit, list(types))
                else:
                    rows = await driver.fetch(_PG_ENCODED, tenant, after, limit)
            else:
                stmt = select(
                    _EVENTS.c.seq, _EVENTS.c.type, _EVENTS.c.envelope, _EVENTS.c.has_extras
                ).where(_EVENTS.c.tenant == tenant, _EVENTS.c.seq > after)
                if types:
                    stmt = stmt.where(_EVENTS.c.type.in_(list(types)))
                rows = (await db.execute(stmt.order_by(_EVENTS.c.seq).limit(limit))).all()
        return await self._encoded(rows, tenant, after, limit, types)

    async def _encoded(
        self,
        rows: Sequence[Any],
        tenant: str,
        after: int,
        limit: int,
        types: Sequence[str] | None,
    ) -> builtins.list[EncodedEvent]:
        if any(r[2] is None for r in rows):
            # Written before migration 0011: encode this page the slow way.
            return [
                EncodedEvent(e.seq, e.type, envelope_bytes(e), e.has_extras)
                for e in await self.list_after(tenant, after, limit, types=types)
            ]
        return [EncodedEvent(r[0], r[1], bytes(r[2]), bool(r[3])) for r in rows]

    async def list_encoded_many(
        self, cursors: dict[str, int], limit: int = MAX_PAGE
    ) -> dict[str, builtins.list[EncodedEvent]]:
        """:meth:`list_encoded` for several tenants at once (one statement on PostgreSQL)."""
        if not isinstance(self._read_pool, PgReadPool):
            return {t: await self.list_encoded(t, after, limit) for t, after in cursors.items()}
        tenants = sorted(cursors)
        rows = await self._read_pool.fetch(
            _PG_ENCODED_MANY, tenants, [cursors[t] for t in tenants], limit
        )
        pages: dict[str, builtins.list[EncodedEvent]] = {t: [] for t in tenants}
        stale: set[str] = set()
        for r in rows:
            if r[3] is None:
                stale.add(r[0])
            else:
                pages[r[0]].append(EncodedEvent(r[1], r[2], bytes(r[3]), bool(r[4])))
        for tenant in stale:  # rows from before the stored envelopes
            pages[tenant] = await self.list_encoded(tenant, cursors[tenant], limit)
        return pages

    async def get(self, tenant: str, seq: int) -> StoredEvent | None:
        """One event by cursor, or ``None``."""
        async with self._sessions() as db:
            row = await db.get(EventRow, (tenant, seq))
        return None if row is None else row_to_event(row)

    async def last_seq(self, tenant: str) -> int:
        """The tenant's newest cursor (0 before its first event)."""
        async with self._sessions() as db:
            row = await db.get(EventCounterRow, tenant)
        return 0 if row is None else int(row.last_seq)

    async def delete_before(self, cutoff: datetime, *, batch: int = 5000) -> int:
        """Retention: delete events recorded before *cutoff*, in bounded batches."""
        total = 0
        while True:
            async with self._sessions() as db:
                keys = (
                    await db.execute(
                        select(EventRow.tenant, EventRow.seq)
                        .where(EventRow.recorded_at < cutoff)
                        .limit(batch)
                    )
                ).all()
                if not keys:
                    return total
                for tenant in {k[0] for k in keys}:
                    seqs = [k[1] for k in keys if k[0] == tenant]
                    await db.execute(
                        delete(EventRow).where(EventRow.tenant == tenant, EventRow.seq.in_(seqs))
                    )
                await db.commit()
            total += len(keys)


class SqlEventSettings:
    """Per-tenant event switches (implements ``services.event_ports.EventSettingsStore``)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory."""
        self._sessions = session_factory

    async def get(self, tenant: str) -> tuple[list[str], bool, list[str]] | None:
        """Return ``(extras, sandbox, allow_private)`` or ``None`` when never set."""
        async with self._sessions() as db:
            row = await db.get(EventSettingsRow, tenant)
        if row is None:
            return None
        return list(row.extras), bool(row.sandbox), list(row.allow_private)

    async def allow_list(self, tenant: str) -> list[str]:
        """The tenant's egress allow-list (``services.egress.AllowListSource``)."""
        stored = await self.get(tenant)
        return [] if stored is None else stored[2]

    async def put(
        self, tenant: str, extras: Sequence[str], sandbox: bool, allow_private: Sequence[str]
    ) -> None:
        """Create or overwrite the tenant's switches."""
        async with self._sessions() as db:
            dialect = db.get_bind().dialect.name
            values = {
                "tenant": tenant,
                "extras": list(extras),
                "sandbox": sandbox,
                "allow_private": list(allow_private),
                "updated_at": datetime.now(UTC),
            }
            ins = _insert(dialect, EventSettingsRow.__table__)  # type: ignore[arg-type]
            stmt = ins.values(**values).on_conflict_do_update(
                index_elements=["tenant"], set_={k: v for k, v in values.items() if k != "tenant"}
            )
            await db.execute(stmt)
            await db.commit()
