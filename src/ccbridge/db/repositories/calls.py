"""Call records in SQL: version-guarded bulk upsert and keyset listing."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.event_tables import CallParamsRow
from ccbridge.db.ha_tables import PbxOwnerRow
from ccbridge.db.pbx_scope import placed_on_or_unknown
from ccbridge.db.repositories.call_params import detail_to_json, with_detail
from ccbridge.db.tables import CallRow
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.ha.system_names import made_by
from ccbridge.services.call_persistence import newest_per_call

_TABLE: Table = CallRow.__table__  # type: ignore[assignment]  # declarative maps a Table
_PARAMS: Table = CallParamsRow.__table__  # type: ignore[assignment]
_UPDATABLE = tuple(c.name for c in _TABLE.columns if c.name != "call_id")
MAX_PAGE = 1000
_LIMITS = {
    c.name: length
    for c in _TABLE.columns
    if (length := getattr(c.type, "length", None)) is not None and c.name != "call_id"
}
"""Column widths: PBX-supplied text (a 4 KB hostile caller name) is clamped, never rejected,
so one bad record can never wedge the batch writer's retry loop."""


def _clamp(row: dict[str, Any]) -> dict[str, Any]:
    for name, length in _LIMITS.items():
        value = row.get(name)
        if isinstance(value, str) and len(value) > length:
            row[name] = value[:length]
    return row


def record_to_row(record: CallRecord, updated_at: datetime) -> dict[str, Any]:
    """Flatten a record into column values (enum to text, legs tuple to JSON list)."""
    return _clamp(
        {
            "call_id": record.call_id,
            "tenant": record.tenant,
            "state": record.state.value,
            "caller": record.caller,
            "caller_name": record.caller_name,
            "callee": record.callee,
            "skill_group": record.skill_group,
            "agent_no": record.agent_no,
            "agent_interface": record.agent_interface,
            "started_at": record.started_at,
            "queued_at": record.queued_at,
            "answered_at": record.answered_at,
            "ended_at": record.ended_at,
            "end_reason": record.end_reason,
            "legs": list(record.legs),
            "version": record.version,
            "updated_at": updated_at,
        }
    )


def row_to_record(row: CallRow) -> CallRecord:
    """Rebuild the frozen domain record from a row (text to enum, JSON list to tuple)."""
    return CallRecord(
        call_id=row.call_id,
        started_at=row.started_at,
        state=CallState(row.state),
        tenant=row.tenant,
        caller=row.caller,
        caller_name=row.caller_name,
        callee=row.callee,
        skill_group=row.skill_group,
        agent_no=row.agent_no,
        agent_interface=row.agent_interface,
        queued_at=row.queued_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        end_reason=row.end_reason,
        legs=tuple(row.legs or ()),
        version=row.version,
    )


def _upsert(dialect: str, table: Table, key: str) -> Any:
    """Version-guarded ``INSERT … ON CONFLICT DO UPDATE`` for *table* keyed by *key*."""
    if dialect == "postgresql":
        ins: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        ins = sqlite.insert(table)
    else:
        raise NotImplementedError(f"upsert not implemented for dialect {dialect!r}")
    return ins.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={c.name: ins.excluded[c.name] for c in table.columns if c.name != key},
        where=table.c.version <= ins.excluded.version,
    )


