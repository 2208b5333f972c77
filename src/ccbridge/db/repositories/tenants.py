"""Tenants in SQL (session-bound: used inside ``SqlAccessUnitOfWork``)."""

from __future__ import annotations

import builtins

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ccbridge.db.access_tables import TenantRow
from ccbridge.db.ha_tables import PbxOwnerRow
from ccbridge.db.seat_tables import SeatSessionRow
from ccbridge.db.tables import CallRow
from ccbridge.domain.access import Contact, Tenant, TenantStatus
from ccbridge.domain.calls.model import CallState
from ccbridge.domain.ha.placement import TenantActivity, pbx_leases
from ccbridge.errors import ConflictError

MAX_PAGE = 1000


def _to_tenant(row: TenantRow) -> Tenant:
    return Tenant(
        id=row.id,
        name=row.name,
        business_contact=Contact.from_dict(row.business_contact),
        technical_contact=Contact.from_dict(row.technical_contact),
        status=TenantStatus(row.status),
        timezone=row.timezone,
        created_at=row.created_at,
        pbx_id=row.pbx_id,
    )


def _contact(contact: Contact | None) -> dict[str, str | None] | None:
    return None if contact is None else contact.as_dict()


class TenantRepository:
    """Implements ``services.ports.TenantRepo`` on one session."""

    def __init__(self, session: AsyncSession) -> None:
        """Work inside *session*; the unit of work commits."""
        self._session = session

    async def add(self, tenant: Tenant) -> None:
        """Insert; ``ConflictError`` when the id is taken."""
        if await self._session.get(TenantRow, tenant.id) is not None:
            raise ConflictError(f"tenant {tenant.id} already exists", field="body.id")
        self._session.add(
            TenantRow(
                id=tenant.id,
                name=tenant.name,
                business_contact=_contact(tenant.business_contact),
                technical_contact=_contact(tenant.technical_contact),
                status=tenant.status.value,
                timezone=tenant.timezone,
                created_at=tenant.created_at,
                pbx_id=tenant.pbx_id,
            )
        )
        try:
            await self._session.flush()
        except IntegrityError:
            raise ConflictError(f"tenant {tenant.id} already exists", field="body.id") from None

    async def get(self, tenant_id: str) -> Tenant | None:
        """Return one tenant or ``None``."""
        row = await self._session.get(TenantRow, tenant_id)
        return None if row is None else _to_tenant(row)

    async def list(
        self, *, only: str | None = None, after: str | None = None, limit: int = 100
    ) -> builtins.list[Tenant]:
        """Tenants ordered by id, after the keyset cursor *after*."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        stmt = select(TenantRow).order_by(TenantRow.id).limit(limit)
        if only is not None:
            stmt = stmt.where(TenantRow.id == only)
        if after is not None:
            stmt = stmt.where(TenantRow.id > after)
        rows = (await self._session.execute(stmt)).scalars().all()
        return [_to_tenant(r) for r in rows]

    async def update(self, tenant: Tenant) -> None:
        """Overwrite the mutable fields."""
        row = await self._session.get(TenantRow, tenant.id)
        if row is None:
            raise LookupError(tenant.id)
        row.name = tenant.name
        row.business_contact = _contact(tenant.business_contact)
        row.technical_contact = _contact(tenant.technical_contact)
        row.status = tenant.status.value
        row.timezone = tenant.timezone
        row.pbx_id = tenant.pbx_id
        await self._session.flush()

    async def known_pbxs(self) -> frozenset[str]:
        """The PBXs a node has served from this database (their lease rows)."""
        return pbx_leases((await self._session.execute(select(PbxOwnerRow.pbx))).scalars())

    async def placements(self) -> frozenset[str]:
        """The PBX ids tenants are placed on."""
        stmt = select(TenantRow.pbx_id).distinct()
        return frozenset((await self._session.execute(stmt)).scalars())

    async def activity(self, tenant_id: str) -> TenantActivity:
        """The tenant's open seat sessions and calls not in a final state."""
        final = [s.value for s in CallState if s.is_final]
        seats = select(func.count()).where(
            SeatSessionRow.tenant_id == tenant_id, SeatSessionRow.signed_out_at.is_(None)
        )
        calls = select(func.count()).where(CallRow.tenant == tenant_id, CallRow.state.not_in(final))
        return TenantActivity(
            seats_signed_in=int(await self._session.scalar(seats) or 0),
            open_calls=int(await self._session.scalar(calls) or 0),
        )

    async def place_all(self, from_pbxs: frozenset[str], pbx_id: str) -> int:
        """Move every tenant placed on one of *from_pbxs* to *pbx_id*; how many moved."""
        stmt = (
            update(TenantRow)
            .where(TenantRow.pbx_id.in_(sorted(from_pbxs)))
            .values(pbx_id=pbx_id)
            .execution_options(synchronize_session=False)
        )
        result = await self._session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)
