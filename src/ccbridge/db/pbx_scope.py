"""The one SQL condition that limits a PBX owner's reads to the tenants placed on its PBX.

Every owner-only read that enumerates tenants' objects (open calls, skill-group queues, open
seats, inbound numbers) goes through :func:`placed_on`, so a second PBX's tenants are never
reconciled, published or routed by this one (ADR 0033). ``None`` means every tenant: the
API's reads and the single-PBX tests.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.access_tables import TenantRow


def placed_on(tenant_column: Any, pbx: str | None) -> ColumnElement[bool]:
    """Rows whose tenant is placed on *pbx* (every row when *pbx* is ``None``)."""
    if pbx is None:
        return true()
    on_pbx: ColumnElement[bool] = tenant_column.in_(
        select(TenantRow.id).where(TenantRow.pbx_id == pbx)
    )
    return on_pbx


def placed_on_or_unknown(tenant_column: Any, pbx: str | None) -> ColumnElement[bool]:
    """As :func:`placed_on`, plus rows with no tenant yet (a call the PBX has not routed)."""
    if pbx is None:
        return true()
    return or_(tenant_column.is_(None), placed_on(tenant_column, pbx))


class PbxTenants:
    """The ids of the tenants placed on one PBX, read when asked (the tenants table is small)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], pbx: str) -> None:
        """Read from *sessions* the tenants placed on *pbx*."""
        self._sessions = sessions
        self.pbx = pbx

    async def ids(self) -> frozenset[str]:
        """The tenants on the PBX now."""
        stmt = select(TenantRow.id).where(TenantRow.pbx_id == self.pbx)
        async with self._sessions() as session:
            return frozenset((await session.execute(stmt)).scalars())


class SqlTenantPlacement:
    """The PBX a tenant is placed on, read at each ask (a move takes effect at once)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Read from *sessions*."""
        self._sessions = sessions

    async def __call__(self, tenant_id: str) -> str | None:
        """The tenant's PBX id, or ``None`` when there is no such tenant."""
        stmt = select(TenantRow.pbx_id).where(TenantRow.id == tenant_id)
        async with self._sessions() as session:
            placed: str | None = (await session.execute(stmt)).scalar_one_or_none()
        return placed
