"""The tenant-status read behind every credential check and inbound call (one indexed row).

The status cache re-reads each busy tenant every few seconds, and the requests arriving
meanwhile wait for that read. An ORM session costs the event loop about 1 ms of CPU in
hand-offs to aiosqlite's thread, each waiting behind a busy loop; the read pool answers on
the loop's own connection (SQLite) or from its asyncpg pool (ADR 0034).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.sqlite_reads import ReadPool, SqliteReadPool
from ccbridge.domain.access import TenantStatus
from ccbridge.services.tenant_status import StatusRead

_STATUS = "SELECT status FROM tenants WHERE id = {p}"
_STATUS_SQLITE = _STATUS.format(p="?")
_STATUS_PG = _STATUS.format(p="$1")


def tenant_status_read(
    sessions: async_sessionmaker[AsyncSession], read_pool: ReadPool | None = None
) -> StatusRead:
    """Read one tenant's status (``None``: no such tenant), through *read_pool* when given."""

    async def through_session(tenant_id: str) -> TenantStatus | None:
        async with SqlAccessUnitOfWork(sessions) as uow:
            tenant = await uow.tenants.get(tenant_id)
        return tenant.status if tenant is not None else None

    if read_pool is None:
        return through_session
    pool = read_pool
    sql = _STATUS_SQLITE if isinstance(pool, SqliteReadPool) else _STATUS_PG

    async def through_pool(tenant_id: str) -> TenantStatus | None:
        rows = await pool.fetch(sql, tenant_id)
        return TenantStatus(rows[0][0]) if rows else None

    return through_pool
