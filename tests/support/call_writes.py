"""Calls read through the repository and written through the production write path."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_session_factory
from ccbridge.db.journal import SqlJournal
from ccbridge.db.repositories import CallRepository
from ccbridge.db.writer_thread import ThreadedCallWrites
from ccbridge.domain.calls.model import CallRecord


class JournalledCalls(CallRepository):
    """A :class:`CallRepository` whose ``upsert_many`` is the service's write path (events
    derived against what it last wrote, on the writer thread), as bootstrap wires it; the
    thread closes with the engine."""

    def __init__(self, engine: AsyncEngine, journal: SqlJournal) -> None:
        super().__init__(create_session_factory(engine))
        self.writes = ThreadedCallWrites.for_engine(engine, journal)

    async def upsert_many(self, records: Sequence[CallRecord]) -> int:
        """Write calls, call parameters and journal events in one transaction."""
        return await self.writes.upsert_many(records)
