"""Seat sessions and agent state history in SQL.

One open session per (tenant, 工号), and per softphone, is enforced by partial unique indexes,
so a racing second sign-in fails in the database and is reported as ``AlreadySignedInError``
or ``DeviceInUseError``. ``AgentStatus`` is
stored as JSON written field by field (enum values, ISO 8601 UTC instants), never pickled.
"""

from __future__ import annotations

import builtins
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.journal import SqlJournal
from ccbridge.db.pbx_scope import placed_on
from ccbridge.db.seat_tables import SeatSessionRow, StateIntervalRow
from ccbridge.db.sqlite_reads import ReadPool, SqliteReadPool
from ccbridge.domain.agents.policy import DailyCounter
from ccbridge.domain.agents.state import AgentState, AgentStatus, DeferredAction
from ccbridge.domain.calendar import require_aware
from ccbridge.domain.journal.derive import agent_state_event
from ccbridge.domain.journal.types import NewEvent
from ccbridge.domain.leases.model import SeatKind
from ccbridge.domain.leases.utilisation import SignInInterval
from ccbridge.services.seat_ports import (
    AlreadySignedInError,
    DeviceInUseError,
    RecordNotFoundError,
    SeatSession,
    StaleWriteError,
    StateInterval,
)

STATUS_FORMAT = 1
"""Version of the status JSON layout; bump it (and read both) when fields change."""


def _instant(value: datetime) -> str:
    require_aware(value)
    return value.astimezone(UTC).isoformat()


def _parse_instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    require_aware(value)
    return value.astimezone(UTC)


def status_to_json(status: AgentStatus) -> dict[str, Any]:
    """Write every field of ``status`` explicitly; datetimes as aware UTC ISO 8601."""
    return {
        "format": STATUS_FORMAT,
        "since": _instant(status.since),
        "state": status.state.value,
        "reason": status.reason,
        "resume": status.resume.value,
        "resume_reason": status.resume_reason,
        "deferred": None if status.deferred is None else status.deferred.value,
        "deferred_reason": status.deferred_reason,
        "alerted": False,  # read by releases before floor rules; alerts are floor_alerts now
        "break_requested": status.break_requested,
        "breaks": {
            "day": None if status.breaks.day is None else status.breaks.day.isoformat(),
            "count": status.breaks.count,
        },
        "paused": status.paused,
        "pause_reason": status.pause_reason,
    }


def status_from_json(data: dict[str, Any]) -> AgentStatus:
    """Read what :func:`status_to_json` wrote; unknown formats are refused, not guessed."""
    if data.get("format") != STATUS_FORMAT:
        raise ValueError(f"unsupported agent status format {data.get('format')!r}")
    breaks = data["breaks"]
    deferred = data["deferred"]
    return AgentStatus(
        since=_parse_instant(data["since"]),
        state=AgentState(data["state"]),
        reason=str(data["reason"]),
        resume=AgentState(data["resume"]),
        resume_reason=str(data["resume_reason"]),
        deferred=None if deferred is None else DeferredAction(deferred),
        deferred_reason=str(data["deferred_reason"]),
        break_requested=bool(data["break_requested"]),
        breaks=DailyCounter(
            day=None if breaks["day"] is None else date.fromisoformat(breaks["day"]),
            count=int(breaks["count"]),
        ),
        paused=bool(data["paused"]),
        pause_reason=str(data["pause_reason"]),
    )


def session_to_row(session: SeatSession, now: datetime) -> dict[str, Any]:
    """Flatten a session into column values."""
    return {
        "id": session.id,
        "tenant_id": session.tenant_id,
        "agent_no": session.agent_no,
        "kind": session.kind.value,
        "interface": session.interface,
        "signed_in_at": session.signed_in_at,
        "signed_out_at": session.signed_out_at,
        "status": status_to_json(session.status),
        "version": session.version,
        "updated_at": now,
    }


def row_to_session(row: SeatSessionRow) -> SeatSession:
    """Rebuild the frozen session from a row."""
    return SeatSession(
        id=row.id,
        tenant_id=row.tenant_id,
        agent_no=row.agent_no,
        kind=SeatKind(row.kind),
        interface=row.interface,
        signed_in_at=row.signed_in_at,
        signed_out_at=row.signed_out_at,
        status=status_from_json(row.status),
        version=row.version,
    )


