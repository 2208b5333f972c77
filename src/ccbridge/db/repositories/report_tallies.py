"""The 15-minute report tallies, their maintenance state and the change feed (ADR 0019)."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import DateTime, String, Text, cast, delete, func, insert, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.access_tables import TenantRow
from ccbridge.db.report_tables import (
    ReportCallBucketRow,
    ReportCallLineRow,
    ReportSeatBucketRow,
    ReportTallyDirtyRow,
    ReportTallyStateRow,
)
from ccbridge.db.seat_tables import StateIntervalRow
from ccbridge.db.tables import CallRow
from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.kpis.tally import CALL_COUNTERS, SEAT_COUNTERS, CallTally, SeatTally
from ccbridge.domain.reports.buckets import ANY_AGENT, CallBucketKey, SeatBucketKey
from ccbridge.domain.reports.call_lines import CallLine
from ccbridge.domain.reports.model import StateSpan
from ccbridge.domain.reports.seat_time import CALL_REACH
from ccbridge.domain.reports.service_level import WRAP_TOLERANCE
from ccbridge.services.report_ports import TallyChanges, TallyState

_INTS = {f.name for f in fields(CallTally) if f.type in ("int", int)} | {
    f.name for f in fields(SeatTally) if f.type in ("int", int)
}
_CHUNK = 2000
_LINE_FIELDS = CallLine._fields
"""The line columns, in ``CallLine`` order (a stored row is read straight into a line)."""
_ID_CHUNK = 500
"""Call ids per ``IN (…)`` when clearing lines that moved to another day."""


def _utc(text: str) -> datetime:
    """SQLite's naive UTC text as an aware instant: ``fromisoformat`` with the offset appended
    is a fifth of the cost of parsing and then ``replace(tzinfo=…)`` (a month of lines reads
    half a million of them)."""
    return datetime.fromisoformat(text + "+00:00")


def _num(name: str, value: Any) -> int | float:
    return int(value) if name in _INTS else float(value)


class SqlReportTallies:
    """``services.report_ports.ReportTallyStore`` over the ``report_*`` tally tables."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; each method is one short transaction."""
        self._sessions = session_factory

    async def tenant_ids(self) -> list[str]:
        """Every tenant id."""
        async with self._sessions() as db:
            return list((await db.execute(select(TenantRow.id).order_by(TenantRow.id))).scalars())

    async def state(self, tenant_id: str) -> TallyState | None:
        """The tenant's state row."""
        async with self._sessions() as db:
            row = await db.get(ReportTallyStateRow, tenant_id)
        if row is None:
            return None
        return TallyState(
            row.tenant_id,
            row.fingerprint,
            row.covered_from,
            row.calls_seen_at,
            row.spans_seen_id,
            tuple(int(i) for i in row.open_spans),
        )

    async def changes(
        self, tenant_id: str, calls_since: datetime, spans_after_id: int, open_ids: Sequence[int]
    ) -> TallyChanges:
        """See ``ReportTallyStore.changes``: four small indexed reads."""
        ranges: list[tuple[datetime, datetime]] = []
        acw_starts: list[datetime] = []
        async with self._sessions() as db:
            calls = await db.execute(
                select(CallRow.started_at, CallRow.queued_at, CallRow.ended_at).where(
                    CallRow.tenant == tenant_id, CallRow.updated_at >= calls_since
                )
            )
            for started, queued, ended in calls:
                # Its legs start before it ends, and count only within CALL_REACH of its start.
                last = ended if ended is not None else started + CALL_REACH
                ranges.append((started, max(last, queued or started)))
            span_cols = (
                StateIntervalRow.id,
                StateIntervalRow.agent_no,
                StateIntervalRow.state,
                StateIntervalRow.reason,
                StateIntervalRow.started_at,
                StateIntervalRow.ended_at,
            )
            added = (
                await db.execute(
                    select(*span_cols).where(
                        StateIntervalRow.tenant_id == tenant_id,
                        StateIntervalRow.id > spans_after_id,
                    )
                )
            ).all()
            closed: Sequence[Any] = []
            if open_ids:
                closed = (
                    await db.execute(
                        select(*span_cols).where(
                            StateIntervalRow.tenant_id == tenant_id,
                            StateIntervalRow.id.in_(list(open_ids)),
                            StateIntervalRow.ended_at.is_not(None),
                        )
                    )
                ).all()
            for r in [*added, *closed]:
                ranges.append((r.started_at, r.ended_at or r.started_at))
                if r.state == AgentState.AFTER_CALL_WORK.value and r.ended_at is not None:
                    acw_starts.append(r.started_at)
            now_open = (
                await db.execute(
                    select(*span_cols)
                    .where(
                        StateIntervalRow.tenant_id == tenant_id,
                        StateIntervalRow.ended_at.is_(None),
                    )
                    .order_by(StateIntervalRow.id)
                )
            ).all()
            if acw_starts:
                # A closed after-call work changes the wrap of the call it follows, which counts
                # where that call was queued, possibly another day.
                acw_starts.sort()
                ending = await db.execute(
                    select(CallRow.started_at, CallRow.queued_at, CallRow.ended_at).where(
                        CallRow.tenant == tenant_id,
                        CallRow.started_at >= acw_starts[0] - CALL_REACH,
                        CallRow.started_at <= acw_starts[-1] + WRAP_TOLERANCE,
                        CallRow.ended_at >= acw_starts[0] - WRAP_TOLERANCE,
                    )
                )
                for started, queued, ended in ending:
                    if ended is None:
                        continue
                    i = bisect.bisect_left(acw_starts, ended - WRAP_TOLERANCE)
                    if i < len(acw_starts) and acw_starts[i] <= ended + WRAP_TOLERANCE:
                        at = queued or started
                        ranges.append((at, at))
        return TallyChanges(
            ranges,
            max([spans_after_id, *(int(r.id) for r in added)]),
            [
                StateSpan(r.agent_no, AgentState(r.state), r.reason, r.started_at, None)
                for r in now_open
            ],
            tuple(int(r.id) for r in now_open),
        )

    async def cursor_start(self, tenant_id: str) -> tuple[int, tuple[int, ...]]:
        """The newest state-interval id and the open intervals' ids (a first pass's cursors)."""
        async with self._sessions() as db:
            top = (
                await db.execute(
                    select(func.max(StateIntervalRow.id)).where(
                        StateIntervalRow.tenant_id == tenant_id
                    )
                )
            ).scalar()
            open_ids = (
                await db.execute(
                    select(StateIntervalRow.id).where(
                        StateIntervalRow.tenant_id == tenant_id,
                        StateIntervalRow.ended_at.is_(None),
                    )
                )
            ).scalars()
            return int(top or 0), tuple(sorted(int(i) for i in open_ids))

    async def dirty_days(self, tenant_id: str) -> list[datetime]:
        """The tenant's dirty days, oldest first."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(ReportTallyDirtyRow.day_start)
                .where(ReportTallyDirtyRow.tenant_id == tenant_id)
                .order_by(ReportTallyDirtyRow.day_start)
            )
            return list(rows.scalars())

    async def save_state(self, state: TallyState, dirty: Sequence[datetime]) -> None:
        """Upsert the state and insert the dirty marks (existing marks are kept)."""
        values = {
            "tenant_id": state.tenant_id,
            "fingerprint": state.fingerprint,
            "covered_from": state.covered_from,
            "calls_seen_at": state.calls_seen_at,
            "spans_seen_id": state.spans_seen_id,
            "open_spans": list(state.open_spans),
            "updated_at": state.calls_seen_at,
        }
        async with self._sessions() as db, db.begin():
            dialect = db.get_bind().dialect.name
            ins: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
            await db.execute(
                ins(ReportTallyStateRow)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=[ReportTallyStateRow.tenant_id],
                    set_={k: v for k, v in values.items() if k != "tenant_id"},
                )
            )
            if dirty:
                await db.execute(
                    ins(ReportTallyDirtyRow).on_conflict_do_nothing(),
                    [{"tenant_id": state.tenant_id, "day_start": d} for d in sorted(set(dirty))],
                )

    async def replace_day(
        self,
        tenant_id: str,
        day_start: datetime,
        calls: Mapping[CallBucketKey, CallTally],
        seats: Mapping[SeatBucketKey, SeatTally],
        lines: Sequence[CallLine] = (),
    ) -> None:
        """Delete the day's tallies and lines, insert the new ones, clear the mark: one
        transaction. A line of these calls kept under another day (its queue entry moved) is
        replaced too, so a call has one line."""
        day_end = day_start + timedelta(days=1)
        call_rows = [
            {
                "tenant_id": tenant_id,
                "bucket_start": b,
                "skill_group": g,
                "agent_no": a,
                **{n: getattr(t, n) for n in CALL_COUNTERS},
            }
            for (b, g, a), t in calls.items()
        ]
        seat_rows = [
            {
                "tenant_id": tenant_id,
                "bucket_start": b,
                "agent_no": a,
                **{n: getattr(t, n) for n in SEAT_COUNTERS},
                "not_ready_by_reason": dict(t.not_ready_by_reason),
            }
            for (b, a), t in seats.items()
        ]
        line_rows = [{"tenant_id": tenant_id, **line._asdict()} for line in lines]
        async with self._sessions() as db, db.begin():
            for table in (ReportCallBucketRow, ReportSeatBucketRow):
                await db.execute(
                    delete(table).where(
                        table.tenant_id == tenant_id,
                        table.bucket_start >= day_start,
                        table.bucket_start < day_end,
                    )
                )
            ln = ReportCallLineRow
            await db.execute(
                delete(ln).where(ln.tenant_id == tenant_id, ln.at >= day_start, ln.at < day_end)
            )
            ids = [line.call_id for line in lines]
            for i in range(0, len(ids), _ID_CHUNK):
                chunk = ids[i : i + _ID_CHUNK]
                await db.execute(delete(ln).where(ln.tenant_id == tenant_id, ln.call_id.in_(chunk)))
            inserts: tuple[tuple[Any, list[dict[str, Any]]], ...] = (
                (ReportCallBucketRow, call_rows),
                (ReportSeatBucketRow, seat_rows),
                (ln, line_rows),
            )
            for table, rows in inserts:
                for i in range(0, len(rows), _CHUNK):
                    await db.execute(insert(table), rows[i : i + _CHUNK])
            await db.execute(
                delete(ReportTallyDirtyRow).where(
                    ReportTallyDirtyRow.tenant_id == tenant_id,
                    ReportTallyDirtyRow.day_start == day_start,
                )
            )

    async def read(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        by_agent: bool = False,
        *,
        calls: bool = True,
        seats: bool = True,
    ) -> tuple[dict[CallBucketKey, CallTally], dict[SeatBucketKey, SeatTally]]:
        """Stored tallies with bucket start in ``[start, end)`` (primary-key range reads):
        call tallies per agent with *by_agent*, else the group sums; *calls* or *seats* off
        skips that table."""
        c = ReportCallBucketRow
        s = ReportSeatBucketRow
        call_cols = [getattr(c, n) for n in CALL_COUNTERS]
        seat_cols = [getattr(s, n) for n in SEAT_COUNTERS]
        call_rows: Sequence[Any] = []
        seat_rows: Sequence[Any] = []
        async with self._sessions() as db:
            text_times = db.get_bind().dialect.name == "sqlite"
            # The reasons as JSON text for orjson (the JSON type decodes with the stdlib's
            # json, per row); SQLite's naive UTC text is parsed below, faster than the type,
            # and asyncpg's aware UTC datetimes need no processing.
            reasons_text = cast(s.not_ready_by_reason, Text)
            seat_head: tuple[Any, ...] = (
                type_coerce(s.bucket_start, String() if text_times else DateTime(timezone=True)),
                s.agent_no,
                reasons_text,
            )
            if calls:
                call_rows = (
                    await db.execute(
                        select(c.bucket_start, c.skill_group, c.agent_no, *call_cols).where(
                            c.tenant_id == tenant_id,
                            c.bucket_start >= start,
                            c.bucket_start < end,
                            (c.agent_no != ANY_AGENT) if by_agent else (c.agent_no == ANY_AGENT),
                        )
                    )
                ).all()
            if seats:
                seat_rows = (
                    await db.execute(
                        select(*seat_head, *seat_cols).where(
                            s.tenant_id == tenant_id, s.bucket_start >= start, s.bucket_start < end
                        )
                    )
                ).all()
        by_call: dict[CallBucketKey, CallTally] = {}
        for r in call_rows:
            call = CallTally()
            for n, v in zip(CALL_COUNTERS, r[3:], strict=True):
                setattr(call, n, _num(n, v))
            by_call[(r[0], r[1], r[2])] = call
        by_seat: dict[SeatBucketKey, SeatTally] = {}
        for r in seat_rows:
            reasons = orjson.loads(r[2]) if r[2] else None
            # The columns come back as the counters' types (REAL as float, INTEGER as int).
            seat = SeatTally(
                **dict(zip(SEAT_COUNTERS, r[3:], strict=True)),
                not_ready_by_reason={k: float(v) for k, v in reasons.items()} if reasons else {},
            )
            by_seat[(_utc(r[0]) if text_times else r[0], r[1])] = seat
        return by_call, by_seat

    async def read_lines(
        self, tenant_id: str, ranges: Sequence[tuple[datetime, datetime]]
    ) -> list[CallLine]:
        """Stored lines of calls counting in any of the ``[start, end)`` ranges (index
        ``ix_report_call_lines_tenant_id_at``), in no particular order."""
        ln = ReportCallLineRow
        out: list[CallLine] = []
        async with self._sessions() as db:
            conn = await db.connection()
            text_times = conn.dialect.name == "sqlite"
            cols: list[Any] = [getattr(ln, n) for n in _LINE_FIELDS]
            # Instants without UTCDateTime's per-value processor: SQLite's naive UTC text is
            # parsed below; asyncpg already hands back aware UTC datetimes.
            as_read: Any = String() if text_times else DateTime(timezone=True)
            cols[1] = type_coerce(ln.started_at, as_read)
            cols[2] = type_coerce(ln.at, as_read)
            for start, end in ranges:
                rows = await conn.execute(
                    select(*cols).where(ln.tenant_id == tenant_id, ln.at >= start, ln.at < end)
                )
                if text_times:
                    out.extend(CallLine(r[0], _utc(r[1]), _utc(r[2]), *r[3:]) for r in rows)
                else:
                    out.extend(CallLine(*r) for r in rows)
        return out
