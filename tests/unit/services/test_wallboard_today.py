"""Today's figures follow the calls one by one and agree with the reports' own computation;
the day is read again only at a start, at local midnight, every 5 minutes, or when a changed
call is no longer in memory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.floor.rules import platform_defaults
from ccbridge.domain.journal.types import StoredEvent
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import Dimension
from ccbridge.domain.reports.service_level import service_level_report
from ccbridge.services.day_figures import DayFigures
from ccbridge.services.floor_rules import FloorRuleService
from ccbridge.services.reports import DayCalls, window
from ccbridge.services.seat_ports import SkillGroupRecord
from ccbridge.services.seats import SeatService
from ccbridge.services.wallboard import WallboardService
from tests.fakes.seats import FakeClock, MemoryAgents

DAY = datetime(2026, 12, 3, tzinfo=UTC).date()
W = window(DAY, DAY, "Asia/Shanghai")
NOON = datetime.combine(DAY, time(12), W.start.tzinfo)


def call(cid: str, wait: int, answered: bool, queue: str = "t1-sales") -> CallRecord:
    queued = NOON - timedelta(hours=1)
    answer = queued + timedelta(seconds=wait) if answered else None
    return CallRecord(
        cid,
        queued - timedelta(seconds=3),
        state=CallState.ENDED if answered else CallState.ABANDONED,
        tenant="t1",
        skill_group=queue,
        queued_at=queued,
        answered_at=answer,
        ended_at=queued + timedelta(seconds=wait + 30),
    )


class Source:
    def __init__(self, calls: list[CallRecord]) -> None:
        self.calls = calls

    async def today_calls(self, tenant_id: str) -> DayCalls:
        return DayCalls(KpiSettings(), W, list(self.calls))


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class _Seats:
    async def live(self, tenant_id: str) -> list[Any]:
        return []


class _Groups:
    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> list[SkillGroupRecord]:
        return [SkillGroupRecord(tenant_id, "sales", f"{tenant_id}-sales")]


class _NoRows:
    async def get(self, tenant_id: str) -> None:
        return None

    async def open_alerts(self, tenant_id: str | None) -> list[Any]:
        return []


def _board(today: DayFigures) -> WallboardService:
    rules = FloorRuleService(
        cast(Any, _NoRows()), platform_defaults(), cast(Any, None), FakeClock(NOON).now
    )
    return WallboardService(
        seats=cast(SeatService, _Seats()),
        agents=MemoryAgents(),
        groups=_Groups(),
        live_calls=list,
        current_call=lambda _i: None,
        today=today,
        rules=rules,
        alerts=cast(Any, _NoRows()),
        clock=FakeClock(NOON),
    )


def event(cid: str, tenant: str = "t1") -> StoredEvent:
    return StoredEvent(tenant, 1, "e", "call.ended", NOON, NOON, {}, cid)


def report_level(calls: list[CallRecord]) -> float | None:
    table = service_level_report(calls, [], KpiSettings(), Granularity.DAY, Dimension.SKILL_GROUP)
    [row] = [r for r in table.rows if r["group"] == "t1-sales"]
    value = row["service_level"]
    assert value is None or isinstance(value, float)
    return value


async def test_a_changed_call_is_patched_in_without_reading_the_day() -> None:
    stored = [call("c1", 10, True), call("c2", 50, True)]
    live: dict[str, CallRecord] = {}
    ticks = Ticks()
    figures = DayFigures(Source(stored), live.get, lambda: NOON, monotonic=ticks)
    first = await figures.figures("t1")
    assert first.by_queue["t1-sales"]["service_level"] == report_level(stored) == 50.0
    live["c3"] = call("c3", 5, True)  # answered within T: the tracker's record
    figures.on_events([event("c3"), event("x9", tenant="t2")])
    now = await figures.figures("t1")
    assert now.by_queue["t1-sales"]["offered"] == 3
    assert now.by_queue["t1-sales"]["service_level"] == report_level([*stored, live["c3"]])
    assert figures.reads == 1
    assert await figures.figures("t1") is now  # nothing changed: the same figures


async def test_a_call_gone_from_memory_or_five_minutes_read_the_day_again() -> None:
    stored = [call("c1", 10, True)]
    ticks = Ticks()
    figures = DayFigures(Source(stored), {}.get, lambda: NOON, monotonic=ticks)
    await figures.figures("t1")
    figures.on_events([event("old")])
    await figures.figures("t1")
    assert figures.reads == 2
    ticks.t = 299.0
    await figures.figures("t1")
    assert figures.reads == 2
    ticks.t = 300.0
    await figures.figures("t1")
    assert figures.reads == 3


async def test_a_call_of_another_day_is_not_counted_and_midnight_reads_again() -> None:
    clock = [NOON]
    live = {"y": call("y", 5, True)}
    live["y"] = CallRecord(
        "y",
        W.start - timedelta(hours=2),
        state=CallState.ENDED,
        tenant="t1",
        skill_group="t1-sales",
        queued_at=W.start - timedelta(hours=2),
        answered_at=W.start - timedelta(hours=2) + timedelta(seconds=4),
    )
    figures = DayFigures(Source([call("c1", 10, True)]), live.get, lambda: clock[0])
    await figures.figures("t1")
    figures.on_events([event("y")])
    assert (await figures.figures("t1")).by_queue["t1-sales"]["offered"] == 1
    clock[0] = W.end + timedelta(seconds=1)
    await figures.figures("t1")
    assert figures.reads == 2


async def test_streams_woken_together_share_one_build() -> None:
    class Counting(Source):
        def __init__(self) -> None:
            super().__init__([call("c1", 10, True)])
            self.reads = 0

        async def today_calls(self, tenant_id: str) -> DayCalls:
            self.reads += 1
            await asyncio.sleep(0)
            return await super().today_calls(tenant_id)

    source = Counting()
    board = _board(DayFigures(source, {}.get, lambda: NOON))
    boards = await asyncio.gather(*(board.shared_board("t1") for _ in range(10)))
    assert source.reads == 1
    assert all(b is boards[0] for b in boards)
    again = await board.shared_board("t1")
    assert again is not boards[0]  # the next change gets a fresh build


async def test_two_readers_at_once_share_one_read_and_keep_the_changes_made_during_it() -> None:
    """The floor-alert job and a wallboard stream asking together: one read, no lost change
    (two overlapping reads once replaced each other's change set and raised KeyError)."""
    release = asyncio.Event()

    class Slow(Source):
        async def today_calls(self, tenant_id: str) -> DayCalls:
            await release.wait()
            return await super().today_calls(tenant_id)

    live: dict[str, CallRecord] = {}
    figures = DayFigures(Slow([call("c1", 10, True)]), live.get, lambda: NOON)
    first = asyncio.create_task(figures.figures("t1"))
    second = asyncio.create_task(figures.figures("t1"))
    await asyncio.sleep(0)
    live["c2"] = call("c2", 5, True)
    figures.on_events([event("c2")])  # changed while the day is being read
    release.set()
    a, b = await asyncio.gather(first, second)
    assert figures.reads == 1
    assert a is b
    assert a.by_queue["t1-sales"]["offered"] == 2