class CallRepository:
    """Persist and query :class:`CallRecord` (implements ``services.ports.CallStore``)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory."""
        self._sessions = session_factory

    async def upsert_many(self, records: Sequence[CallRecord]) -> int:
        """Write a batch in one transaction, without journal events (tools, tests, imports);
        return rows inserted or updated.

        A row is only overwritten by a snapshot whose version is not lower. The service's
        write path (``services.call_persistence`` over ``db.call_batches``) is the one that
        also journals; this one is the plain SQLAlchemy upsert.
        """
        if not records:
            return 0
        now = datetime.now(UTC)
        newest = newest_per_call(records)
        rows = [record_to_row(r, now) for r in newest]
        params = [
            {
                "call_id": r.call_id,
                "tenant": r.tenant,
                "detail": detail_to_json(r),
                "version": r.version,
                "updated_at": now,
            }
            for r in newest
        ]
        async with self._sessions() as session:
            dialect = session.get_bind().dialect.name
            # RETURNING yields only rows that were actually written (skipped stale ones are
            # absent), and lets SQLAlchemy send the batch as multi-row VALUES pages.
            result = await session.execute(
                _upsert(dialect, _TABLE, "call_id").returning(_TABLE.c.call_id), rows
            )
            written = len(result.all())
            await session.execute(_upsert(dialect, _PARAMS, "call_id"), params)
            await session.commit()
        return written

    async def _stored(
        self, session: AsyncSession, call_ids: builtins.list[str]
    ) -> dict[str, CallRecord]:
        """The persisted versions of *call_ids* (the journal derives events against them)."""
        stmt = (
            select(CallRow, CallParamsRow.detail)
            .outerjoin(CallParamsRow, CallParamsRow.call_id == CallRow.call_id)
            .where(CallRow.call_id.in_(call_ids))
        )
        rows = (await session.execute(stmt)).all()
        return {row.call_id: with_detail(row_to_record(row), detail) for row, detail in rows}

    async def stored(self, call_ids: Sequence[str]) -> dict[str, CallRecord]:
        """The stored records of *call_ids* with their detail (the backfill compares to them)."""
        found: dict[str, CallRecord] = {}
        async with self._sessions() as session:
            for start in range(0, len(call_ids), 500):
                found.update(
                    await self._stored(session, builtins.list(call_ids[start : start + 500]))
                )
        return found

    async def get_with_params(self, call_id: str, tenant: str | None = None) -> CallRecord | None:
        """Return one call with its legs, offers, transfers and extras."""
        stmt = (
            select(CallRow, CallParamsRow.detail)
            .outerjoin(CallParamsRow, CallParamsRow.call_id == CallRow.call_id)
            .where(CallRow.call_id == call_id)
        )
        if tenant is not None:
            stmt = stmt.where(CallRow.tenant == tenant)
        async with self._sessions() as session:
            found = (await session.execute(stmt)).first()
        return None if found is None else with_detail(row_to_record(found[0]), found[1])

    async def list_with_params(
        self,
        *,
        tenant: str,
        start: datetime,
        end: datetime,
        after: tuple[datetime, str] | None = None,
        limit: int = 500,
    ) -> builtins.list[CallRecord]:
        """Calls of *tenant* started in ``[start, end)``, oldest first, keyset after *after*."""
        stmt = (
            select(CallRow, CallParamsRow.detail)
            .outerjoin(CallParamsRow, CallParamsRow.call_id == CallRow.call_id)
            .where(CallRow.tenant == tenant, CallRow.started_at >= start, CallRow.started_at < end)
        )
        if after is not None:
            at, cid = after
            stmt = stmt.where(
                or_(CallRow.started_at > at, and_(CallRow.started_at == at, CallRow.call_id > cid))
            )
        stmt = stmt.order_by(CallRow.started_at, CallRow.call_id).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [with_detail(row_to_record(r), d) for r, d in rows]

    async def get(self, call_id: str, tenant: str | None = None) -> CallRecord | None:
        """Return one call; with *tenant*, another tenant's call is reported as missing."""
        stmt = select(CallRow).where(CallRow.call_id == call_id)
        if tenant is not None:
            stmt = stmt.where(CallRow.tenant == tenant)
        async with self._sessions() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
        return None if row is None else row_to_record(row)

    async def list(
        self,
        *,
        tenant: str | None = None,
        state: CallState | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> builtins.list[CallRecord]:
        """Return calls newest first, strictly after the keyset cursor *before*.

        Pass the last item's ``(started_at, call_id)`` as *before* to get the next page;
        rows inserted meanwhile never shift pages (no OFFSET).
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        stmt = select(CallRow)
        if tenant is not None:
            stmt = stmt.where(CallRow.tenant == tenant)
        if state is not None:
            stmt = stmt.where(CallRow.state == state.value)
        if before is not None:
            started_at, call_id = before
            # Written as a range on started_at plus a tie-break so the index bounds the scan.
            stmt = stmt.where(
                CallRow.started_at <= started_at,
                or_(
                    CallRow.started_at < started_at,
                    and_(CallRow.started_at == started_at, CallRow.call_id < call_id),
                ),
            )
        stmt = stmt.order_by(CallRow.started_at.desc(), CallRow.call_id.desc()).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [row_to_record(row) for row in rows]

    async def open_calls(
        self, *, pbx: str | None = None, limit: int = 100_000
    ) -> builtins.list[CallRecord]:
        """Return calls not yet ended or abandoned, so a restarted process can reconcile them;
        with *pbx*, only those of its tenants and those with no tenant yet that this PBX's
        system name could have made (all of them while it is not known; ADR 0033)."""
        final = [s.value for s in CallState if s.is_final]
        stmt = (
            select(CallRow)
            .where(CallRow.state.not_in(final), placed_on_or_unknown(CallRow.tenant, pbx))
            .order_by(CallRow.started_at, CallRow.call_id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
            system_name = None if pbx is None else await _system_name(session, pbx)
        return [
            row_to_record(row)
            for row in rows
            if row.tenant is not None or system_name is None or made_by(system_name, row.call_id)
        ]

    async def count(self, *, tenant: str | None = None) -> int:
        """Count stored calls, optionally for one tenant."""
        stmt = select(func.count()).select_from(CallRow)
        if tenant is not None:
            stmt = stmt.where(CallRow.tenant == tenant)
        async with self._sessions() as session:
            return int((await session.execute(stmt)).scalar_one())


async def _system_name(session: AsyncSession, pbx: str) -> str | None:
    """The Asterisk system name *pbx*'s owner last read (``None``: never read, or no lease)."""
    stmt = select(PbxOwnerRow.system_name).where(PbxOwnerRow.pbx == pbx)
    name: str | None = (await session.execute(stmt)).scalar_one_or_none()
    return name
