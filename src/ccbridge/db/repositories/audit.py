"""The audit log in SQL: append and read only (the database refuses UPDATE and DELETE too)."""

from __future__ import annotations

import builtins

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ccbridge.db.access_tables import AuditRow
from ccbridge.domain.access import AuditEntry

MAX_PAGE = 1000


class AuditRepository:
    """Implements ``services.ports.AuditRepo`` on one session; there is no update or delete."""

    def __init__(self, session: AsyncSession) -> None:
        """Work inside *session*; the unit of work commits."""
        self._session = session

    async def append(self, entry: AuditEntry) -> None:
        """Add one entry to the current transaction."""
        await self._session.execute(
            insert(AuditRow).values(
                at=entry.at,
                tenant_id=entry.tenant_id,
                actor=entry.actor,
                action=entry.action,
                object_type=entry.object_type,
                object_id=entry.object_id,
                detail=entry.detail,
            )
        )

    async def list(
        self, *, tenant_id: str | None, before_id: int | None = None, limit: int = 100
    ) -> builtins.list[AuditEntry]:
        """Entries newest first; ``tenant_id=None`` lists every tenant's (platform view)."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        stmt = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if tenant_id is not None:
            stmt = stmt.where(AuditRow.tenant_id == tenant_id)
        if before_id is not None:
            stmt = stmt.where(AuditRow.id < before_id)
        rows = (await self._session.execute(stmt)).scalars().all()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                tenant_id=r.tenant_id,
                actor=r.actor,
                action=r.action,
                object_type=r.object_type,
                object_id=r.object_id,
                detail=dict(r.detail or {}),
            )
            for r in rows
        ]
