"""运营管理报告 (RPT-04/17): the month's 接通率, 工作效率, 及时应答率, 平均处理时长 and 日呼出量
against the tenant's targets, with every miss listed (the tenant's, then each agent's)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.catalogue import BY_KEY
from ccbridge.domain.kpis.facts import call_facts
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import CallTally, SeatTally
from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import Cell, Column, ReportKind, StateSpan, Table
from ccbridge.domain.reports.seat_time import SeatKey, tally_seats
from ccbridge.domain.reports.service_level import wrap_by_call

OPERATIONS_KPIS = ("answer_rate", "work_efficiency", "service_level", "aht")
DAILY_OUTBOUND = "daily_outbound"
"""日呼出量: outbound calls per day signed in, against the tenant's daily quota (RPT-05)."""

OPERATIONS_COLUMNS = [
    Column("scope", "范围", "Scope"),
    Column("kpi", "指标", "KPI"),
    Column("name", "名称", "Name"),
    Column("value", "实际", "Actual"),
    Column("target", "目标", "Target"),
    Column("met", "达标", "Met"),
]


def _row(
    scope: str, key: str, name: str, value: float | None, target: float | None, met: bool | None
) -> dict[str, Cell]:
    return {
        "scope": scope,
        "kpi": key,
        "name": name,
        "value": None if value is None else round(value, 4),
        "target": target,
        "met": None if met is None else ("yes" if met else "no"),
    }


def operations_report(
    calls: Sequence[CallRecord],
    spans: Sequence[StateSpan],
    settings: KpiSettings,
    until: datetime,
) -> Table:
    """Tenant rows for each KPI, then one row per agent that missed 工作效率 or 日呼出量."""
    wraps = wrap_by_call(calls, spans)
    tenant_calls = CallTally()
    for rec in calls:
        tenant_calls.add(call_facts(rec, settings), wraps.get(rec.call_id, 0.0))
    seat_days = tally_seats(calls, spans, settings, Granularity.DAY, until)
    return operations_table(tenant_calls, seat_days, settings)


def operations_table(
    tenant_calls: CallTally, seat_days: Mapping[SeatKey, SeatTally], settings: KpiSettings
) -> Table:
    """Judge the tenant's calls and each agent's seat days against the targets."""
    targets = dict(settings.targets)
    if "work_efficiency" not in targets and BY_KEY["work_efficiency"].threshold is not None:
        targets["work_efficiency"] = BY_KEY["work_efficiency"].threshold.value
    per_agent: dict[str, SeatTally] = defaultdict(SeatTally)
    days: dict[str, int] = defaultdict(int)
    for (_, agent), day in seat_days.items():
        per_agent[agent].absorb(day)
        if day.signed_in_s > 0:
            days[agent] += 1
    tenant_seats = SeatTally()
    for t in per_agent.values():
        tenant_seats.absorb(t)
    table = Table(ReportKind.OPERATIONS, list(OPERATIONS_COLUMNS))
    for key in OPERATIONS_KPIS:
        k = BY_KEY[key]
        inputs = tenant_calls.inputs() if k.basis.value == "calls" else tenant_seats.inputs()
        value = k.value(inputs)
        target = targets.get(key)
        met = None if target is None else k.target(target).met(value)
        table.rows.append(_row("tenant", key, k.name_zh, value, target, met))
    quota = settings.outbound_daily_quota
    total_days = sum(days.values())
    outbound = sum(t.outbound for t in per_agent.values())
    per_day = outbound / total_days if total_days else None
    table.rows.append(
        _row(
            "tenant",
            DAILY_OUTBOUND,
            "日呼出量",
            per_day,
            quota,
            None if quota is None or per_day is None else per_day >= quota,
        )
    )
    efficiency = BY_KEY["work_efficiency"]
    for agent in sorted(per_agent):
        t = per_agent[agent]
        value = efficiency.value(t.inputs())
        target = targets.get("work_efficiency")
        if target is not None and efficiency.target(target).met(value) is False:
            table.rows.append(
                _row(agent, "work_efficiency", efficiency.name_zh, value, target, False)
            )
        if quota is not None and days[agent] and t.outbound / days[agent] < quota:
            table.rows.append(
                _row(agent, DAILY_OUTBOUND, "日呼出量", t.outbound / days[agent], quota, False)
            )
    return table
