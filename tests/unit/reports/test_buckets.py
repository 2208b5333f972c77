"""Reports summed from 15-minute tallies equal reports computed from the raw rows, for random
call sets and state histories, at every granularity, dimension and however the range is cut
into the chunks the maintenance job stores (ADR 0019)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import CallTally, SeatTally
from ccbridge.domain.reports.buckets import (
    BUCKET,
    bucket_of,
    by_group,
    call_buckets,
    merge_calls,
    merge_seats,
    roll_calls,
    roll_seats,
    seat_buckets,
)
from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import Dimension
from ccbridge.domain.reports.seat_time import seat_time_table, tally_seats
from ccbridge.domain.reports.service_level import (
    service_level_report,
    service_level_table,
    wrap_by_call,
)
from tests.unit.reports.random_calls import START, random_history

CFG = KpiSettings(service_level_seconds=20, short_abandon_seconds=5, timezone="Asia/Shanghai")
ZONE = tenant_zone(CFG.timezone)
LO = START.replace(hour=16)  # local midnight in Shanghai
HI = LO + timedelta(days=1)


def _cuts(rnd: random.Random, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """Split ``[lo, hi)`` at random quarter-hour boundaries (how stored days and live pieces
    meet)."""
    points = sorted({lo + BUCKET * rnd.randint(1, int((hi - lo) / BUCKET) - 1) for _ in range(5)})
    edges = [lo, *points, hi]
    return list(itertools.pairwise(edges))


@pytest.mark.parametrize("seed", range(12))
def test_service_level_from_buckets_equals_raw(seed: int) -> None:
    calls, spans = random_history(seed)
    inside = [c for c in calls if LO <= (c.queued_at or c.started_at) < HI]
    rnd = random.Random(seed)
    stored: dict = {}
    for lo, hi in _cuts(rnd, LO, HI):
        part = [c for c in inside if lo <= (c.queued_at or c.started_at) < hi]
        merge_calls(stored, call_buckets(part, wrap_by_call(part, spans), CFG))
    for gran in (Granularity.MIN15, Granularity.MIN30, Granularity.MIN60, Granularity.DAY):
        for dim in Dimension:
            raw = service_level_report(inside, spans, CFG, gran, dim)
            summed = service_level_table(roll_calls(stored, gran, ZONE, dim), gran, dim)
            assert summed.rows == raw.rows, (gran, dim)
            if dim is not Dimension.AGENT:  # the stored group sums give the same rows
                grouped = roll_calls(by_group(stored), gran, ZONE, dim)
                assert service_level_table(grouped, gran, dim).rows == raw.rows
    assert any(r["transfers"] for r in raw.rows)  # the data exercised transfers
    assert sum(t.short_abandoned for t in stored.values()) > 0


@pytest.mark.parametrize("seed", range(12))
def test_seat_time_from_chunked_buckets_equals_raw(seed: int) -> None:
    calls, spans = random_history(seed)
    until = HI - timedelta(hours=2)  # open intervals end here, as "now" inside the window
    rnd = random.Random(seed)
    chunks: dict = {}
    for lo, hi in _cuts(rnd, LO, HI):
        merge_seats(chunks, seat_buckets(calls, spans, CFG, lo, min(hi, until)))
    for gran in (Granularity.MIN15, Granularity.MIN60, Granularity.DAY, Granularity.WEEK):
        raw = tally_seats(calls, spans, CFG, gran, until, since=LO)
        assert roll_seats(chunks, gran, ZONE) == raw, gran
        assert seat_time_table(roll_seats(chunks, gran, ZONE), CFG, gran).rows == (
            seat_time_table(raw, CFG, gran).rows
        )
    assert any(t.not_ready_by_reason for t in chunks.values())
    assert any(s.ended_at is None for s in spans)  # open intervals were counted to *until*


def test_buckets_are_utc_quarter_hours() -> None:
    at = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    assert bucket_of(at) == datetime(2026, 3, 1, 23, 45, tzinfo=UTC)
    shifted = at.astimezone(tenant_zone("Asia/Kathmandu"))  # +05:45 still lands on a bucket
    assert bucket_of(shifted) == datetime(2026, 3, 1, 23, 45, tzinfo=UTC)


def test_absorb_adds_counters_and_keeps_the_longest_wait() -> None:
    a = CallTally(offered=2, answered=1, longest_wait_s=40.0, talk_s=10.0)
    a.absorb(CallTally(offered=1, longest_wait_s=12.0, talk_s=5.0, transfers=1))
    assert (a.offered, a.answered, a.longest_wait_s, a.talk_s, a.transfers) == (3, 1, 40.0, 15.0, 1)
    s = SeatTally(ready_s=5.0, not_ready_by_reason={"meeting": 5.0})
    s.absorb(SeatTally(ready_s=1.0, handled=2, not_ready_by_reason={"meeting": 1.0, "x": 2.0}))
    assert (s.ready_s, s.handled, s.not_ready_by_reason) == (6.0, 2, {"meeting": 6.0, "x": 2.0})
