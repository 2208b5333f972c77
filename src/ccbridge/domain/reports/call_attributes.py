"""来电属性分析报表: inbound calls by caller region, carrier, access number, IVR path, new or
repeat caller, hour of day and VIP tier."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from enum import StrEnum
from operator import itemgetter

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.catalogue import evaluate
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import CallTally
from ccbridge.domain.reports.call_lines import (
    UNKNOWN,
    CallLine,
    PrefixCache,
    _lookup,  # importable here as before: the scripted-day test checks the cache against it
    call_lines,
    in_report_order,
)
from ccbridge.domain.reports.model import Cell, Column, ReportKind, Table, kpi_column

__all__ = [
    "ATTRIBUTE_HEADINGS",
    "ATTRIBUTE_KPIS",
    "UNKNOWN",
    "Attribute",
    "PrefixCache",
    "_lookup",
    "attribute_values",
    "attributes_table",
    "call_attributes_report",
]

ATTRIBUTE_KPIS = (
    "offered",
    "answered",
    "abandoned",
    "answer_rate",
    "service_level",
    "asa",
    "average_talk",
)


class Attribute(StrEnum):
    """The caller attributes the report breaks calls down by."""

    REGION = "region"
    CARRIER = "carrier"
    ACCESS_NUMBER = "access_number"
    IVR_PATH = "ivr_path"
    CALLER_TYPE = "caller_type"
    HOUR = "hour"
    VIP_TIER = "vip_tier"


ATTRIBUTE_HEADINGS = {
    Attribute.REGION: "归属地",
    Attribute.CARRIER: "运营商",
    Attribute.ACCESS_NUMBER: "接入号",
    Attribute.IVR_PATH: "IVR路径",
    Attribute.CALLER_TYPE: "新老来电",
    Attribute.HOUR: "时段(小时)",
    Attribute.VIP_TIER: "VIP等级",
}


Contribution = tuple[int, bool, bool, bool, bool, int, float, float, float, bool, int]
"""One inbound call's share of a ``CallTally``: offered, answered, answered within T,
abandoned, short abandoned, transfers, wait when answered, wait (for the longest), talk when
answered, billable, outbound; summed column by column per attribute value."""

_COLUMN = tuple(itemgetter(i) for i in range(11))


def attribute_values(line: CallLine, repeat: bool) -> tuple[str, ...]:
    """The value of each attribute (in ``Attribute`` order) for one call's line (*repeat*:
    its caller was seen before)."""
    return (
        line.region,
        line.carrier,
        line.callee or UNKNOWN,
        line.ivr_path,
        "repeat" if repeat else "new",
        line.hour,
        line.vip_tier,
    )


def _contribution(line: CallLine) -> Contribution:
    wait = line.wait_s
    answered = line.answered
    return (
        1,
        answered,
        line.answered_within_t,
        line.abandoned,
        line.abandoned and line.short_abandoned,
        line.transfers,
        (wait or 0.0) if answered else 0.0,
        0.0 if wait is None else wait,
        line.talk_s if answered else 0.0,
        line.billable,
        0,  # an inbound call is never outbound
    )


def _tally(shares: list[Contribution]) -> CallTally:
    """Sum the shares column by column in call order, as ``CallTally.add`` would one call at
    a time (the same float additions in the same order, so the same figures)."""

    def total(i: int) -> int:
        return sum(map(_COLUMN[i], shares))

    def seconds(i: int) -> float:
        return sum(map(_COLUMN[i], shares), 0.0)

    return CallTally(
        offered=len(shares),
        answered=total(1),
        answered_within_t=total(2),
        abandoned=total(3),
        short_abandoned=total(4),
        transfers=total(5),
        wait_answered_s=seconds(6),
        longest_wait_s=max(0.0, max(map(_COLUMN[7], shares))),
        talk_s=seconds(8),
        billable=total(9),
        outbound=total(10),
    )


def attributes_table(
    lines: Iterable[CallLine],
    known_callers: Collection[str] = frozenset(),
    attributes: Sequence[Attribute] = tuple(Attribute),
) -> Table:
    """Rows of (attribute, value) over the inbound calls' lines, given in report order
    (``in_report_order``); a caller is *repeat* when seen before the window or earlier in it."""
    order = {a: i for i, a in enumerate(Attribute)}
    groups: dict[Attribute, defaultdict[str, list[Contribution]]] = {
        a: defaultdict(list) for a in attributes
    }
    wanted = [(order[a], groups[a]) for a in attributes]
    seen = set(known_callers)
    for line in lines:
        if not line.inbound:
            continue
        caller = line.caller
        values = attribute_values(line, caller in seen)
        if caller:
            seen.add(caller)
        share = _contribution(line)
        for i, by_value in wanted:
            by_value[values[i]].append(share)
    columns = [Column("attribute", "属性", "Attribute"), Column("value", "取值", "Value")]
    columns += [kpi_column(k) for k in ATTRIBUTE_KPIS]
    table = Table(ReportKind.CALL_ATTRIBUTES, columns)
    for attribute in sorted(groups, key=order.__getitem__):
        for value, shares in sorted(groups[attribute].items()):
            row: dict[str, Cell] = {"attribute": attribute.value, "value": value}
            row.update(evaluate(ATTRIBUTE_KPIS, _tally(shares).inputs()))
            table.rows.append(row)
    return table


def call_attributes_report(
    calls: Sequence[CallRecord],
    settings: KpiSettings,
    known_callers: Collection[str] = frozenset(),
    attributes: Sequence[Attribute] = tuple(Attribute),
) -> Table:
    """Rows of (attribute, value) over the inbound calls; a caller is *repeat* when seen before
    the window or earlier in it."""
    return attributes_table(in_report_order(call_lines(calls, settings)), known_callers, attributes)
