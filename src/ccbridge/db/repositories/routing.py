"""Inbound numbers, routing policies, call-back requests and call history in SQL (implements
the ports of ``services.routing_ports``)."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.pbx_scope import placed_on
from ccbridge.db.repositories.agents import check_limit
from ccbridge.db.routing_tables import CallbackRequestRow, InboundNumberRow, RoutingPolicyRow
from ccbridge.db.tables import CallRow
from ccbridge.domain.callbacks import CallbackRequest, CallbackStatus
from ccbridge.domain.inbound_numbers import InboundNumber, NumberKind, NumberTarget, TargetType
from ccbridge.services.routing_ports import NumberTakenError, PolicyRecord
from ccbridge.services.seat_ports import RecordNotFoundError


def _number(row: InboundNumberRow) -> InboundNumber:
    target = None
    if row.target_type is not None and row.target_id is not None:
        target = NumberTarget(TargetType(row.target_type), row.target_id)
    return InboundNumber(
        number=row.number,
        tenant_id=row.tenant_id,
        kind=NumberKind(row.kind),
        target=target,
        description=row.description,
        assigned_at=row.assigned_at,
        assigned_by=row.assigned_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


class InboundNumberRepository:
    """One row per assigned number; the primary key makes an assignment first-come, once."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def add(self, number: InboundNumber) -> None:
        """Store a new assignment; ``NumberTakenError`` if any tenant holds the number."""
        row = InboundNumberRow(
            number=number.number,
            tenant_id=number.tenant_id,
            kind=number.kind.value,
            target_type=number.target.type.value if number.target else None,
            target_id=number.target.id if number.target else None,
            description=number.description,
            assigned_at=number.assigned_at,
            assigned_by=number.assigned_by,
            updated_at=number.updated_at,
            updated_by=number.updated_by,
        )
        try:
            async with self._sessions() as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            if await self.get(number.number) is not None:
                raise NumberTakenError(
                    f"the number {number.number} is assigned already", field="number"
                ) from exc
            raise RecordNotFoundError(f"tenant {number.tenant_id} does not exist") from exc

    async def get(self, number: str) -> InboundNumber | None:
        """The number's assignment, whichever tenant holds it."""
        async with self._sessions() as session:
            row = await session.get(InboundNumberRow, number)
        return _number(row) if row is not None else None

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> builtins.list[InboundNumber]:
        """The tenant's numbers in number order, strictly after the cursor ``after``."""
        check_limit(limit)
        stmt = select(InboundNumberRow).where(InboundNumberRow.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(InboundNumberRow.number > after)
        stmt = stmt.order_by(InboundNumberRow.number).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [_number(r) for r in rows]

    async def set_target(
        self, tenant_id: str, number: str, target: NumberTarget | None, at: datetime, by: str
    ) -> InboundNumber | None:
        """Point the tenant's number at *target*; ``None`` when the tenant has no such number."""
        async with self._sessions() as session, session.begin():
            done = await session.execute(
                update(InboundNumberRow)
                .where(InboundNumberRow.number == number, InboundNumberRow.tenant_id == tenant_id)
                .values(
                    target_type=target.type.value if target else None,
                    target_id=target.id if target else None,
                    updated_at=at,
                    updated_by=by,
                )
            )
            if getattr(done, "rowcount", 0) != 1:
                return None
        return await self.get(number)

    async def remove(self, tenant_id: str, number: str) -> bool:
        """Release the tenant's number; ``False`` when it has none such."""
        async with self._sessions() as session, session.begin():
            done = await session.execute(
                delete(InboundNumberRow).where(
                    InboundNumberRow.number == number, InboundNumberRow.tenant_id == tenant_id
                )
            )
        return bool(getattr(done, "rowcount", 0))

    async def every(self, pbx: str | None = None) -> builtins.list[InboundNumber]:
        """Every assigned number (the FastAGI route table is built from it); with *pbx*,
        only its tenants' numbers: another PBX's DID gets the unrouted treatment (ADR 0033)."""
        stmt = select(InboundNumberRow).where(placed_on(InboundNumberRow.tenant_id, pbx))
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [_number(r) for r in rows]


def _policy(row: RoutingPolicyRow) -> PolicyRecord:
    return PolicyRecord(
        tenant_id=row.tenant_id,
        skill_group=row.skill_group,
        document=dict(row.document),
        version=row.version,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


class RoutingPolicyRepository:
    """One row per (tenant, entry group) holding the API's document."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def put(
        self, tenant_id: str, skill_group: str, document: dict[str, Any], at: datetime, by: str
    ) -> PolicyRecord:
        """Create or replace the policy; the version goes up by one each time."""
        async with self._sessions() as session, session.begin():
            row = await session.get(
                RoutingPolicyRow, (tenant_id, skill_group), with_for_update=True
            )
            if row is None:
                row = RoutingPolicyRow(
                    tenant_id=tenant_id,
                    skill_group=skill_group,
                    document=document,
                    version=1,
                    updated_at=at,
                    updated_by=by,
                )
                session.add(row)
            else:
                row.document, row.version = document, row.version + 1
                row.updated_at, row.updated_by = at, by
            record = _policy(row)
        return record

    async def get(self, tenant_id: str, skill_group: str) -> PolicyRecord | None:
        """The group's policy, if any."""
        async with self._sessions() as session:
            row = await session.get(RoutingPolicyRow, (tenant_id, skill_group))
        return _policy(row) if row is not None else None

    async def list(self, tenant_id: str | None) -> builtins.list[PolicyRecord]:
        """The tenant's policies by group (``None``: every tenant's)."""
        stmt = select(RoutingPolicyRow)
        if tenant_id is not None:
            stmt = stmt.where(RoutingPolicyRow.tenant_id == tenant_id)
        stmt = stmt.order_by(RoutingPolicyRow.tenant_id, RoutingPolicyRow.skill_group)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [_policy(r) for r in rows]

    async def delete(self, tenant_id: str, skill_group: str) -> bool:
        """Remove the policy; ``False`` when there was none."""
        async with self._sessions() as session, session.begin():
            done = await session.execute(
                delete(RoutingPolicyRow).where(
                    RoutingPolicyRow.tenant_id == tenant_id,
                    RoutingPolicyRow.skill_group == skill_group,
                )
            )
        return bool(getattr(done, "rowcount", 0))


def _callback(row: CallbackRequestRow) -> CallbackRequest:
    # Rows written before the lifecycle (migration 0019) said "open": that is "requested".
    status = CallbackStatus.REQUESTED if row.status == "open" else CallbackStatus(row.status)
    return CallbackRequest(
        id=row.id,
        tenant_id=row.tenant_id,
        caller=row.caller,
        did=row.did,
        skill_group=row.skill_group,
        call_id=row.call_id,
        waited_seconds=row.waited_seconds,
        requested_at=row.requested_at,
        status=status,
        attempts=row.attempts or 0,
        agent_no=row.agent_no,
        attempt_call_id=row.attempt_call_id,
        updated_at=row.updated_at,
        reason=row.reason,
    )


def _stored_as(status: CallbackStatus) -> tuple[str, ...]:
    """The column values of *status* (``open`` is how rows before migration 0019 said
    ``requested``)."""
    return ("open", status.value) if status is CallbackStatus.REQUESTED else (status.value,)


def _lifecycle(request: CallbackRequest) -> dict[str, Any]:
    """The columns a status change writes."""
    return {
        "status": request.status.value,
        "attempts": request.attempts,
        "agent_no": request.agent_no,
        "attempt_call_id": request.attempt_call_id,
        "updated_at": request.updated_at,
        "reason": request.reason,
    }


class CallbackRepository:
    """Call-back requests, newest first per tenant, and their status changes."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def add(self, request: CallbackRequest) -> None:
        """Store one request."""
        async with self._sessions() as session, session.begin():
            session.add(
                CallbackRequestRow(
                    id=request.id,
                    tenant_id=request.tenant_id,
                    caller=request.caller,
                    did=request.did,
                    skill_group=request.skill_group,
                    call_id=request.call_id,
                    waited_seconds=request.waited_seconds,
                    requested_at=request.requested_at,
                    **_lifecycle(request),
                )
            )

    async def list(
        self,
        tenant_id: str,
        before: str | None = None,
        limit: int = 100,
        status: CallbackStatus | None = None,
    ) -> builtins.list[CallbackRequest]:
        """The tenant's requests (of *status*), newest first, strictly older than the request
        ``before``."""
        check_limit(limit)
        stmt = select(CallbackRequestRow).where(CallbackRequestRow.tenant_id == tenant_id)
        if status is not None:
            stmt = stmt.where(CallbackRequestRow.status.in_(_stored_as(status)))
        async with self._sessions() as session:
            if before is not None:
                cursor = await session.get(CallbackRequestRow, before)
                if cursor is None or cursor.tenant_id != tenant_id:
                    return []
                stmt = stmt.where(
                    (CallbackRequestRow.requested_at < cursor.requested_at)
                    | (
                        (CallbackRequestRow.requested_at == cursor.requested_at)
                        & (CallbackRequestRow.id < cursor.id)
                    )
                )
            stmt = stmt.order_by(
                CallbackRequestRow.requested_at.desc(), CallbackRequestRow.id.desc()
            ).limit(limit)
            rows = (await session.execute(stmt)).scalars().all()
        return [_callback(r) for r in rows]

    async def get(self, tenant_id: str, request_id: str) -> CallbackRequest | None:
        """One request of the tenant (another tenant's is ``None``)."""
        async with self._sessions() as session:
            row = await session.get(CallbackRequestRow, request_id)
        return None if row is None or row.tenant_id != tenant_id else _callback(row)

    async def dialing(
        self, limit: int = 500, *, pbx: str | None = None
    ) -> builtins.list[CallbackRequest]:
        """Requests of every tenant (with *pbx*, of its tenants) with an attempt under way,
        oldest first."""
        stmt = (
            select(CallbackRequestRow)
            .where(CallbackRequestRow.status == CallbackStatus.DIALING.value)
            .where(placed_on(CallbackRequestRow.tenant_id, pbx))
            .order_by(CallbackRequestRow.updated_at, CallbackRequestRow.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [_callback(r) for r in rows]

    async def transition(self, before: CallbackRequest, after: CallbackRequest) -> bool:
        """Store *after* only if the row is still *before* (compare-and-set on status and
        attempts): of two concurrent steps exactly one wins."""
        stmt = (
            update(CallbackRequestRow)
            .where(
                CallbackRequestRow.id == before.id,
                CallbackRequestRow.tenant_id == before.tenant_id,
                CallbackRequestRow.status.in_(_stored_as(before.status)),
                CallbackRequestRow.attempts == before.attempts,
            )
            .values(**_lifecycle(after))
        )
        async with self._sessions() as session, session.begin():
            done = await session.execute(stmt)
        return bool(getattr(done, "rowcount", 0))


class CallHistoryRepository:
    """Who answered a caller before, from the call records (sticky routing)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory."""
        self._sessions = session_factory

    async def last_agent(self, tenant_id: str, caller: str, since: datetime) -> str | None:
        """The agent (工号) who answered the tenant's caller most recently since *since*."""
        stmt = (
            select(CallRow.agent_no)
            .where(
                CallRow.tenant == tenant_id,
                CallRow.caller == caller,
                CallRow.started_at >= since,
                CallRow.answered_at.is_not(None),
                CallRow.agent_no.is_not(None),
            )
            .order_by(CallRow.started_at.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            return (await session.execute(stmt)).scalar_one_or_none()
