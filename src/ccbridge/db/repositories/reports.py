"""Report reads: calls with their detail and state intervals of a window, report settings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Text, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.event_tables import CallParamsRow
from ccbridge.db.report_tables import ReportSettingsRow
from ccbridge.db.repositories.call_params import with_detail
from ccbridge.db.seat_tables import StateIntervalRow
from ccbridge.db.tables import CallRow
from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.reports.model import StateSpan
from ccbridge.services.report_ports import StoredReportSettings

LONG_SPAN = timedelta(days=1)
"""State intervals started this long before a window are looked up by their end instead."""

_CALL_COLUMNS = (
    CallRow.call_id,
    CallRow.state,
    CallRow.caller,
    CallRow.callee,
    CallRow.skill_group,
    CallRow.agent_no,
    CallRow.started_at,
    CallRow.queued_at,
    CallRow.answered_at,
    CallRow.ended_at,
    CallRow.end_reason,
    # SQLite hands back the JSON text, parsed with orjson below (a month's details decode
    # several times faster than through the JSON type).
    type_coerce(CallParamsRow.detail, Text).label("detail"),
)


class SqlReportSource:
    """``services.report_ports.ReportSource`` over the calls and state-interval tables."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; each read is one short transaction."""
        self._sessions = session_factory

    async def calls(self, tenant_id: str, start: datetime, end: datetime) -> list[CallRecord]:
        """Calls started in ``[start, end)`` (index ``ix_calls_tenant_started_at``)."""
        stmt = (
            select(*_CALL_COLUMNS)
            .outerjoin(CallParamsRow, CallParamsRow.call_id == CallRow.call_id)
            .where(
                CallRow.tenant == tenant_id,
                CallRow.started_at >= start,
                CallRow.started_at < end,
            )
            .order_by(CallRow.started_at, CallRow.call_id)
        )
        async with self._sessions() as db:
            # Core on the session's connection: the ORM result layer costs ~40 % more here.
            conn = await db.connection()
            rows = (await conn.execute(stmt)).all()
        out: list[CallRecord] = []
        for r in rows:
            rec = CallRecord(
                call_id=r.call_id,
                started_at=r.started_at,
                state=CallState(r.state),
                tenant=tenant_id,
                caller=r.caller,
                callee=r.callee,
                skill_group=r.skill_group,
                agent_no=r.agent_no,
                queued_at=r.queued_at,
                answered_at=r.answered_at,
                ended_at=r.ended_at,
                end_reason=r.end_reason,
            )
            detail = r.detail  # text on SQLite; asyncpg's json codec has decoded it already
            if isinstance(detail, str | bytes):
                detail = orjson.loads(detail)
            rec = with_detail(rec, detail)
            if rec.merged_into is None:  # a consultation folded into another call
                out.append(rec)
        return out

    async def spans(self, tenant_id: str, start: datetime, end: datetime) -> list[StateSpan]:
        """State intervals overlapping ``[start, end)`` by start time.

        Three bounded index reads instead of one open-ended one (which scans every interval
        started before *end*): those started in the day before *start* or later
        (``ix_state_intervals_tenant_id_started_at``), older ones still running at *start*
        (``ix_state_intervals_tenant_ended_at``), and older ones still open (the one-open
        index).
        """
        t = StateIntervalRow
        cols = (t.id, t.agent_no, t.state, t.reason, t.started_at, t.ended_at)
        recent = start - LONG_SPAN
        queries = (
            select(*cols).where(
                t.tenant_id == tenant_id,
                t.started_at >= recent,
                t.started_at < end,
                (t.ended_at.is_(None)) | (t.ended_at > start),
            ),
            select(*cols).where(
                t.tenant_id == tenant_id, t.ended_at > start, t.started_at < recent
            ),
            select(*cols).where(
                t.tenant_id == tenant_id, t.ended_at.is_(None), t.started_at < recent
            ),
        )
        rows: list[Any] = []
        async with self._sessions() as db:
            for q in queries:
                rows.extend((await db.execute(q)).all())
        rows.sort(key=lambda r: (r.started_at, r.id))
        return [
            StateSpan(r.agent_no, AgentState(r.state), r.reason, r.started_at, r.ended_at)
            for r in rows
        ]

    async def callers_before(self, tenant_id: str, since: datetime, before: datetime) -> set[str]:
        """Distinct callers of the tenant's calls started in ``[since, before)``."""
        stmt = (
            select(CallRow.caller)
            .where(
                CallRow.tenant == tenant_id,
                CallRow.started_at >= since,
                CallRow.started_at < before,
                CallRow.caller.is_not(None),
            )
            .distinct()
        )
        async with self._sessions() as db:
            return {c for c in (await db.execute(stmt)).scalars().all() if c}


class SqlReportSettingsStore:
    """``services.report_ports.ReportSettingsStore`` over ``report_settings``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory."""
        self._sessions = session_factory

    async def get(self, tenant_id: str) -> StoredReportSettings | None:
        """The tenant's row, or None."""
        async with self._sessions() as db:
            row = await db.get(ReportSettingsRow, tenant_id)
        if row is None:
            return None
        return StoredReportSettings(
            row.tenant_id,
            dict(row.thresholds),
            dict(row.templates),
            row.updated_at,
            row.updated_by,
        )

    async def put(self, settings: StoredReportSettings) -> None:
        """Upsert the tenant's row."""
        values = {
            "tenant_id": settings.tenant_id,
            "thresholds": dict(settings.thresholds),
            "templates": dict(settings.templates),
            "updated_at": settings.updated_at,
            "updated_by": settings.updated_by or "",
        }
        async with self._sessions() as db, db.begin():
            dialect = db.get_bind().dialect.name
            ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
                ReportSettingsRow
            )
            stmt = ins.values(**values).on_conflict_do_update(
                index_elements=[ReportSettingsRow.tenant_id],
                set_={k: v for k, v in values.items() if k != "tenant_id"},
            )
            await db.execute(stmt)
