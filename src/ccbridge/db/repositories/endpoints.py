"""Claimed phones in SQL (implements ``services.endpoint_ports.EndpointRepo``)."""

from __future__ import annotations

import builtins
from collections.abc import Collection

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.repositories.agents import check_limit
from ccbridge.db.seat_tables import AgentRow, EndpointRow, SeatSessionRow
from ccbridge.domain.endpoints import Endpoint, Technology
from ccbridge.services.endpoint_ports import EndpointClaimedError, EndpointInUseError
from ccbridge.services.seat_ports import RecordNotFoundError

OWNER_LOOKUP_CHUNK = 500
"""Interfaces per ``IN (...)`` when the reconciler asks who owns them."""


def _row_to_endpoint(row: EndpointRow) -> Endpoint:
    return Endpoint(
        id=row.id,
        tenant_id=row.tenant_id,
        technology=Technology(row.technology),
        name=row.name,
        interface=row.interface,
        created_at=row.created_at,
        created_by=row.created_by,
        description=row.description,
    )


class EndpointRepository:
    """One row per claimed phone; the UNIQUE constraints make a claim first-come, once."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def create(self, endpoint: Endpoint) -> Endpoint:
        """Claim the phone; ``EndpointClaimedError`` if its name or interface is taken."""
        row = EndpointRow(
            id=endpoint.id,
            tenant_id=endpoint.tenant_id,
            technology=endpoint.technology.value,
            name=endpoint.name,
            interface=endpoint.interface,
            description=endpoint.description,
            created_at=endpoint.created_at,
            created_by=endpoint.created_by,
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            if await self._taken(endpoint):
                raise EndpointClaimedError(
                    f"the phone {endpoint.interface} is already claimed", field="body.name"
                ) from exc
            raise RecordNotFoundError(f"tenant {endpoint.tenant_id} does not exist") from exc
        return endpoint

    async def _taken(self, endpoint: Endpoint) -> bool:
        stmt = select(EndpointRow.id).where(
            or_(EndpointRow.name == endpoint.name, EndpointRow.interface == endpoint.interface)
        )
        async with self._sessions() as session:
            return (await session.execute(stmt.limit(1))).first() is not None

    async def find(self, tenant_id: str, selector: str) -> Endpoint | None:
        """Return the tenant's endpoint with this id, name or interface, or None."""
        stmt = select(EndpointRow).where(
            EndpointRow.tenant_id == tenant_id,
            or_(
                EndpointRow.id == selector,
                EndpointRow.name == selector,
                EndpointRow.interface == selector,
            ),
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        # An id match wins over a name that happens to look like another endpoint's id.
        best = sorted(rows, key=lambda r: (r.id != selector, r.name != selector))
        return _row_to_endpoint(best[0]) if best else None

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> builtins.list[Endpoint]:
        """Return the tenant's endpoints ordered by name, strictly after the cursor ``after``."""
        check_limit(limit)
        stmt = select(EndpointRow).where(EndpointRow.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(EndpointRow.name > after)
        stmt = stmt.order_by(EndpointRow.name).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [_row_to_endpoint(r) for r in rows]

    async def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        """Release the phone; ``EndpointInUseError`` while an agent or open seat uses it."""
        async with self._sessions() as session, session.begin():
            row = await session.get(EndpointRow, endpoint_id)
            if row is None or row.tenant_id != tenant_id:
                return False
            agent = (
                await session.execute(
                    select(AgentRow.agent_no)
                    .where(AgentRow.tenant_id == tenant_id, AgentRow.interface == row.interface)
                    .limit(1)
                )
            ).scalar_one_or_none()
            if agent is not None:
                raise EndpointInUseError(
                    f"{row.interface} is agent {agent}'s phone; give the agent another first"
                )
            seated = (
                await session.execute(
                    select(SeatSessionRow.agent_no)
                    .where(
                        SeatSessionRow.interface == row.interface,
                        SeatSessionRow.signed_out_at.is_(None),
                    )
                    .limit(1)
                )
            ).scalar_one_or_none()
            if seated is not None:
                raise EndpointInUseError(f"{row.interface} carries a signed-in seat")
            await session.execute(delete(EndpointRow).where(EndpointRow.id == endpoint_id))
            return True

    async def owners(self, interfaces: Collection[str]) -> dict[str, str]:
        """Map each claimed interface among *interfaces* to the tenant that owns it."""
        wanted = sorted(set(interfaces))
        out: dict[str, str] = {}
        async with self._sessions() as session:
            for start in range(0, len(wanted), OWNER_LOOKUP_CHUNK):
                chunk = wanted[start : start + OWNER_LOOKUP_CHUNK]
                stmt = select(EndpointRow.interface, EndpointRow.tenant_id).where(
                    EndpointRow.interface.in_(chunk)
                )
                out.update((row[0], row[1]) for row in await session.execute(stmt))
        return out
