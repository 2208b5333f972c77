"""Report tables: columns with Chinese and English headings, rows of plain cells."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.kpis.catalogue import BY_KEY

Cell = str | int | float | None


class ReportKind(StrEnum):
    """The four contract reports (RPT-01, 000:192)."""

    SERVICE_LEVEL = "service-level"
    """话务服务水平统计报表."""
    SEAT_TIME = "seat-time"
    """坐席服务时段分析表."""
    SEAT_DETAIL = "seat-detail"
    """坐席服务明细表."""
    CALL_ATTRIBUTES = "call-attributes"
    """来电属性分析报表."""
    OPERATIONS = "operations"
    """运营管理报告 (RPT-04/17): the month's KPIs against targets, misses listed."""


REPORT_TITLES: dict[ReportKind, str] = {
    ReportKind.SERVICE_LEVEL: "话务服务水平统计报表",
    ReportKind.SEAT_TIME: "坐席服务时段分析表",
    ReportKind.SEAT_DETAIL: "坐席服务明细表",
    ReportKind.CALL_ATTRIBUTES: "来电属性分析报表",
    ReportKind.OPERATIONS: "运营管理报告",
}


class Dimension(StrEnum):
    """What the service-level rows are grouped by besides the interval."""

    TENANT = "tenant"
    SKILL_GROUP = "skill_group"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class StateSpan:
    """An agent's stay in one state (the report's view of a stored state interval)."""

    agent_no: str
    state: AgentState
    reason: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class Column:
    """One report column: a stable key, and its headings."""

    key: str
    heading_zh: str
    heading_en: str


def kpi_column(key: str) -> Column:
    """A column showing the KPI *key*, headed by the catalogue's names."""
    k = BY_KEY[key]
    unit = {"percent": "(%)", "seconds": "(秒)", "per hour": "(每小时)"}.get(k.unit.value, "")
    return Column(key, k.name_zh + unit, k.name_en)


@dataclass(slots=True)
class Table:
    """A computed report: its columns in default order and one dict per row."""

    kind: ReportKind
    columns: list[Column]
    rows: list[dict[str, Cell]] = field(default_factory=list)


INTERVAL_COLUMNS = [
    Column("interval_start", "时段开始", "Interval start"),
    Column("interval_end", "时段结束", "Interval end"),
]


def stamp(at: datetime | None) -> str | None:
    """ISO 8601 with the tenant's offset (the zone is applied by the caller)."""
    return None if at is None else at.isoformat(timespec="seconds")
