"""One flat report line per call: what the seat-detail and call-attributes reports read.

A line is everything those two reports need from one call, derived once under the tenant's
thresholds and zone (``call_facts``, local time stamps, caller region and carrier, IVR path,
VIP tier), so a report over stored lines is a read and a sum, not a rebuild of call records
and a phone-number lookup per call (ADR 0019, part 3). The reports compute from lines
whether they were stored or derived from the raw rows just now, so both give the same table.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

import phonenumbers
from phonenumbers import carrier, geocoder

from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.numbers import to_e164
from ccbridge.domain.calls.tracker import EXTRA_VAR_PREFIX
from ccbridge.domain.kpis.facts import CallFacts, call_facts
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.reports.model import stamp

UNKNOWN = "未知"
"""Shown for a caller whose number has no region or carrier (extension, anonymous, short code)."""
AGENT_SEPARATOR = "→"
"""Joins the agents who handled a call, in order (the detail report's column)."""


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


class CallLine(NamedTuple):
    """The flat report line of one call (a tuple: a month of them loads quickly)."""

    call_id: str
    started_at: datetime
    """UTC; with ``call_id`` the order the reports list calls in."""
    at: datetime
    """UTC queue entry (or start): where the call counts, so the day its line is kept in."""
    started_local: str
    queued_local: str | None
    answered_local: str | None
    ended_local: str | None
    agent_no: str | None
    """The answering (or placing) agent, else the call's last agent."""
    call_agent: str | None
    """The call record's agent (the last one), for the per-agent filter."""
    agents: str
    """The agents of its legs, in order, joined by ``AGENT_SEPARATOR``."""
    skill_group: str | None
    caller: str | None
    callee: str | None
    wait_s: float | None
    talk_s: float
    transfers: int
    disposition: str
    recorded: bool
    """Answered or outbound: the detail report links its recording."""
    inbound: bool
    answered: bool
    answered_within_t: bool
    abandoned: bool
    short_abandoned: bool
    billable: bool
    region: str
    carrier: str
    ivr_path: str
    vip_tier: str
    hour: str
    """Tenant-local hour of its queue entry (or start), ``00``-``23``."""

    def handled_by(self, agent_no: str) -> bool:
        """Whether *agent_no* had a leg of the call or is its agent."""
        return self.call_agent == agent_no or (
            bool(self.agents) and agent_no in self.agents.split(AGENT_SEPARATOR)
        )


def call_line(rec: CallRecord, settings: KpiSettings, numbers: PrefixCache) -> CallLine:
    """Flatten one call under the tenant's thresholds and zone."""
    zone = tenant_zone(settings.timezone)
    f = call_facts(rec, settings)
    extras = {k.removeprefix(EXTRA_VAR_PREFIX).upper(): v for k, v in rec.extras}
    ivr = [v for k, v in extras.items() if k.startswith("IVR")]
    region, name = numbers.region_and_carrier(rec.caller)
    return CallLine(
        call_id=rec.call_id,
        started_at=rec.started_at,
        at=f.at,
        started_local=stamp(rec.started_at.astimezone(zone)) or "",
        queued_local=stamp(rec.queued_at and rec.queued_at.astimezone(zone)),
        answered_local=stamp(rec.answered_at and rec.answered_at.astimezone(zone)),
        ended_local=stamp(rec.ended_at and rec.ended_at.astimezone(zone)),
        agent_no=f.agent_no or rec.agent_no,
        call_agent=rec.agent_no,
        agents=AGENT_SEPARATOR.join(s.agent_no for s in rec.segments),
        skill_group=rec.skill_group,
        caller=rec.caller,
        callee=rec.callee,
        wait_s=f.wait_s,
        talk_s=f.talk_s,
        transfers=f.transfers,
        disposition=disposition(f),
        recorded=f.answered or f.outbound,
        inbound=f.inbound,
        answered=f.answered,
        answered_within_t=f.answered_within_t,
        abandoned=f.abandoned,
        short_abandoned=f.short_abandoned,
        billable=f.billable,
        region=region,
        carrier=name,
        ivr_path=">".join(ivr) if ivr else "-",
        vip_tier=extras.get("VIP_TIER") or extras.get("VIP") or "-",
        hour=f"{f.at.astimezone(zone).hour:02d}",
    )


def call_lines(
    calls: Iterable[CallRecord], settings: KpiSettings, numbers: PrefixCache | None = None
) -> list[CallLine]:
    """The lines of *calls* (one prefix cache shared by all of them)."""
    cache = numbers or PrefixCache()
    return [call_line(rec, settings, cache) for rec in calls]


def in_report_order(lines: Iterable[CallLine]) -> list[CallLine]:
    """Lines by start time, then call id (the order both reports walk calls in)."""
    return sorted(lines, key=lambda line: (line.started_at, line.call_id))
