"""Today's figures on the wallboard: reused for 5 s, refreshed when a call of the tenant
changes, but at most once a second (each refresh reads the whole day's calls)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from ccbridge.domain.floor.rules import platform_defaults
from ccbridge.domain.journal.types import StoredEvent
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.services.floor_rules import FloorRuleService
from ccbridge.services.reports import TodayFigures
from ccbridge.services.seat_ports import SkillGroupRecord
from ccbridge.services.seats import SeatService
from ccbridge.services.wallboard import WallboardService
from tests.fakes.seats import FakeClock, MemoryAgents

T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)


class Seats:
    async def live(self, tenant_id: str) -> list[Any]:
        return []


class Groups:
    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> list[SkillGroupRecord]:
        return [SkillGroupRecord(tenant_id, "sales", f"{tenant_id}-sales")]


class NoRules:
    async def get(self, tenant_id: str) -> None:
        return None

    async def put(self, rules: Any) -> None:
        raise AssertionError("not written here")


class NoAlerts:
    async def open_alerts(self, tenant_id: str | None) -> list[Any]:
        return []


class Today:
    def __init__(self) -> None:
        self.reads = 0

    async def today(self, tenant_id: str) -> TodayFigures:
        self.reads += 1
        return TodayFigures(KpiSettings(), {f"{tenant_id}-sales": {"offered": float(self.reads)}})


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _event(tenant: str, kind: str) -> StoredEvent:
    return StoredEvent(tenant, 1, "e1", kind, T0, T0, {})


def _service(today: Today, ticks: Ticks) -> WallboardService:
    rules = FloorRuleService(NoRules(), platform_defaults(), cast(Any, None), FakeClock(T0).now)
    return WallboardService(
        seats=cast(SeatService, Seats()),
        agents=MemoryAgents(),
        groups=Groups(),
        live_calls=list,
        current_call=lambda _i: None,
        today=today,
        rules=rules,
        alerts=NoAlerts(),
        clock=FakeClock(T0),
        monotonic=ticks,
    )


async def _offered(board: WallboardService) -> int:
    value: int = (await board.board("t1"))["skill_groups"][0]["offered_today"]
    return value


async def test_day_figures_are_reused_then_refreshed_by_a_call_at_most_once_a_second() -> None:
    today, ticks = Today(), Ticks()
    board = _service(today, ticks)
    assert await _offered(board) == 1
    ticks.t = 4.0
    assert await _offered(board) == 1  # reused: no call changed
    board.on_events([_event("t1", "agent.state_changed"), _event("t2", "call.queued")])
    assert await _offered(board) == 1  # not a call of t1
    board.on_events([_event("t1", "call.answered")])
    assert await _offered(board) == 2  # stale, and older than a second
    ticks.t = 4.5
    board.on_events([_event("t1", "call.ended")])
    assert await _offered(board) == 2  # stale, but refreshed half a second ago
    ticks.t = 5.0
    assert await _offered(board) == 3
    ticks.t = 9.9
    assert await _offered(board) == 3
    ticks.t = 10.0
    assert await _offered(board) == 4  # 5 s without any call change
    assert today.reads == 4
