"""坐席服务明细表: one row per call with the four variables, times, wait, talk and outcome."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.reports.call_lines import (
    CallLine,
    call_lines,
    disposition,
    in_report_order,
)
from ccbridge.domain.reports.model import Cell, Column, ReportKind, Table

__all__ = ["DETAIL_COLUMNS", "disposition", "seat_detail_report", "seat_detail_table"]

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


def seat_detail_table(
    lines: Iterable[CallLine], tenant_id: str, agent_no: str | None = None
) -> Table:
    """One row per line, *lines* given in report order (``in_report_order``); with
    *agent_no*, only calls that agent handled."""
    table = Table(ReportKind.SEAT_DETAIL, list(DETAIL_COLUMNS))
    rows = table.rows
    link = f"/api/v1/recordings?tenant={tenant_id}&call_id="
    for line in lines:
        if agent_no is not None and not line.handled_by(agent_no):
            continue
        wait = line.wait_s
        row: dict[str, Cell] = {
            "call_id": line.call_id,
            "started_at": line.started_local,
            "queued_at": line.queued_local,
            "answered_at": line.answered_local,
            "ended_at": line.ended_local,
            "agent_no": line.agent_no,
            "skill_group": line.skill_group,
            "caller": line.caller,
            "callee": line.callee,
            "wait_s": None if wait is None else round(wait, 3),
            "talk_s": round(line.talk_s, 3),
            "transfers": line.transfers,
            "agents": line.agents,
            "disposition": line.disposition,
            "recording": link + line.call_id if line.recorded else None,
        }
        rows.append(row)
    return table


def seat_detail_report(
    calls: Sequence[CallRecord],
    settings: KpiSettings,
    tenant_id: str,
    agent_no: str | None = None,
) -> Table:
    """Rows in start order; with *agent_no*, only calls that agent handled."""
    return seat_detail_table(in_report_order(call_lines(calls, settings)), tenant_id, agent_no)
