"""来电属性分析报表: inbound calls by caller region, carrier, access number, IVR path, new or
repeat caller, hour of day and VIP tier."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from enum import StrEnum

import phonenumbers
from phonenumbers import carrier, geocoder

from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.numbers import to_e164
from ccbridge.domain.calls.tracker import EXTRA_VAR_PREFIX
from ccbridge.domain.kpis.catalogue import evaluate
from ccbridge.domain.kpis.facts import call_facts
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import CallTally
from ccbridge.domain.reports.model import Cell, Column, ReportKind, Table, kpi_column

ATTRIBUTE_KPIS = (
    "offered",
    "answered",
    "abandoned",
    "answer_rate",
    "service_level",
    "asa",
    "average_talk",
)
UNKNOWN = "未知"
"""Shown for a caller whose number has no region or carrier (extension, anonymous, short code)."""


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


def _lookup(e164: str) -> tuple[str, str]:
    """Region and carrier in Chinese from libphonenumber's zh data.

    ``to_e164`` already checked the shape, so a ``+86`` number skips libphonenumber's parse
    and validity check (30x faster); other countries take the full path.
    """
    if e164.startswith("+86"):
        number = phonenumbers.PhoneNumber(country_code=86, national_number=int(e164[3:]))
        region = geocoder.description_for_valid_number(number, "zh")
        name = carrier.name_for_valid_number(number, "zh")
    else:
        try:
            number = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return UNKNOWN, UNKNOWN
        region = geocoder.description_for_number(number, "zh")
        name = carrier.name_for_number(number, "zh")
    region = region or UNKNOWN
    return region, name or ("固话" if region != UNKNOWN else UNKNOWN)


class PrefixCache:
    """Region and carrier per number prefix: they depend on the first digits only.

    For ``+86 1xx xxxx`` mobiles the first 7 national digits fix both; a fixed line's region
    is fixed by its area code (at most 4 digits), so ``+86`` and 7 digits always suffice.
    """

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, str]] = {}

    def region_and_carrier(self, raw: str | None) -> tuple[str, str]:
        """The caller's region (e.g. 北京市) and carrier (e.g. 中国移动).

        An 11-digit national mobile (``1xxxxxxxxxx``) is looked up by its first 7 digits,
        and checked without a text parse: libphonenumber's validity and data for Chinese
        mobiles depend on those digits and the length only, and parsing was most of this
        report's time.
        """
        if raw is not None and len(raw) == 11 and raw[0] == "1" and raw.isdigit():
            key = "m" + raw[:7]
            known = self._known.get(key)
            if known is None:
                # What to_e164 would parse, built directly: +86, the 11 digits as they are.
                number = phonenumbers.PhoneNumber(country_code=86, national_number=int(raw))
                valid = phonenumbers.is_valid_number(number)
                known = self._known[key] = _lookup("+86" + raw) if valid else (UNKNOWN, UNKNOWN)
            return known
        e164 = to_e164(raw) if raw else None
        if e164 is None:
            return UNKNOWN, UNKNOWN
        key = e164[:10]
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = _lookup(e164)
        return found


def _extras(rec: CallRecord) -> dict[str, str]:
    return {k.removeprefix(EXTRA_VAR_PREFIX).upper(): v for k, v in rec.extras}


def attribute_values(
    rec: CallRecord,
    known_callers: Collection[str],
    settings: KpiSettings,
    numbers: PrefixCache,
) -> dict[Attribute, str]:
    """The value of each attribute for one call (``known_callers``: seen before the window)."""
    region, name = numbers.region_and_carrier(rec.caller)
    extras = _extras(rec)
    ivr = [v for k, v in extras.items() if k.startswith("IVR")]
    at = (rec.queued_at or rec.started_at).astimezone(tenant_zone(settings.timezone))
    return {
        Attribute.REGION: region,
        Attribute.CARRIER: name,
        Attribute.ACCESS_NUMBER: rec.callee or UNKNOWN,
        Attribute.IVR_PATH: ">".join(ivr) if ivr else "-",
        Attribute.CALLER_TYPE: "repeat" if rec.caller in known_callers else "new",
        Attribute.HOUR: f"{at.hour:02d}",
        Attribute.VIP_TIER: extras.get("VIP_TIER") or extras.get("VIP") or "-",
    }


def call_attributes_report(
    calls: Sequence[CallRecord],
    settings: KpiSettings,
    known_callers: Collection[str] = frozenset(),
    attributes: Sequence[Attribute] = tuple(Attribute),
) -> Table:
    """Rows of (attribute, value) over the inbound calls; a caller is *repeat* when seen before
    the window or earlier in it."""
    tallies: dict[tuple[Attribute, str], CallTally] = {}
    seen = set(known_callers)
    numbers = PrefixCache()
    for rec in sorted(calls, key=lambda c: (c.started_at, c.call_id)):
        f = call_facts(rec, settings)
        if not f.inbound:
            continue
        values = attribute_values(rec, seen, settings, numbers)
        if rec.caller:
            seen.add(rec.caller)
        for attribute in attributes:
            key = (attribute, values[attribute])
            tally = tallies.get(key)
            if tally is None:
                tally = tallies[key] = CallTally()
            tally.add(f)
    columns = [Column("attribute", "属性", "Attribute"), Column("value", "取值", "Value")]
    columns += [kpi_column(k) for k in ATTRIBUTE_KPIS]
    table = Table(ReportKind.CALL_ATTRIBUTES, columns)
    order = {a: i for i, a in enumerate(Attribute)}
    for (attribute, value), tally in sorted(
        tallies.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])
    ):
        row: dict[str, Cell] = {"attribute": attribute.value, "value": value}
        row.update(evaluate(ATTRIBUTE_KPIS, tally.inputs()))
        table.rows.append(row)
    return table
