"""The database writer thread: call batches and their journal events are derived, encoded and
written off the event loop that serves HTTP, on a connection of their own (ADR 0021).

The API's loop only hands a batch over and, once it is committed, gives the already encoded
events to the hub (in commit order, through the journal's :class:`CommitOrder`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.call_batches import (
    CallBatches,
    FencingToken,
    PgCallBatches,
    call_batch_store,
)
from ccbridge.db.engine import wal_checkpointer_for
from ccbridge.db.journal import SqlJournal
from ccbridge.domain.calls.model import CallRecord
from ccbridge.services.call_persistence import DEFAULT_BASELINE, CallPersistence

log = structlog.get_logger(__name__)

T = TypeVar("T")

CLOSE_TIMEOUT_S = 10.0


class WriterThread:
    """One daemon thread running its own event loop; coroutines are run there one at a time."""

    def __init__(self, name: str = "ccbridge-db-writer") -> None:
        """Nothing starts until the first :meth:`run`."""
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._serial: asyncio.Lock | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` on the thread and wait for it without blocking the caller's loop.

        Cancelling the caller does not cancel the work: a batch half-way through its
        transaction finishes (or fails) as a whole; the batch writer retries idempotently.
        """
        loop = self._ensure()
        future = asyncio.run_coroutine_threadsafe(self._serialised(work), loop)
        return await asyncio.shield(asyncio.wrap_future(future))

    async def _serialised(self, work: Callable[[], Awaitable[T]]) -> T:
        if self._serial is None:
            self._serial = asyncio.Lock()
        async with self._serial:
            return await work()

    def close(self, last: Callable[[], Awaitable[object]] | None = None) -> None:
        """Run *last* (closing connections) on the thread, then stop it; safe to call twice."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def finish() -> None:
            if last is not None:
                try:
                    await self._serialised(last)
                except Exception as exc:  # shutting down: log, never raise
                    log.warning("db_writer_close_failed", error=repr(exc))
            loop.stop()

        asyncio.run_coroutine_threadsafe(finish(), loop)
        if threading.current_thread() is not thread:
            thread.join(CLOSE_TIMEOUT_S)
        if not thread.is_alive():
            loop.close()


class ThreadedCallWrites:
    """The production call write path: :class:`CallPersistence` (events derived against what
    it last wrote) over the driver-level batch store, both on the writer thread.

    Implements the batch writer's ``CallUpserter``; the journal's hub hears each commit on the
    loop that called :meth:`upsert_many`.
    """

    def __init__(
        self,
        store: CallBatches,
        *,
        thread: WriterThread | None = None,
        baseline: int | None = None,
    ) -> None:
        """Own *store* and the service over it; both are only touched on the thread."""
        self._store = store
        self._thread = thread or WriterThread()
        self.persistence = CallPersistence(store, baseline=baseline or DEFAULT_BASELINE)

    @classmethod
    def for_engine(cls, engine: AsyncEngine, journal: SqlJournal) -> ThreadedCallWrites:
        """Write to *engine*'s database with *journal*'s clock and commit order; the thread
        and its connection end when the engine is disposed (or at :meth:`close`)."""
        url = engine.url.render_as_string(hide_password=False)
        store = call_batch_store(
            url, journal.order, journal.now, checkpointer=wal_checkpointer_for(engine)
        )
        writes = cls(store)
        event.listen(engine.sync_engine, "engine_disposed", lambda _engine: writes.close())
        return writes

    def use_fence(
        self, fence: Callable[[], FencingToken | None], *, idle_in_transaction: float
    ) -> None:
        """Check every batch against this node's PBX term (PostgreSQL; ADR 0026), and let
        the server end the connection after *idle_in_transaction* seconds inside a batch."""
        if isinstance(self._store, PgCallBatches):
            self._store.fence = fence
            self._store.idle_in_transaction_ms = max(1, int(idle_in_transaction * 1000))

    async def upsert_many(self, records: Sequence[CallRecord]) -> int:
        """Write a batch on the thread; committed events reach the hub on this loop."""
        if not records:
            return 0
        self._store.loop = asyncio.get_running_loop()
        batch = list(records)
        return await self._thread.run(lambda: self.persistence.upsert_many(batch))

    def close(self) -> None:
        """Close the connection and stop the thread (after the batch writer's final flush)."""
        with contextlib.suppress(RuntimeError):
            self._thread.close(self._store.close)
