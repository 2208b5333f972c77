"""坐席服务明细表: one row per call with the four variables, times, wait, talk and outcome."""

from __future__ import annotations

from collections.abc import Sequence

from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.facts import CallFacts, call_facts
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.reports.model import Cell, Column, ReportKind, Table, stamp

DETAIL_COLUMNS = [
    Column("call_id", "呼叫编号", "Call id"),
    Column("started_at", "开始时间", "Started"),
    Column("queued_at", "排队时间", "Queued"),
    Column("answered_at", "应答时间", "Answered"),
    Column("ended_at", "结束时间", "Ended"),
    Column("agent_no", "工号", "Agent"),
    Column("skill_group", "技能组", "Skill group"),
    Column("caller", "主叫", "Caller"),
    Column("callee", "被叫", "Callee"),
    Column("wait_s", "排队时长(秒)", "Queue wait (s)"),
    Column("talk_s", "通话时长(秒)", "Talk (s)"),
    Column("transfers", "转接次数", "Transfers"),
    Column("agents", "处理坐席", "Agents (in order)"),
    Column("disposition", "处理结果", "Disposition"),
    Column("recording", "录音", "Recording"),
]


def disposition(f: CallFacts) -> str:
    """One word for how the call ended."""
    if not f.ended:
        return "in_progress"
    if f.answered:
        return "transferred" if f.transfers else "answered"
    if f.short_abandoned:
        return "short_abandoned"
    if f.abandoned:
        return "abandoned"
    if f.outbound:
        return "outbound"
    return "not_queued"


def seat_detail_report(
    calls: Sequence[CallRecord],
    settings: KpiSettings,
    tenant_id: str,
    agent_no: str | None = None,
) -> Table:
    """Rows in start order; with *agent_no*, only calls that agent handled."""
    zone = tenant_zone(settings.timezone)
    table = Table(ReportKind.SEAT_DETAIL, list(DETAIL_COLUMNS))
    for rec in sorted(calls, key=lambda c: (c.started_at, c.call_id)):
        agents = [s.agent_no for s in rec.segments]
        if agent_no is not None and agent_no not in agents and rec.agent_no != agent_no:
            continue
        f = call_facts(rec, settings)
        row: dict[str, Cell] = {
            "call_id": rec.call_id,
            "started_at": stamp(rec.started_at.astimezone(zone)),
            "queued_at": stamp(rec.queued_at and rec.queued_at.astimezone(zone)),
            "answered_at": stamp(rec.answered_at and rec.answered_at.astimezone(zone)),
            "ended_at": stamp(rec.ended_at and rec.ended_at.astimezone(zone)),
            "agent_no": f.agent_no or rec.agent_no,
            "skill_group": rec.skill_group,
            "caller": rec.caller,
            "callee": rec.callee,
            "wait_s": None if f.wait_s is None else round(f.wait_s, 3),
            "talk_s": round(f.talk_s, 3),
            "transfers": f.transfers,
            "agents": "→".join(agents),
            "disposition": disposition(f),
            "recording": f"/api/v1/recordings?tenant={tenant_id}&call_id={rec.call_id}"
            if f.answered or f.outbound
            else None,
        }
        table.rows.append(row)
    return table
