"""Call batches at driver speed: calls, call parameters and journal events in one transaction.

Each record is serialised once to a tuple; the SQL is fixed text prepared once per connection.
SQLite runs ``executemany`` on a plain ``sqlite3`` connection; PostgreSQL binds each column as
one array and inserts through ``unnest`` on a plain asyncpg connection. No SQLAlchemy
parameter or type processing runs per row (it was two thirds of a batch; ADR 0021). The
connection is the store's own: it lives on the database writer thread (``writer_thread``).

The columns and their encoding match what the SQLAlchemy tables read back: UTC datetimes
(SQLite: naive ISO text with microseconds, as ``UTCDateTime`` stores them), JSON as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
from sqlalchemy import Table, make_url

from ccbridge.db.engine import SQLITE_PRAGMAS
from ccbridge.db.event_tables import CallParamsRow
from ccbridge.db.journal import (
    EVENT_COLUMNS,
    NOTIFY_CHANNEL,
    PG_EVENTS_INSERT,
    PG_NOTIFY,
    CommitOrder,
    envelope_time,
    notify_payloads,
    sqlite_event_row,
    stored_event,
)
from ccbridge.db.repositories.call_params import detail_to_json, with_detail
from ccbridge.db.sqlite_rows import sqlite_time
from ccbridge.db.tables import CallRow
from ccbridge.db.wal_checkpoints import FALLBACK_PRAGMA, WalCheckpointer
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.journal.types import NewEvent, StoredEvent
from ccbridge.services.ports import CallWrite, WrittenCalls

_CALLS: Table = CallRow.__table__  # type: ignore[assignment]
_PARAMS: Table = CallParamsRow.__table__  # type: ignore[assignment]

CALL_COLUMNS = (
    "call_id",
    "tenant",
    "state",
    "caller",
    "caller_name",
    "callee",
    "skill_group",
    "agent_no",
    "agent_interface",
    "started_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "end_reason",
    "legs",
    "version",
    "updated_at",
)
"""In :func:`call_row` order."""
PARAM_COLUMNS = ("call_id", "tenant", "detail", "version", "updated_at")
_WIDTHS = tuple(
    (i, length)
    for i, name in enumerate(CALL_COLUMNS)
    if name != "call_id" and (length := getattr(_CALLS.c[name].type, "length", None)) is not None
)
"""Column widths: PBX-supplied text (a 4 KB hostile caller name) is clamped, never rejected,
so one bad record can never wedge the batch writer's retry loop."""

Stamp = Callable[[datetime | None], Any]
"""How a backend binds a datetime (SQLite: text; PostgreSQL: the aware value)."""


def pg_time(value: datetime | None) -> datetime | None:
    """A datetime for PostgreSQL ``timestamptz``: aware, never naive."""
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"naive datetime {value!r} cannot be stored; pass an aware UTC time")
    return value


def call_row(rec: CallRecord, updated_at: Any, stamp: Stamp) -> tuple[Any, ...]:
    """The ``calls`` row of *rec* in :data:`CALL_COLUMNS` order, long text clamped."""
    row = [
        rec.call_id,
        rec.tenant,
        rec.state.value,
        rec.caller,
        rec.caller_name,
        rec.callee,
        rec.skill_group,
        rec.agent_no,
        rec.agent_interface,
        stamp(rec.started_at),
        stamp(rec.queued_at),
        stamp(rec.answered_at),
        stamp(rec.ended_at),
        rec.end_reason,
        orjson.dumps(rec.legs).decode(),
        rec.version,
        updated_at,
    ]
    for i, width in _WIDTHS:
        value = row[i]
        if value is not None and len(value) > width:
            row[i] = value[:width]
    return tuple(row)


def params_row(rec: CallRecord, updated_at: Any) -> tuple[Any, ...]:
    """The ``call_params`` row of *rec* in :data:`PARAM_COLUMNS` order."""
    return (
        rec.call_id,
        rec.tenant,
        orjson.dumps(detail_to_json(rec)).decode(),
        rec.version,
        updated_at,
    )


def _record(row: Sequence[Any], parse: Callable[[Any], datetime | None]) -> CallRecord:
    """Rebuild a stored record from ``calls`` columns plus ``call_params.detail`` text."""
    started_at = parse(row[9])
    assert started_at is not None
    rec = CallRecord(
        call_id=row[0],
        tenant=row[1],
        state=CallState(row[2]),
        caller=row[3],
        caller_name=row[4],
        callee=row[5],
        skill_group=row[6],
        agent_no=row[7],
        agent_interface=row[8],
        started_at=started_at,
        queued_at=parse(row[10]),
        answered_at=parse(row[11]),
        ended_at=parse(row[12]),
        end_reason=row[13],
        legs=tuple(orjson.loads(row[14]) or ()),
        version=row[15],
    )
    return with_detail(rec, None if row[16] is None else orjson.loads(row[16]))