def _open(tenant_id: str | None = None) -> Any:
    clauses: list[Any] = [SeatSessionRow.signed_out_at.is_(None)]
    if tenant_id is not None:
        clauses.append(SeatSessionRow.tenant_id == tenant_id)
    return clauses


def _state_event(
    session: SeatSession, previous: dict[str, Any] | None, *, signed_out: bool = False
) -> NewEvent | None:
    """``agent.state_changed`` when the state or its reason changed (else ``None``)."""
    state = "signed_out" if signed_out else session.status.state.value
    reason = "" if signed_out else session.status.reason
    before = None if previous is None else str(previous.get("state"))
    if previous is not None and before == state and previous.get("reason") == reason:
        return None
    return agent_state_event(
        tenant=session.tenant_id,
        agent_no=session.agent_no,
        session_id=session.id,
        state=state,
        previous_state=before or "signed_out",
        reason=reason,
        at=session.signed_out_at if signed_out and session.signed_out_at else session.status.since,
        version=session.version + 1,
    )


_OPEN_ON_INTERFACE = (
    "SELECT tenant_id, agent_no FROM seat_sessions WHERE interface = {p} AND signed_out_at IS NULL"
)
"""At most one row: ``uq_seat_sessions_open_interface`` is unique over open sessions."""
_OPEN_ON_INTERFACE_SQLITE = _OPEN_ON_INTERFACE.format(p="?")
_OPEN_ON_INTERFACE_PG = _OPEN_ON_INTERFACE.format(p="$1")


