"""Hot journal reads on SQLite: one thread hop per page instead of one per driver call.

Through an ORM session on aiosqlite a poll page costs about six hand-offs between the event
loop and the connection's thread (check-out, cursor, execute, fetch, close, rollback), each a
queue put, a wake-up of the loop and a fight for the GIL; that was most of a poll's server
time (docs/benchmarks.md, B6). Here a page is one function call on a small thread pool, each
thread with its own read-only connection, in autocommit: every statement sees the newest
commit, as a fresh session would, and no read transaction stays open between pages to hold
back the WAL checkpoint (ADR 0022).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import PgReadPool
from ccbridge.domain.journal.types import EncodedEvent

READ_THREADS = 2
"""Enough for a 2-core host: a page is ~0.1 ms of SQLite work; more threads only add GIL
contention with the event loop."""
BUSY_TIMEOUT_MS = 30_000
"""As the writer's connections: wait for a checkpoint instead of failing (then 503)."""
INLINE_BUSY_TIMEOUT_MS = 20
"""On the loop's own connection a read that meets a lock gives up this soon and is retried on
a read thread (with :data:`BUSY_TIMEOUT_MS`): a WAL reader almost never waits, and the loop
must never wait long."""


class SqliteReadPool:
    """Read-only SQLite connections for the journal's keyset pages and AMI-path lookups.

    ``inline`` (the default) runs a read on the calling thread, the event loop: a page is one
    statement step (:func:`journal_page_sql`), about 0.2 ms of SQLite, and a hop to a thread
    cost three GIL hand-offs, each waiting up to the 5 ms switch interval behind the busy
    loop (docs/benchmarks.md, B6). A read that meets a lock goes to a read thread instead.
    """

    def __init__(self, path: str, *, threads: int = READ_THREADS, inline: bool = True) -> None:
        """Keep the file path; connections open on first use, one per thread."""
        self._path = path
        self.inline = inline
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.handed_off = 0
        """Inline reads that met a lock and ran on a read thread (diagnostics, tests)."""

    @classmethod
    def for_engine(cls, engine: AsyncEngine) -> SqliteReadPool | None:
        """A pool on *engine*'s database file when that is SQLite (not in memory)."""
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        if url.query.get("mode") == "memory":
            return None
        return cls(url.database)

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        """Run one read statement and return its rows (tuples)."""
        if self.inline:
            try:
                return self._run(query, args, INLINE_BUSY_TIMEOUT_MS)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                self.handed_off += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, query, args, BUSY_TIMEOUT_MS)

    def _run(self, query: str, args: tuple[Any, ...], busy_ms: int = BUSY_TIMEOUT_MS) -> list[Any]:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            self._local.busy_ms = None
            with self._lock:
                self._connections.append(conn)
        if self._local.busy_ms != busy_ms:
            conn.execute(f"PRAGMA busy_timeout={busy_ms}")
            self._local.busy_ms = busy_ms
        return conn.execute(query, args).fetchall()

    async def close(self) -> None:
        """Close the connections (shutdown), after the reads in flight (each a page, so
        the wait is short; not through the loop's default executor, which the runner
        shuts down after this)."""
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


def journal_page_sql(types: int) -> str:
    """A keyset page of one tenant's journal as ONE result row, with *types* type filters.

    ``sqlite3`` releases and retakes the GIL around every ``sqlite3_step``, i.e. once per
    row. While the event loop is busy (AMI ingest) each retake waits up to the switch
    interval, so a page of 100 rows took 88 ms instead of 0.07 ms (a convoy; docs/
    benchmarks.md, B6). Aggregated, the page is one step: the envelopes joined into one
    blob, and per row ``seq type has_extras length`` to cut it apart. The subquery runs as
    a co-routine in ``ORDER BY`` order; :func:`split_journal_page` checks the order anyway.
    """
    only = f" AND type IN ({', '.join('?' * types)})" if types else ""
    select = (
        "SELECT count(*), count(envelope), "
        "group_concat(seq || ' ' || type || ' ' || has_extras || ' ' || length(envelope), ','), "
        "CAST(group_concat(envelope, '') AS BLOB) FROM (SELECT seq, type, envelope, has_extras "
    )
    return select + f"FROM events WHERE tenant = ? AND seq > ?{only} ORDER BY seq LIMIT ?)"


def split_journal_page(row: tuple[Any, ...]) -> list[EncodedEvent] | None:
    """The events of a :func:`journal_page_sql` row; ``None`` when the page must be read row
    by row (an event stored before envelopes existed, or rows not in cursor order)."""
    rows, with_envelope, meta, blob = row
    if not rows:
        return []
    if rows != with_envelope:
        return None
    page: list[EncodedEvent] = []
    at = 0
    last = -1
    for item in meta.split(","):
        seq_text, kind, extras, size_text = item.split(" ")
        seq, size = int(seq_text), int(size_text)
        if seq <= last:
            return None
        page.append(EncodedEvent(seq, kind, blob[at : at + size], extras == "1"))
        at += size
        last = seq
    return page if at == len(blob) else None


ReadPool = PgReadPool | SqliteReadPool
"""The journal's pool for hot pages, by backend."""


def read_pool_for(engine: AsyncEngine) -> ReadPool | None:
    """The hot-read pool for *engine*'s backend (``None``: read through sessions)."""
    return PgReadPool.for_engine(engine) or SqliteReadPool.for_engine(engine)
