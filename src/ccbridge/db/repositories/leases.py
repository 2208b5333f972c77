"""Seat leases and lease change requests in SQL; prices are stored as exact NUMERIC."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.seat_tables import (
    PRICE_PRECISION,
    PRICE_SCALE,
    LeaseChangeRow,
    LeaseRow,
    LeaseSeatRow,
)
from ccbridge.domain.calendar import require_aware
from ccbridge.domain.leases.model import ChangeKind, LeaseChange, SeatKind, SeatLease, SeatUsage
from ccbridge.services.seat_ports import LeaseChangeRecord, LeaseRecord, RecordNotFoundError

_QUANTUM = Decimal(1).scaleb(-PRICE_SCALE)
_MAX_PRICE = Decimal(10) ** (PRICE_PRECISION - PRICE_SCALE)


def check_price(kind: SeatKind, price: Decimal) -> Decimal:
    """Refuse a price the column cannot hold exactly (more than 2 decimals, too large)."""
    if not price.is_finite() or price != price.quantize(_QUANTUM) or abs(price) >= _MAX_PRICE:
        raise ValueError(
            f"monthly price of {kind.value} seats must have at most {PRICE_SCALE} decimals "
            f"and stay below {_MAX_PRICE}, got {price}"
        )
    return price


def lease_seat_rows(lease_id: str, lease: SeatLease) -> list[dict[str, Any]]:
    """One row per kind named in the seat counts or the prices; the other column may be NULL."""
    kinds = [k for k in SeatKind if k in lease.seats or k in lease.monthly_price]
    return [
        {
            "lease_id": lease_id,
            "seat_kind": kind.value,
            "seats": lease.seats.get(kind),
            "monthly_price": (
                None
                if kind not in lease.monthly_price
                else check_price(kind, lease.monthly_price[kind])
            ),
        }
        for kind in kinds
    ]


def row_to_lease(row: LeaseRow, seats: Iterable[LeaseSeatRow]) -> SeatLease:
    """Rebuild the lease; a NULL seat count or price means the kind is absent from it."""
    counts: dict[SeatKind, int] = {}
    prices: dict[SeatKind, Decimal] = {}
    for s in seats:
        kind = SeatKind(s.seat_kind)
        if s.seats is not None:
            counts[kind] = s.seats
        if s.monthly_price is not None:
            prices[kind] = Decimal(s.monthly_price)
    return SeatLease(
        tenant=row.tenant_id,
        seats=counts,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        monthly_price=prices,
        timezone=row.timezone,
        seat_usage=SeatUsage(row.seat_usage),
    )


def _seats_json(seats: Mapping[SeatKind, int] | None) -> dict[str, int] | None:
    return None if seats is None else {k.value: int(n) for k, n in seats.items()}


def row_to_change(row: LeaseChangeRow) -> LeaseChangeRecord:
    """Rebuild a change request and its bookkeeping."""
    seats = None if row.seats is None else {SeatKind(k): int(n) for k, n in row.seats.items()}
    change = LeaseChange(
        tenant=row.tenant_id,
        kind=ChangeKind(row.kind),
        requested_at=row.requested_at,
        effective_on=row.effective_on,
        seats=seats,
        override_by=row.override_by,
    )
    return LeaseChangeRecord(id=row.id, change=change, applied_at=row.applied_at)


class LeaseRepository:
    """Persist and query seat leases (implements ``services.seat_ports.LeaseRepo``)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def create(self, lease: SeatLease) -> LeaseRecord:
        """Store the lease and its per-kind seats and prices under a new id."""
        lease_id = str(uuid.uuid4())
        seats = lease_seat_rows(lease_id, lease)
        row = {
            "id": lease_id,
            "tenant_id": lease.tenant,
            "valid_from": lease.valid_from,
            "valid_until": lease.valid_until,
            "timezone": lease.timezone,
            "seat_usage": lease.seat_usage.value,
            "created_at": datetime.now(UTC),
        }
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(insert(LeaseRow), [row])
                if seats:
                    await session.execute(insert(LeaseSeatRow), seats)
        except IntegrityError as exc:
            raise RecordNotFoundError(f"tenant {lease.tenant} does not exist") from exc
        return LeaseRecord(lease_id, lease)

    async def get(self, tenant_id: str, lease_id: str) -> SeatLease | None:
        """Return the lease, or None (also when it belongs to another tenant)."""
        stmt = select(LeaseRow).where(LeaseRow.tenant_id == tenant_id, LeaseRow.id == lease_id)
        async with self._sessions() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            if row is None:
                return None
            seats = await self._seats(session, [row.id])
        return row_to_lease(row, seats.get(row.id, ()))

    async def list(self, tenant_id: str) -> builtins.list[LeaseRecord]:
        """Return the tenant's leases ordered by ``valid_from``."""
        stmt = (
            select(LeaseRow)
            .where(LeaseRow.tenant_id == tenant_id)
            .order_by(LeaseRow.valid_from, LeaseRow.id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
            seats = await self._seats(session, [r.id for r in rows])
        return [LeaseRecord(r.id, row_to_lease(r, seats.get(r.id, ()))) for r in rows]

    async def active_lease(self, tenant_id: str, at: datetime) -> SeatLease | None:
        """Return the lease whose tenant-local window contains ``at``; the latest-starting wins.

        SQL narrows by the UTC date (a day either side covers every time zone); the exact
        check uses each lease's own time zone.
        """
        require_aware(at)
        day = at.astimezone(UTC).date()
        lo, hi = day - timedelta(days=1), day + timedelta(days=1)
        stmt = (
            select(LeaseRow)
            .where(
                LeaseRow.tenant_id == tenant_id,
                LeaseRow.valid_from <= hi,
                or_(LeaseRow.valid_until.is_(None), LeaseRow.valid_until >= lo),
            )
            .order_by(LeaseRow.valid_from.desc(), LeaseRow.created_at.desc(), LeaseRow.id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
            for row in rows:
                candidate = row_to_lease(row, ())
                if candidate.is_active_at(at):
                    seats = await self._seats(session, [row.id])
                    return row_to_lease(row, seats.get(row.id, ()))
        return None

    async def add_change(self, change: LeaseChange) -> LeaseChangeRecord:
        """Store a change request for ``change.tenant`` under a new id."""
        change_id = str(uuid.uuid4())
        row = {
            "id": change_id,
            "tenant_id": change.tenant,
            "kind": change.kind.value,
            "requested_at": change.requested_at,
            "effective_on": change.effective_on,
            "seats": _seats_json(change.seats),
            "override_by": change.override_by,
            "applied_at": None,
        }
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(insert(LeaseChangeRow), [row])
        except IntegrityError as exc:
            raise RecordNotFoundError(f"tenant {change.tenant} does not exist") from exc
        return LeaseChangeRecord(change_id, change)

    async def pending_changes(self, tenant_id: str) -> builtins.list[LeaseChangeRecord]:
        """Return changes not yet applied, by ``(effective_on, requested_at)``."""
        stmt = (
            select(LeaseChangeRow)
            .where(LeaseChangeRow.tenant_id == tenant_id, LeaseChangeRow.applied_at.is_(None))
            .order_by(LeaseChangeRow.effective_on, LeaseChangeRow.requested_at, LeaseChangeRow.id)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [row_to_change(r) for r in rows]

    async def mark_applied(self, tenant_id: str, change_id: str, at: datetime) -> bool:
        """Mark a pending change as carried out; say whether one was pending."""
        stmt = (
            update(LeaseChangeRow)
            .where(
                LeaseChangeRow.tenant_id == tenant_id,
                LeaseChangeRow.id == change_id,
                LeaseChangeRow.applied_at.is_(None),
            )
            .values(applied_at=at)
            .returning(LeaseChangeRow.id)
        )
        async with self._sessions() as session, session.begin():
            return (await session.execute(stmt)).first() is not None

    @staticmethod
    async def _seats(
        session: AsyncSession, lease_ids: builtins.list[str]
    ) -> dict[str, builtins.list[LeaseSeatRow]]:
        if not lease_ids:
            return {}
        stmt = select(LeaseSeatRow).where(LeaseSeatRow.lease_id.in_(lease_ids))
        out: dict[str, builtins.list[LeaseSeatRow]] = {}
        for row in (await session.execute(stmt)).scalars():
            out.setdefault(row.lease_id, []).append(row)
        return out
