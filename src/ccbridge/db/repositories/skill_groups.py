"""Skill groups in SQL: tenant-scoped, keyset listing by name."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.access_tables import TenantRow
from ccbridge.db.pbx_scope import placed_on
from ccbridge.db.repositories.agents import check_limit
from ccbridge.db.seat_tables import AgentSkillRow, SkillGroupRow
from ccbridge.domain.access import TenantStatus
from ccbridge.services.seat_ports import AlreadyExistsError, RecordNotFoundError, SkillGroupRecord


def row_to_record(row: SkillGroupRow) -> SkillGroupRecord:
    """Rebuild the frozen record from a row."""
    return SkillGroupRecord(
        tenant_id=row.tenant_id,
        name=row.name,
        queue=row.queue,
        strategy=row.strategy,
        description=row.description,
    )


class SkillGroupRepository:
    """Persist and query skill groups (implements ``services.seat_ports.SkillGroupRepo``)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def create(self, record: SkillGroupRecord) -> SkillGroupRecord:
        """Insert the group; ``AlreadyExistsError`` for a taken name or Asterisk queue."""
        row = {
            "tenant_id": record.tenant_id,
            "name": record.name,
            "queue": record.queue,
            "strategy": record.strategy,
            "description": record.description,
            "created_at": datetime.now(UTC),
        }
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(insert(SkillGroupRow), [row])
        except IntegrityError as exc:
            if await self.get(record.tenant_id, record.name) is not None:
                raise AlreadyExistsError(
                    f"skill group {record.name} already exists", field="name"
                ) from exc
            if await self._queue_taken(record.queue):
                raise AlreadyExistsError(
                    f"Asterisk queue {record.queue} is already in use", field="queue"
                ) from exc
            raise RecordNotFoundError(f"tenant {record.tenant_id} does not exist") from exc
        return record

    async def get(self, tenant_id: str, name: str) -> SkillGroupRecord | None:
        """Return the group, or None (also when it belongs to another tenant)."""
        async with self._sessions() as session:
            row = await session.get(SkillGroupRow, (tenant_id, name))
        return None if row is None else row_to_record(row)

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> builtins.list[SkillGroupRecord]:
        """Return the tenant's groups ordered by name, strictly after the cursor ``after``."""
        check_limit(limit)
        stmt = select(SkillGroupRow).where(SkillGroupRow.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(SkillGroupRow.name > after)
        stmt = stmt.order_by(SkillGroupRow.name).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [row_to_record(r) for r in rows]

    async def all_groups(self) -> builtins.list[SkillGroupRecord]:
        """Every tenant's groups: the queues ccbridge owns on the PBX (reconciler, config)."""
        stmt = select(SkillGroupRow).order_by(SkillGroupRow.queue)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [row_to_record(r) for r in rows]

    async def live_groups(self, pbx: str | None = None) -> builtins.list[SkillGroupRecord]:
        """The groups of every tenant not terminated: the queues the PBX keeps (a terminated
        tenant's queues leave queues.conf; a suspended one's stay for its reinstatement);
        with *pbx*, only its tenants' (ADR 0033)."""
        stmt = (
            select(SkillGroupRow)
            .join(TenantRow, TenantRow.id == SkillGroupRow.tenant_id)
            .where(TenantRow.status != TenantStatus.TERMINATED.value)
            .where(placed_on(SkillGroupRow.tenant_id, pbx))
            .order_by(SkillGroupRow.queue)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [row_to_record(r) for r in rows]

    async def delete(self, tenant_id: str, name: str) -> bool:
        """Delete the group and the agents' memberships of it; say whether it existed."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                delete(AgentSkillRow).where(
                    AgentSkillRow.tenant_id == tenant_id, AgentSkillRow.skill_group == name
                )
            )
            gone = await session.execute(
                delete(SkillGroupRow)
                .where(SkillGroupRow.tenant_id == tenant_id, SkillGroupRow.name == name)
                .returning(SkillGroupRow.name)
            )
            return gone.first() is not None

    async def _queue_taken(self, queue: str) -> bool:
        async with self._sessions() as session:
            stmt = select(SkillGroupRow.name).where(SkillGroupRow.queue == queue).limit(1)
            return (await session.execute(stmt)).first() is not None