class SeatSessionRepository:
    """Persist seat sessions (implements ``services.seat_ports.SeatSessionRepo``).

    With a journal, every write that changes the agent's state also appends
    ``agent.state_changed`` in the same transaction (outbox).
    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        journal: SqlJournal | None = None,
        *,
        read_pool: ReadPool | None = None,
    ) -> None:
        """Keep the factory; every method uses its own short transaction. *read_pool*
        answers :meth:`open_seat_on_interface` in one thread hop instead of an ORM session."""
        self._sessions = session_factory
        self._journal = journal
        self._read_pool = read_pool

    async def open(self, session: SeatSession) -> None:
        """Insert an open session; ``AlreadySignedInError`` if the 工号 already has one."""
        if session.signed_out_at is not None:
            raise ValueError("a session is opened without a sign-out time")
        try:
            async with self._sessions() as db:
                await db.execute(insert(SeatSessionRow), [session_to_row(session, _now())])
                await self._commit(db, _state_event(replace(session, version=-1), None))
        except IntegrityError as exc:
            if await self.get_open(session.tenant_id, session.agent_no) is not None:
                raise AlreadySignedInError(
                    f"agent {session.agent_no} is already signed in", field="agent_no"
                ) from exc
            if await self.get_open_on_interface(session.interface) is not None:
                raise DeviceInUseError(
                    f"the softphone {session.interface} already carries a signed-in seat",
                    field="interface",
                ) from exc
            raise RecordNotFoundError(
                f"tenant {session.tenant_id} does not exist, or session id {session.id} is taken"
            ) from exc

    async def get(self, tenant_id: str, session_id: str) -> SeatSession | None:
        """Return one session (open or closed), or None."""
        stmt = select(SeatSessionRow).where(
            SeatSessionRow.tenant_id == tenant_id, SeatSessionRow.id == session_id
        )
        return await self._one(stmt)

    async def get_open(self, tenant_id: str, agent_no: str) -> SeatSession | None:
        """Return the agent's open session, or None."""
        stmt = select(SeatSessionRow).where(*_open(tenant_id), SeatSessionRow.agent_no == agent_no)
        return await self._one(stmt)

    async def get_open_on_interface(self, interface: str) -> SeatSession | None:
        """Return the open session on a softphone (any tenant), or None."""
        stmt = select(SeatSessionRow).where(
            SeatSessionRow.signed_out_at.is_(None), SeatSessionRow.interface == interface
        )
        return await self._one(stmt)

    async def open_seat_on_interface(self, interface: str) -> tuple[str, str] | None:
        """``(tenant, 工号)`` of the open session on a softphone, or None: one indexed read.

        The AMI path asks this for every AgentConnect and AgentComplete. An ORM session costs
        the event loop about 1 ms of CPU (six hand-offs to aiosqlite's thread); the read pool
        answers in one hop (about 0.07 ms), which at 10k AMI events/s is a quarter of what
        the ingest costs the loop (docs/benchmarks.md, B6).
        """
        pool = self._read_pool
        if isinstance(pool, SqliteReadPool):
            rows = await pool.fetch(_OPEN_ON_INTERFACE_SQLITE, interface)
        elif pool is not None:
            rows = await pool.fetch(_OPEN_ON_INTERFACE_PG, interface)
        else:
            stmt = select(SeatSessionRow.tenant_id, SeatSessionRow.agent_no).where(
                SeatSessionRow.signed_out_at.is_(None), SeatSessionRow.interface == interface
            )
            async with self._sessions() as db:
                rows = list((await db.execute(stmt)).all())
        return None if not rows else (str(rows[0][0]), str(rows[0][1]))

    async def list_open(
        self, tenant_id: str | None, *, pbx: str | None = None
    ) -> builtins.list[SeatSession]:
        """Return open sessions of a tenant (or of every tenant with None) by sign-in time;
        with *pbx*, only those of its tenants (ADR 0033)."""
        stmt = (
            select(SeatSessionRow)
            .where(*_open(tenant_id), placed_on(SeatSessionRow.tenant_id, pbx))
            .order_by(SeatSessionRow.signed_in_at, SeatSessionRow.id)
        )
        async with self._sessions() as db:
            rows = (await db.execute(stmt)).scalars().all()
        return [row_to_session(r) for r in rows]

    async def count_open_by_kind(self, tenant_id: str) -> dict[SeatKind, int]:
        """Count the tenant's open sessions per seat kind; every kind is present."""
        stmt = (
            select(SeatSessionRow.kind, func.count())
            .where(*_open(tenant_id))
            .group_by(SeatSessionRow.kind)
        )
        counts = dict.fromkeys(SeatKind, 0)
        async with self._sessions() as db:
            for kind, n in (await db.execute(stmt)).all():
                counts[SeatKind(kind)] = int(n)
        return counts

    async def save_status(self, session: SeatSession) -> SeatSession:
        """Store the status if the open session is still at ``session.version``."""
        version = await self._guarded_update(session, status=status_to_json(session.status))
        return replace(session, version=version)

    async def close(self, session: SeatSession, at: datetime) -> SeatSession:
        """Sign out at ``at`` with ``session.status``, under the version check."""
        require_aware(at)
        if at < session.signed_in_at:
            raise ValueError(f"sign-out {at} is before the sign-in {session.signed_in_at}")
        version = await self._guarded_update(
            session, status=status_to_json(session.status), signed_out_at=at
        )
        return replace(session, version=version, signed_out_at=at)

    async def intervals(
        self, tenant_id: str, start: datetime, end: datetime
    ) -> builtins.list[SignInInterval]:
        """Return sign-in intervals overlapping ``[start, end)``, unclipped, by sign-in time."""
        require_aware(start)
        require_aware(end)
        stmt = (
            select(
                SeatSessionRow.kind,
                SeatSessionRow.signed_in_at,
                SeatSessionRow.signed_out_at,
                SeatSessionRow.agent_no,
            )
            .where(
                SeatSessionRow.tenant_id == tenant_id,
                SeatSessionRow.signed_in_at < end,
                or_(SeatSessionRow.signed_out_at.is_(None), SeatSessionRow.signed_out_at > start),
            )
            .order_by(SeatSessionRow.signed_in_at, SeatSessionRow.id)
        )
        async with self._sessions() as db:
            rows = (await db.execute(stmt)).all()
        return [SignInInterval(SeatKind(k), s, e, agent_no=a) for k, s, e, a in rows]

    async def _guarded_update(self, session: SeatSession, **values: Any) -> int:
        stmt = (
            update(SeatSessionRow)
            .where(
                SeatSessionRow.tenant_id == session.tenant_id,
                SeatSessionRow.id == session.id,
                SeatSessionRow.version == session.version,
                SeatSessionRow.signed_out_at.is_(None),
            )
            .values(version=SeatSessionRow.version + 1, updated_at=_now(), **values)
            .returning(SeatSessionRow.version)
        )
        async with self._sessions() as db:
            previous = None
            if self._journal is not None:
                previous = (
                    await db.execute(
                        select(SeatSessionRow.status).where(SeatSessionRow.id == session.id)
                    )
                ).scalar_one_or_none()
            version = (await db.execute(stmt)).scalar_one_or_none()
            if version is not None:
                out_at = values.get("signed_out_at")
                if out_at is not None:
                    session = replace(session, signed_out_at=out_at)
                event = _state_event(session, previous or {}, signed_out=out_at is not None)
                await self._commit(db, event)
        if version is None:
            raise StaleWriteError(
                f"seat session {session.id} of agent {session.agent_no} changed, closed or "
                f"vanished since version {session.version}; re-read it and retry"
            )
        return int(version)

    async def _commit(self, db: AsyncSession, event: NewEvent | None) -> None:
        """Commit, with the state event in the same transaction when journalling."""
        if self._journal is None or event is None:
            await db.commit()
            return
        stored = await self._journal.append(db, [event])
        await self._journal.commit(db, stored)

    async def _one(self, stmt: Any) -> SeatSession | None:
        async with self._sessions() as db:
            row = (await db.execute(stmt)).scalar_one_or_none()
        return None if row is None else row_to_session(row)


