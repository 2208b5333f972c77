"""Idempotency-Key answers in SQL (implements ``services.call_control_ports.IdempotencyStore``).

The primary key ``(tenant_id, key)`` makes the claim atomic: of two concurrent requests with
one key, exactly one inserts; the other reads the row and never reaches the PBX.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.idempotency_tables import IdempotencyKeyRow
from ccbridge.services.call_control_ports import StoredAnswer


class IdempotencyRepository:
    """One row per (tenant, key)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def claim(
        self, tenant_id: str, key: str, actor: str, fingerprint: str, at: datetime
    ) -> StoredAnswer | None:
        """Insert the key (``None``: claimed), or return the row already there."""
        row = IdempotencyKeyRow(
            tenant_id=tenant_id, key=key, actor=actor, fingerprint=fingerprint, created_at=at
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
            return None
        except IntegrityError:
            pass
        async with self._sessions() as session:
            found = await session.get(IdempotencyKeyRow, (tenant_id, key))
        if found is None:  # released between the two statements: the caller retries
            return StoredAnswer(fingerprint, None, None)
        return StoredAnswer(found.fingerprint, found.status, found.body)

    async def finish(self, tenant_id: str, key: str, status: int, body: dict[str, Any]) -> None:
        """Store the answer."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(IdempotencyKeyRow)
                .where(IdempotencyKeyRow.tenant_id == tenant_id, IdempotencyKeyRow.key == key)
                .values(status=status, body=body)
            )

    async def release(self, tenant_id: str, key: str) -> None:
        """Delete an unfinished claim."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.tenant_id == tenant_id,
                    IdempotencyKeyRow.key == key,
                    IdempotencyKeyRow.status.is_(None),
                )
            )

    async def purge(self, before: datetime) -> int:
        """Delete keys created before *before*."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(IdempotencyKeyRow).where(IdempotencyKeyRow.created_at < before)
            )
        return int(getattr(result, "rowcount", 0) or 0)
