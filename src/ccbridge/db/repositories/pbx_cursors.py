"""Where each PBX record source was read up to, in SQL (the backfill's cursor, ADR 0013)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.tables import PbxRecordCursorRow


class SqlRecordCursors:
    """Load and save the backfill cursor per source (implements ``RecordCursorStore``)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    async def load(self, source: str) -> datetime | None:
        """The saved position, or ``None`` before the first backfill."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(PbxRecordCursorRow.position).where(PbxRecordCursorRow.source == source)
            )
        return row

    async def save(self, source: str, position: datetime) -> None:
        """Upsert the position (only ever forward)."""
        async with self._sessions() as session, session.begin():
            row = await session.get(PbxRecordCursorRow, source)
            now = datetime.now(UTC)
            if row is None:
                session.add(PbxRecordCursorRow(source=source, position=position, updated_at=now))
            elif position > row.position:
                row.position, row.updated_at = position, now
