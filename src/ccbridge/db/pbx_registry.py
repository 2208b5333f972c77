"""The PBXs a database knows (their lease rows), for operators: list them, forget a retired one.

A PBX is known once a node serving it has started: its row in ``pbx_owners`` holds who serves
it, until when, and the Asterisk system name it had. A retired PBX's row keeps its id known
and its system name taken (ADR 0033) until an operator forgets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.access_tables import TenantRow
from ccbridge.db.ha_tables import PbxOwnerRow
from ccbridge.db.tables import PbxRecordCursorRow
from ccbridge.domain.ha.placement import CLUSTER_LEASE, forget_refusal


@dataclass(frozen=True, slots=True)
class KnownPbx:
    """One lease row as an operator reads it."""

    pbx: str
    node: str
    epoch: int
    live: bool
    expires_at: datetime
    system_name: str | None
    tenants: int


class PbxForgetRefused(Exception):
    """The PBX is still served or still has tenants; the message says which."""


class SqlPbxRegistry:
    """List and forget known PBXs through the shared pool."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Keep the session factory."""
        self._sessions = sessions

    async def known(self) -> list[KnownPbx]:
        """Every PBX lease row (the cluster lease aside), by id, with its tenants counted."""
        placed = (
            select(TenantRow.pbx_id, func.count().label("n")).group_by(TenantRow.pbx_id).subquery()
        )
        stmt = (
            select(PbxOwnerRow, func.coalesce(placed.c.n, 0))
            .outerjoin(placed, placed.c.pbx_id == PbxOwnerRow.pbx)
            .where(PbxOwnerRow.pbx != CLUSTER_LEASE)
            .order_by(PbxOwnerRow.pbx)
        )
        async with self._sessions() as db:
            now = await _database_now(db)
            rows = (await db.execute(stmt)).all()
        return [
            KnownPbx(
                row.pbx,
                row.node,
                row.epoch,
                row.expires_at > now,
                row.expires_at,
                row.system_name,
                int(tenants),
            )
            for row, tenants in rows
        ]

    async def forget(self, pbx: str, cursor_source: str) -> bool:
        """Delete *pbx*'s lease row and its queue-log cursor (*cursor_source*); ``False`` when
        there was no such row. Raises :class:`PbxForgetRefused` while it is served or placed."""
        async with self._sessions() as db, db.begin():
            row = await db.get(PbxOwnerRow, pbx, with_for_update=True)
            if row is None:
                return False
            now = await _database_now(db)
            tenants = await db.scalar(
                select(func.count()).select_from(TenantRow).where(TenantRow.pbx_id == pbx)
            )
            live_node = row.node if row.expires_at > now else None
            refusal = forget_refusal(pbx, live_node=live_node, tenants=int(tenants or 0))
            if refusal is not None:
                raise PbxForgetRefused(refusal)
            await db.delete(row)
            await db.execute(
                delete(PbxRecordCursorRow).where(PbxRecordCursorRow.source == cursor_source)
            )
        return True


async def _database_now(db: AsyncSession) -> datetime:
    """The database's clock on PostgreSQL (it judges the leases); this host's on SQLite."""
    bind = db.get_bind()
    if bind.dialect.name == "postgresql":
        value = await db.scalar(select(func.clock_timestamp()))
        if isinstance(value, datetime):
            return value.astimezone(UTC)
    return datetime.now(UTC)
