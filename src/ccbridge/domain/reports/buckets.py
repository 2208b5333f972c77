"""15-minute tallies: the pre-aggregated unit every report interval is summed from (ADR 0019).

Every report interval (15 minutes to a year) in a zone whose offsets are whole quarter hours
(all zones in use) is a union of 15-minute UTC buckets, and the tallies are additive, so a
report over stored buckets equals one computed from the raw rows. The keying rules make a
bucket depend on its own instants only: a call counts in the bucket of its queue entry (or
start), a leg or outbound call in the bucket it starts in, seat time where it is spent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.facts import call_facts
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import CallTally, SeatTally
from ccbridge.domain.reports.intervals import Granularity, interval_start
from ccbridge.domain.reports.model import Dimension, StateSpan
from ccbridge.domain.reports.seat_time import SeatKey, tally_seats
from ccbridge.domain.reports.service_level import RowKey

BUCKET = timedelta(minutes=15)
"""Width of one stored tally."""

CallBucketKey = tuple[datetime, str, str]
"""(bucket start in UTC, skill group or "", answering or placing agent or "")."""
SeatBucketKey = tuple[datetime, str]
"""(bucket start in UTC, agent number)."""


def bucket_of(at: datetime) -> datetime:
    """The UTC start of the 15-minute bucket holding *at*."""
    u = at.astimezone(UTC)
    return u.replace(minute=u.minute - u.minute % 15, second=0, microsecond=0)


def call_buckets(
    calls: Iterable[CallRecord], wraps: Mapping[str, float], settings: KpiSettings
) -> dict[CallBucketKey, CallTally]:
    """Tally calls per bucket, skill group and agent (callers pass the calls of their range)."""
    out: dict[CallBucketKey, CallTally] = {}
    for rec in calls:
        f = call_facts(rec, settings)
        key = (bucket_of(f.at), f.skill_group or "", f.agent_no or "")
        tally = out.get(key)
        if tally is None:
            tally = out[key] = CallTally()
        tally.add(f, wraps.get(rec.call_id, 0.0))
    return out


def seat_buckets(
    calls: Sequence[CallRecord],
    spans: Sequence[StateSpan],
    settings: KpiSettings,
    since: datetime,
    until: datetime,
) -> dict[SeatBucketKey, SeatTally]:
    """Seat time and work per bucket and agent inside ``[since, until)``."""
    utc = KpiSettings(
        settings.service_level_seconds,
        settings.short_abandon_seconds,
        settings.billable_seconds,
        timezone="UTC",
    )
    rows = tally_seats(calls, spans, utc, Granularity.MIN15, until, since)
    return {(start.astimezone(UTC), agent): t for (start, agent), t in rows.items()}


ANY_AGENT = "*"
"""The agent column of a group-level call tally (the sum over agents), stored beside the
per-agent ones so reports by tenant or skill group read a few rows per quarter hour."""


def by_group(buckets: Mapping[CallBucketKey, CallTally]) -> dict[CallBucketKey, CallTally]:
    """Sum call buckets over agents: one ``(bucket, group, ANY_AGENT)`` tally per group."""
    out: dict[CallBucketKey, CallTally] = {}
    for (b, g, _), t in buckets.items():
        into = out.get((b, g, ANY_AGENT))
        if into is None:
            into = out[(b, g, ANY_AGENT)] = CallTally()
        into.absorb(t)
    return out


def _group(key: CallBucketKey, dimension: Dimension) -> str:
    if dimension is Dimension.SKILL_GROUP:
        return key[1]
    if dimension is Dimension.AGENT:
        return key[2]
    return ""


def roll_calls(
    buckets: Mapping[CallBucketKey, CallTally],
    gran: Granularity,
    zone: ZoneInfo,
    dimension: Dimension,
) -> dict[RowKey, CallTally]:
    """Sum call buckets into report rows of *gran* (tenant-local) by *dimension*."""
    out: dict[RowKey, CallTally] = {}
    starts: dict[datetime, datetime] = {}  # bucket start -> its interval's (many share one)
    for key, t in buckets.items():
        start = starts.get(key[0])
        if start is None:
            start = starts[key[0]] = interval_start(key[0], gran, zone)
        row = (start, _group(key, dimension))
        into = out.get(row)
        if into is None:
            into = out[row] = CallTally()
        into.absorb(t)
    return out


def roll_seats(
    buckets: Mapping[SeatBucketKey, SeatTally], gran: Granularity, zone: ZoneInfo
) -> dict[SeatKey, SeatTally]:
    """Sum seat buckets into per agent × interval rows of *gran* (tenant-local)."""
    out: dict[SeatKey, SeatTally] = {}
    starts: dict[datetime, datetime] = {}  # bucket start -> its interval's (agents share one)
    for (bucket, agent), t in buckets.items():
        start = starts.get(bucket)
        if start is None:
            start = starts[bucket] = interval_start(bucket, gran, zone)
        row = (start, agent)
        into = out.get(row)
        if into is None:
            into = out[row] = SeatTally()
        into.absorb(t)
    return out


def merge_calls(
    into: dict[CallBucketKey, CallTally], more: Mapping[CallBucketKey, CallTally]
) -> None:
    """Add *more* call buckets into *into* (ranges are disjoint, so keys rarely meet)."""
    for key, t in more.items():
        cur = into.get(key)
        if cur is None:
            into[key] = t
        else:
            cur.absorb(t)


def merge_seats(
    into: dict[SeatBucketKey, SeatTally], more: Mapping[SeatBucketKey, SeatTally]
) -> None:
    """Add *more* seat buckets into *into* (an open span may meet a stored bucket)."""
    for key, t in more.items():
        cur = into.get(key)
        if cur is None:
            into[key] = t
        else:
            cur.absorb(t)