def interval_to_row(interval: StateInterval) -> dict[str, Any]:
    """Flatten a state interval into column values."""
    return {
        "tenant_id": interval.tenant_id,
        "agent_no": interval.agent_no,
        "state": interval.state.value,
        "reason": interval.reason,
        "started_at": interval.started_at,
        "ended_at": interval.ended_at,
    }


def row_to_interval(row: StateIntervalRow) -> StateInterval:
    """Rebuild the frozen interval from a row."""
    return StateInterval(
        tenant_id=row.tenant_id,
        agent_no=row.agent_no,
        state=AgentState(row.state),
        reason=row.reason,
        started_at=row.started_at,
        ended_at=row.ended_at,
    )


class StateIntervalRepository:
    """Agent state history (implements ``services.seat_ports.StateIntervalRepo``)."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def append(self, interval: StateInterval) -> None:
        """Close the agent's open interval at ``interval.started_at`` and record ``interval``.

        Both happen in one transaction. A racing append for the same agent hits the
        one-open-interval index and is reported as ``StaleWriteError``.
        """
        close = (
            update(StateIntervalRow)
            .where(
                StateIntervalRow.tenant_id == interval.tenant_id,
                StateIntervalRow.agent_no == interval.agent_no,
                StateIntervalRow.ended_at.is_(None),
                StateIntervalRow.started_at <= interval.started_at,
            )
            .values(ended_at=interval.started_at)
        )
        try:
            async with self._sessions() as db, db.begin():
                await db.execute(close)
                await db.execute(insert(StateIntervalRow), [interval_to_row(interval)])
        except IntegrityError as exc:
            raise StaleWriteError(
                f"agent {interval.agent_no} has a later open state interval, or its tenant "
                "does not exist"
            ) from exc

    async def close(self, tenant_id: str, agent_no: str, at: datetime) -> int:
        """End the agent's open interval at ``at``; return how many were closed (0 or 1)."""
        stmt = (
            update(StateIntervalRow)
            .where(
                StateIntervalRow.tenant_id == tenant_id,
                StateIntervalRow.agent_no == agent_no,
                StateIntervalRow.ended_at.is_(None),
            )
            .values(ended_at=at)
            .returning(StateIntervalRow.id)
        )
        async with self._sessions() as db, db.begin():
            return len((await db.execute(stmt)).all())

    async def list(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        agent_no: str | None = None,
    ) -> builtins.list[StateInterval]:
        """Return intervals overlapping ``[start, end)`` ordered by start time."""
        stmt = select(StateIntervalRow).where(
            StateIntervalRow.tenant_id == tenant_id,
            StateIntervalRow.started_at < end,
            or_(StateIntervalRow.ended_at.is_(None), StateIntervalRow.ended_at > start),
        )
        if agent_no is not None:
            stmt = stmt.where(StateIntervalRow.agent_no == agent_no)
        stmt = stmt.order_by(StateIntervalRow.started_at, StateIntervalRow.id)
        async with self._sessions() as db:
            rows = (await db.execute(stmt)).scalars().all()
        return [row_to_interval(r) for r in rows]


def _now() -> datetime:
    return datetime.now(UTC)
