"""话务服务水平统计报表: offered, answered, abandons, service level, ASA, AHT per interval."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.catalogue import evaluate
from ccbridge.domain.kpis.facts import CallFacts, call_facts
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import CallTally
from ccbridge.domain.reports.intervals import Granularity, interval_start, next_start
from ccbridge.domain.reports.model import (
    INTERVAL_COLUMNS,
    Column,
    Dimension,
    ReportKind,
    StateSpan,
    Table,
    kpi_column,
    stamp,
)

WRAP_TOLERANCE = timedelta(seconds=2)
"""After-call work belongs to a call when it starts this close to the call's end."""

SERVICE_LEVEL_KPIS = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "answer_rate",
    "service_level",
    "abandon_rate",
    "asa",
    "average_talk",
    "aht",
    "longest_wait",
    "transfers",
    "calls_over_15s",
)

RowKey = tuple[datetime, str]


def wrap_by_call(calls: Iterable[CallRecord], spans: Iterable[StateSpan]) -> dict[str, float]:
    """The after-call work of each answered call: its last agent's ACW starting at its end."""
    acw: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for s in spans:
        if s.state is AgentState.AFTER_CALL_WORK and s.ended_at is not None:
            acw[s.agent_no].append((s.started_at, (s.ended_at - s.started_at).total_seconds()))
    for pending in acw.values():
        pending.sort()
    out: dict[str, float] = {}
    for rec in calls:
        if not rec.segments or rec.ended_at is None:
            continue
        last = rec.segments[-1]
        end = last.ended_at or rec.ended_at
        starts = acw.get(last.agent_no)
        if not starts:
            continue
        i = bisect.bisect_left(starts, (end - WRAP_TOLERANCE, -1.0))
        if i < len(starts) and starts[i][0] <= end + WRAP_TOLERANCE:
            out[rec.call_id] = starts[i][1]
    return out


def group_of(f: CallFacts, dimension: Dimension) -> str:
    """The row group a call falls in."""
    if dimension is Dimension.SKILL_GROUP:
        return f.skill_group or ""
    if dimension is Dimension.AGENT:
        return f.agent_no or ""
    return ""


def tally_calls(
    calls: Sequence[CallRecord],
    spans: Sequence[StateSpan],
    settings: KpiSettings,
    gran: Granularity,
    dimension: Dimension,
    only: RowKey | None = None,
) -> dict[RowKey, CallTally]:
    """Count calls per (interval start, group); with *only*, one row with its contributors."""
    zone = tenant_zone(settings.timezone)
    wraps = wrap_by_call(calls, spans)
    rows: dict[RowKey, CallTally] = {}
    for rec in calls:
        f = call_facts(rec, settings)
        key = (interval_start(f.at, gran, zone), group_of(f, dimension))
        if only is not None and key != only:
            continue
        tally = rows.get(key)
        if tally is None:
            tally = rows[key] = CallTally.explaining() if only is not None else CallTally()
        tally.add(f, wraps.get(rec.call_id, 0.0))
    return rows


def group_tallies(facts: Iterable[CallFacts]) -> dict[str, CallTally]:
    """One tally per skill group over calls of one interval: the report's skill-group rows of
    that interval, without after-call work (none of the service-level counts need it)."""
    rows: dict[str, CallTally] = {}
    for f in facts:
        key = group_of(f, Dimension.SKILL_GROUP)
        tally = rows.get(key)
        if tally is None:
            tally = rows[key] = CallTally()
        tally.add(f)
    return rows


def service_level_report(
    calls: Sequence[CallRecord],
    spans: Sequence[StateSpan],
    settings: KpiSettings,
    gran: Granularity,
    dimension: Dimension = Dimension.TENANT,
) -> Table:
    """One row per interval (and skill group or agent) with the service-level KPIs."""
    return service_level_table(
        tally_calls(calls, spans, settings, gran, dimension), gran, dimension
    )


def service_level_table(
    rows: Mapping[RowKey, CallTally], gran: Granularity, dimension: Dimension
) -> Table:
    """Lay out per interval × group tallies (from raw calls or summed 15-minute tallies)."""
    columns = [
        *INTERVAL_COLUMNS,
        Column("group", _GROUP_HEADINGS[dimension][0], _GROUP_HEADINGS[dimension][1]),
    ]
    columns += [kpi_column(k) for k in SERVICE_LEVEL_KPIS]
    table = Table(ReportKind.SERVICE_LEVEL, columns)
    for (start, group), tally in sorted(rows.items()):
        row: dict[str, str | int | float | None] = {
            "interval_start": stamp(start),
            "interval_end": stamp(next_start(start, gran)),
            "group": group,
        }
        row.update(evaluate(SERVICE_LEVEL_KPIS, tally.inputs()))
        table.rows.append(row)
    return table


_GROUP_HEADINGS = {
    Dimension.TENANT: ("范围", "Scope"),
    Dimension.SKILL_GROUP: ("技能组", "Skill group"),
    Dimension.AGENT: ("工号", "Agent"),
}
