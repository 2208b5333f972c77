"""坐席服务时段分析表: per agent and interval, time in each state and the work done."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.billing.per_call import is_billable
from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.catalogue import evaluate
from ccbridge.domain.kpis.facts import call_facts
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import SeatTally
from ccbridge.domain.reports.intervals import Granularity, interval_start, next_start, split
from ccbridge.domain.reports.model import (
    INTERVAL_COLUMNS,
    Cell,
    Column,
    ReportKind,
    StateSpan,
    Table,
    kpi_column,
    stamp,
)

SEAT_TIME_KPIS = (
    "signed_in",
    "ready",
    "not_ready",
    "break",
    "talk",
    "wrap",
    "handled",
    "seat_calls_over_15s",
    "seat_outbound",
    "occupancy",
    "work_efficiency",
)

_STATE_FIELD = {
    AgentState.READY: "ready_s",
    AgentState.NOT_READY: "not_ready_s",
    AgentState.BREAK: "break_s",
    AgentState.ON_CALL: "talk_s",
    AgentState.AFTER_CALL_WORK: "wrap_s",
}

SeatKey = tuple[datetime, str]

CALL_REACH = timedelta(hours=12)
"""A leg counts only when it starts within this long of its call's start, so every range
is computed from the calls started in it or this long before (reports read no further back)."""


@dataclass(frozen=True, slots=True)
class SpanPiece:
    """The part of one state span inside one interval (what explain returns)."""

    agent_no: str
    state: AgentState
    reason: str
    started_at: datetime
    ended_at: datetime
    seconds: float


def _clip(span: StateSpan, until: datetime) -> datetime:
    return min(span.ended_at, until) if span.ended_at is not None else until


def tally_seats(
    calls: Sequence[CallRecord],
    spans: Sequence[StateSpan],
    settings: KpiSettings,
    gran: Granularity,
    until: datetime,
    since: datetime | None = None,
) -> dict[SeatKey, SeatTally]:
    """Seat time (split at interval boundaries; open spans end at *until*) and work per agent.

    With *since*, only ``[since, until)`` counts: spans are clipped to it and a leg or an
    outbound call counts when it starts inside it, so adjacent ranges add up exactly.
    """
    zone = tenant_zone(settings.timezone)

    def inside(at: datetime) -> bool:
        return since is None or since <= at < until

    rows: dict[SeatKey, SeatTally] = {}

    def row(start: datetime, agent: str) -> SeatTally:
        key = (start, agent)
        tally = rows.get(key)
        if tally is None:
            tally = rows[key] = SeatTally()
        return tally

    for span in spans:
        if span.state is AgentState.SIGNED_OUT:
            continue
        name = _STATE_FIELD.get(span.state)
        begin = span.started_at if since is None else max(span.started_at, since)
        for start, seconds in split(begin, _clip(span, until), gran, zone):
            t = row(start, span.agent_no)
            t.signed_in_s += seconds
            if name is not None:
                setattr(t, name, getattr(t, name) + seconds)
            if span.state is AgentState.NOT_READY:
                reason = span.reason or "-"
                t.not_ready_by_reason[reason] = t.not_ready_by_reason.get(reason, 0.0) + seconds
    for rec in calls:
        for seg in rec.segments:
            if not inside(seg.started_at) or seg.started_at - rec.started_at > CALL_REACH:
                continue
            t = row(interval_start(seg.started_at, gran, zone), seg.agent_no)
            t.handled += 1
            end = seg.ended_at or rec.ended_at
            if end is not None and is_billable(
                (end - seg.started_at).total_seconds(), settings.billable_seconds
            ):
                t.billable += 1
        f = call_facts(rec, settings)
        if f.outbound and f.agent_no is not None and inside(rec.started_at):
            row(interval_start(rec.started_at, gran, zone), f.agent_no).outbound += 1
    return rows


def span_pieces(
    spans: Sequence[StateSpan],
    settings: KpiSettings,
    gran: Granularity,
    until: datetime,
    key: SeatKey,
) -> list[SpanPiece]:
    """The state spans behind one (interval, agent) row, clipped to the interval."""
    zone = tenant_zone(settings.timezone)
    start, agent = key
    end = next_start(start, gran)
    out: list[SpanPiece] = []
    for span in spans:
        if span.agent_no != agent or span.state is AgentState.SIGNED_OUT:
            continue
        lo, hi = max(span.started_at, start), min(_clip(span, until), end)
        if hi > lo:
            out.append(
                SpanPiece(
                    agent,
                    span.state,
                    span.reason,
                    lo.astimezone(zone),
                    hi.astimezone(zone),
                    (hi - lo).total_seconds(),
                )
            )
    return out


def _quota(settings: KpiSettings, start: datetime, gran: Granularity) -> int | None:
    if settings.outbound_daily_quota is None or gran.minutes is not None:
        return None
    days = (next_start(start, gran).date() - start.date()).days
    return settings.outbound_daily_quota * days


def seat_time_report(
    calls: Sequence[CallRecord],
    spans: Sequence[StateSpan],
    settings: KpiSettings,
    gran: Granularity,
    until: datetime,
) -> Table:
    """Per agent × interval rows, then one headcount row per interval (agent ``*``)."""
    return seat_time_table(tally_seats(calls, spans, settings, gran, until), settings, gran)


def seat_time_table(
    rows: Mapping[SeatKey, SeatTally], settings: KpiSettings, gran: Granularity
) -> Table:
    """Lay out per agent × interval tallies (from raw spans or summed 15-minute tallies)."""
    reasons = sorted({r for t in rows.values() for r in t.not_ready_by_reason})
    columns = [*INTERVAL_COLUMNS, Column("agent_no", "工号", "Agent")]
    columns += [kpi_column(k) for k in SEAT_TIME_KPIS]
    columns += [Column(f"not_ready:{r}", f"示忙({r})(秒)", f"Not ready: {r}") for r in reasons]
    columns += [
        Column("outbound_quota", "日呼出量指标", "Outbound quota"),
        Column("online_actual", "实际在线人数", "Agents on line (average)"),
        Column("online_required", "应在线人数", "Agents required on line"),
    ]
    table = Table(ReportKind.SEAT_TIME, columns)
    signed_in: dict[datetime, float] = {}
    stamps: dict[datetime, tuple[str | None, str | None]] = {}  # per interval, not per agent
    for (start, agent), tally in sorted(rows.items()):
        bounds = stamps.get(start)
        if bounds is None:
            bounds = stamps[start] = (stamp(start), stamp(next_start(start, gran)))
        row: dict[str, Cell] = {
            "interval_start": bounds[0],
            "interval_end": bounds[1],
            "agent_no": agent,
        }
        row.update(evaluate(SEAT_TIME_KPIS, tally.inputs()))
        for r in reasons:
            row[f"not_ready:{r}"] = round(tally.not_ready_by_reason.get(r, 0.0), 4)
        row["outbound_quota"] = _quota(settings, start, gran)
        table.rows.append(row)
        signed_in[start] = signed_in.get(start, 0.0) + tally.signed_in_s
    for start, seconds in sorted(signed_in.items()):
        width = (next_start(start, gran) - start).total_seconds()
        table.rows.append(
            {
                "interval_start": stamp(start),
                "interval_end": stamp(next_start(start, gran)),
                "agent_no": "*",
                "online_actual": round(seconds / width, 4),
                "online_required": settings.required_headcount,
            }
        )
    return table