def _from_sqlite(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _from_pg(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _by_tenant(batch: Sequence[CallWrite], written: frozenset[str]) -> dict[str, list[NewEvent]]:
    """The events of written calls per tenant, in batch order."""
    events: dict[str, list[NewEvent]] = {}
    for item in batch:
        if item.events and item.record.call_id in written:
            for e in item.events:
                events.setdefault(e.tenant, []).append(e)
    return events


_SELECT_STORED = (
    "SELECT c.call_id, c.tenant, c.state, c.caller, c.caller_name, c.callee, c.skill_group, "
    "c.agent_no, c.agent_interface, c.started_at, c.queued_at, c.answered_at, c.ended_at, "
    "c.end_reason, c.legs{cast}, c.version, p.detail{cast} "
    "FROM calls c LEFT JOIN call_params p ON p.call_id = c.call_id "
)


def upsert_set(columns: Sequence[str], table: str, keep: Sequence[str] = ()) -> str:
    """The version-guarded ``ON CONFLICT`` clause; with *keep*, those columns are not set
    and a row whose stored value of one of them differs is not updated (see
    :data:`SQLITE_CALLS_SAME`)."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:] if c not in keep)
    guard = "".join(f" AND {table}.{c} IS excluded.{c}" for c in keep)
    return (
        f"ON CONFLICT (call_id) DO UPDATE SET {updates} "
        f"WHERE {table}.version <= excluded.version{guard}"
    )


def _marks(n: int) -> str:
    """``?, ?, …`` for *n* bound values."""
    return ", ".join("?" * n)


def _sqlite_upsert(table: str, columns: Sequence[str], keep: Sequence[str] = ()) -> str:
    """The version-guarded ``INSERT … ON CONFLICT DO UPDATE`` of one row of *table*."""
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(len(columns))}) "  # noqa: S608  (constant names)
    return insert + upsert_set(columns, table, keep)


CALL_IDENTITY = ("tenant", "caller", "started_at")
"""The ``calls`` columns that the secondary indexes other than ``updated_at``'s are built on
(listing, cross-tenant listing and retention, sticky routing); a call's later snapshots
almost never change them."""
_IDENTITY_AT = tuple(CALL_COLUMNS.index(c) for c in CALL_IDENTITY)
_VERSION_AT = CALL_COLUMNS.index("version")
SQLITE_CALLS = _sqlite_upsert("calls", CALL_COLUMNS)
SQLITE_CALLS_SAME = _sqlite_upsert("calls", CALL_COLUMNS, CALL_IDENTITY)
"""The upsert for the common case, a later snapshot of a call whose :data:`CALL_IDENTITY`
is unchanged: it does not name those columns in ``SET``, so SQLite leaves the three indexes
on them untouched (it rewrites every index on a column an ``UPDATE`` sets, changed or not;
a third of the calls statement). A row whose identity did change is not updated by it and
is written again with :data:`SQLITE_CALLS` (ADR 0029)."""
SQLITE_PARAMS = _sqlite_upsert("call_params", PARAM_COLUMNS)
SQLITE_BUMP = (
    "INSERT INTO event_counters (tenant, last_seq) VALUES (?, ?) ON CONFLICT (tenant) "
    "DO UPDATE SET last_seq = event_counters.last_seq + excluded.last_seq RETURNING last_seq"
)
SQLITE_EVENTS = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES ({_marks(len(EVENT_COLUMNS))}) "  # noqa: S608
    "ON CONFLICT (id) DO NOTHING"
)
_SQLITE_VERSIONS = (
    "SELECT call_id, version, tenant, caller, started_at FROM calls WHERE call_id IN ({marks})"
)
_SQLITE_EVENT_KEYS = "SELECT tenant, seq FROM events WHERE id IN ({marks})"


class SqliteCallBatches:
    """:class:`~ccbridge.services.ports.CallBatchStore` on a plain ``sqlite3`` connection."""

    def __init__(
        self,
        path: str,
        order: CommitOrder,
        now: Callable[[], datetime],
        *,
        checkpointer: WalCheckpointer | None = None,
    ) -> None:
        """Open *path* on first use; hand committed events to *order* on :attr:`loop`; nudge
        *checkpointer* (the engine's, shared) after each commit, else one of its own."""
        self._path = path
        self._order = order
        self._now = now
        self._conn: sqlite3.Connection | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """The hub's event loop; ``None`` means the caller's own (no thread in between)."""
        self._own_checkpointer = checkpointer is None
        self.checkpointer = checkpointer or WalCheckpointer(path)
        """Checkpoints the WAL on its own thread, so commits do not (ADR 0034)."""

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            for pragma in SQLITE_PRAGMAS:
                conn.execute(pragma)
            conn.execute(FALLBACK_PRAGMA)
            self._conn = conn
        return self._conn

    async def stored(self, call_ids: Sequence[str]) -> dict[str, CallRecord]:
        """The stored records of *call_ids* with their detail."""
        conn = self._connection()
        found: dict[str, CallRecord] = {}
        for start in range(0, len(call_ids), 500):
            ids = call_ids[start : start + 500]
            sql = _SELECT_STORED.format(cast="") + f"WHERE c.call_id IN ({_marks(len(ids))})"
            for row in conn.execute(sql, tuple(ids)):
                found[row[0]] = _record(row, _from_sqlite)
        return found

    async def write(self, batch: Sequence[CallWrite]) -> WrittenCalls:
        """One ``BEGIN IMMEDIATE`` … ``COMMIT``: calls, parameters, then the written calls'
        events; rolled back whole on any error."""
        if not batch:
            return WrittenCalls(frozenset(), ())
        conn = self._connection()
        now = self._now()
        updated_at = sqlite_time(now)
        calls = [call_row(item.record, updated_at, sqlite_time) for item in batch]
        params = [params_row(item.record, updated_at) for item in batch]
        loop = self.loop or asyncio.get_running_loop()
        ticket: int | None = None
        stored: list[StoredEvent] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            written = self._upsert_calls(conn, batch, calls)
            conn.executemany(SQLITE_PARAMS, params)
            stored = self._append(conn, _by_tenant(batch, written), now)
            ticket = self._order.ticket()
            conn.execute("COMMIT")
        except BaseException:
            stored = []
            self._drop(conn)
            raise
        else:
            self.checkpointer.nudge()
        finally:
            if ticket is not None:
                self._finish(loop, ticket, stored)
        return WrittenCalls(written, stored)

    def _finish(
        self, loop: asyncio.AbstractEventLoop, ticket: int, stored: Sequence[StoredEvent]
    ) -> None:
        if self.loop is None:
            self._order.finish(ticket, stored)
        else:
            self._order.finish_from_thread(loop, ticket, stored)

    @staticmethod
    def _upsert_calls(
        conn: sqlite3.Connection, batch: Sequence[CallWrite], rows: list[tuple[Any, ...]]
    ) -> frozenset[str]:
        """Upsert the rows; the ids written (all of them unless a stored version was newer)."""
        ids = [item.record.call_id for item in batch]
        cursor = conn.executemany(SQLITE_CALLS_SAME, rows)
        if cursor.rowcount == len(rows):
            return frozenset(ids)
        # Some were skipped: stored newer (the version guard), or their identity changed
        # (the stored row differs in a CALL_IDENTITY column): those are written in full.
        by_id = dict(zip(ids, rows, strict=True))
        newer: set[str] = set()
        again: list[tuple[Any, ...]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = _SQLITE_VERSIONS.format(marks=_marks(len(chunk)))
            for cid, ver, *identity in conn.execute(sql, chunk):
                row = by_id[cid]
                if ver > row[_VERSION_AT]:
                    newer.add(cid)
                elif tuple(identity) != tuple(row[i] for i in _IDENTITY_AT):
                    again.append(row)
        if again:
            conn.executemany(SQLITE_CALLS, again)
        return frozenset(cid for cid in ids if cid not in newer)

    @staticmethod
    def _append(
        conn: sqlite3.Connection, by_tenant: dict[str, list[NewEvent]], now: datetime
    ) -> list[StoredEvent]:
        """Bump each tenant's counter (name order) and insert its events; the ones written."""
        events: list[StoredEvent] = []
        spelt = envelope_time(now)
        for tenant in sorted(by_tenant):
            batch = by_tenant[tenant]
            (last,) = conn.execute(SQLITE_BUMP, (tenant, len(batch))).fetchone()
            first = last - len(batch) + 1
            events.extend(
                stored_event(tenant, first + i, e, now, spelt) for i, e in enumerate(batch)
            )
        if not events:
            return events
        recorded_at = sqlite_time(now)
        rows = [sqlite_event_row(e, recorded_at, e.encoded) for e in events]
        if conn.executemany(SQLITE_EVENTS, rows).rowcount == len(rows):
            return events
        # Some ids existed (a retried batch): keep the events that took their own number.
        kept: set[tuple[str, int]] = set()
        for start in range(0, len(events), 500):
            chunk = [e.id for e in events[start : start + 500]]
            sql = _SQLITE_EVENT_KEYS.format(marks=_marks(len(chunk)))
            kept.update(conn.execute(sql, chunk))
        return [e for e in events if (e.tenant, e.seq) in kept]

    def _drop(self, conn: sqlite3.Connection) -> None:
        """Roll back and forget a connection an error met (the next batch opens a fresh one:
        a file replaced or a disk error must not wedge the writer)."""
        self._conn = None
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    async def close(self) -> None:
        """Close the connection and stop its own checkpoints (the writer thread's shutdown)."""
        if self._own_checkpointer:
            self.checkpointer.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _pg_unnest(table: str, columns: Sequence[str], types: Sequence[str]) -> str:
    """``INSERT … SELECT FROM unnest(arrays)`` with the version guard; JSON arrives as text."""
    args = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
    pairs = zip(columns, types, strict=True)
    select = ", ".join(f"u.{c}::json" if t == "text" else f"u.{c}" for c, t in pairs)
    insert = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} "
    return insert + f"FROM unnest({args}) AS u({', '.join(columns)}) " + upsert_set(columns, table)


_PG_CALLS = (
    _pg_unnest(
        "calls",
        CALL_COLUMNS,
        ("varchar",) * 9 + ("timestamptz",) * 4 + ("varchar", "text", "int4", "timestamptz"),
    )
    + " RETURNING call_id"
)
_PG_PARAMS = _pg_unnest(
    "call_params", PARAM_COLUMNS, ("varchar", "varchar", "text", "int4", "timestamptz")
)
PG_BUMP = (
    "INSERT INTO event_counters (tenant, last_seq) "
    "SELECT u.tenant, u.n FROM unnest($1::varchar[], $2::bigint[]) AS u(tenant, n) "
    "ORDER BY u.tenant ON CONFLICT (tenant) "
    "DO UPDATE SET last_seq = event_counters.last_seq + EXCLUDED.last_seq "
    "RETURNING tenant, last_seq"
)
"""Every tenant of a batch in one statement, counter rows locked in name order."""


FencingToken = tuple[str, str, int]
"""``(pbx, node, epoch)`` of this node's current term (ADR 0026)."""

PG_FENCE = "SELECT epoch FROM pbx_owners WHERE pbx = $1 AND node = $2 AND epoch = $3 FOR KEY SHARE"
"""A batch's term check. ``KEY SHARE`` blocks the takeover's ``FOR UPDATE`` until the batch
commits, but not the owner's renewal nor a standby's poll, which only ``UPDATE`` non-key
columns: a slow batch must never cost its own node the lease (ADR 0026)."""


class FencedWrite(Exception):
    """A batch of PBX state from a node that does not own the PBX (any more): not written."""


class PgCallBatches:
    """:class:`~ccbridge.services.ports.CallBatchStore` on a plain asyncpg connection."""

    def __init__(self, dsn: str, order: CommitOrder, now: Callable[[], datetime]) -> None:
        """Connect to *dsn* on first use (and again after an error broke the connection)."""
        self._dsn = dsn
        self._order = order
        self._now = now
        self._conn: asyncpg.Connection | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        """The hub's event loop; ``None`` means the caller's own (no thread in between)."""
        self.idle_in_transaction_ms: int | None = None
        """With several nodes: PostgreSQL ends this connection when it sits in a transaction
        this long. A node frozen mid-batch (stopped, swapped out) would otherwise hold the
        lease row and its tenants' counter rows, and block the next owner indefinitely."""
        self.fence: Callable[[], FencingToken | None] | None = None
        """With several nodes: this node's term. Each batch then checks, in its transaction,
        that the lease row still names this term, and holds the row ``FOR KEY SHARE`` until
        commit: a takeover waits for the batch, and a batch after a takeover is refused."""

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            settings = {"application_name": "ccbridge-writer", "timezone": "UTC"}
            if self.idle_in_transaction_ms is not None:
                settings["idle_in_transaction_session_timeout"] = str(self.idle_in_transaction_ms)
            self._conn = await asyncpg.connect(
                self._dsn, timeout=10, command_timeout=60, server_settings=settings
            )
        return self._conn

    async def stored(self, call_ids: Sequence[str]) -> dict[str, CallRecord]:
        """The stored records of *call_ids* with their detail."""
        conn = await self._connection()
        sql = _SELECT_STORED.format(cast="::text") + "WHERE c.call_id = ANY($1::varchar[])"
        try:
            rows = await conn.fetch(sql, list(call_ids))
        except BaseException:
            await self._drop()
            raise
        return {row[0]: _record(row, _from_pg) for row in rows}

    async def write(self, batch: Sequence[CallWrite]) -> WrittenCalls:
        """One transaction: calls (``RETURNING`` the written ids), parameters, counters, events
        and the NOTIFY; on any error rolled back and the connection replaced."""
        if not batch:
            return WrittenCalls(frozenset(), ())
        now = self._now()
        calls = list(zip(*(call_row(item.record, now, pg_time) for item in batch), strict=True))
        params = [params_row(item.record, now) for item in batch]
        param_cols = list(zip(*params, strict=True))
        conn = await self._connection()
        loop = self.loop or asyncio.get_running_loop()
        ticket: int | None = None
        stored: list[StoredEvent] = []
        try:
            tx = conn.transaction()
            await tx.start()
            if self.fence is not None:
                token = self.fence()
                if token is None or await conn.fetchval(PG_FENCE, *token) is None:
                    raise FencedWrite(f"not the PBX's owner ({token}): {len(batch)} calls")
            rows = await conn.fetch(_PG_CALLS, *calls)
            written = frozenset(r[0] for r in rows)
            await conn.execute(_PG_PARAMS, *param_cols)
            stored = await self._append(conn, _by_tenant(batch, written), now)
            for payload in notify_payloads(stored):
                await conn.execute(PG_NOTIFY, NOTIFY_CHANNEL, payload)
            ticket = self._order.ticket()
            await tx.commit()
        except BaseException:
            stored = []
            await self._drop()
            raise
        finally:
            if ticket is not None:
                if self.loop is None:
                    self._order.finish(ticket, stored)
                else:
                    self._order.finish_from_thread(loop, ticket, stored)
        return WrittenCalls(written, stored)

    @staticmethod
    async def _append(
        conn: asyncpg.Connection, by_tenant: dict[str, list[NewEvent]], now: datetime
    ) -> list[StoredEvent]:
        """Bump every tenant's counter in one statement, insert every event in another."""
        if not by_tenant:
            return []
        tenants = sorted(by_tenant)
        bumped = await conn.fetch(PG_BUMP, tenants, [len(by_tenant[t]) for t in tenants])
        last = {r[0]: int(r[1]) for r in bumped}
        events: list[StoredEvent] = []
        spelt = envelope_time(now)
        for tenant in tenants:
            first = last[tenant] - len(by_tenant[tenant]) + 1
            events.extend(
                stored_event(tenant, first + i, e, now, spelt)
                for i, e in enumerate(by_tenant[tenant])
            )
        rows = await conn.fetch(
            PG_EVENTS_INSERT,
            [e.tenant for e in events],
            [e.seq for e in events],
            [e.id for e in events],
            [e.type for e in events],
            [e.call_id for e in events],
            [e.occurred_at for e in events],
            now,
            [e.encoded for e in events],
            [e.has_extras for e in events],
        )
        if len(rows) == len(events):
            return events
        kept = {(r[0], r[1]) for r in rows}
        return [e for e in events if (e.tenant, e.seq) in kept]

    async def _drop(self) -> None:
        """Forget a connection an error may have left mid-transaction or broken."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        """Close the connection (the writer thread's shutdown)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()


CallBatches = SqliteCallBatches | PgCallBatches


def call_batch_store(
    url: str,
    order: CommitOrder,
    now: Callable[[], datetime],
    *,
    checkpointer: WalCheckpointer | None = None,
) -> CallBatches:
    """The batch store for the database at *url* (a SQLAlchemy URL); on SQLite it nudges
    *checkpointer* after its commits."""
    sa_url = make_url(url)
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        if not sa_url.database or sa_url.database == ":memory:":
            raise ValueError("the call writer needs a SQLite file, not an in-memory database")
        return SqliteCallBatches(sa_url.database, order, now, checkpointer=checkpointer)
    if backend == "postgresql":
        dsn = sa_url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PgCallBatches(dsn, order, now)
    raise NotImplementedError(f"call batches not implemented for {backend!r}")
