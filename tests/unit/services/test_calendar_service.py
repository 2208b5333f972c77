"""The calendar service: who may change it, faults named at once, audit, cache and TTL, and
notice periods counted on the stored years in the tenant's zone (with the shipped 2026 file)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ccbridge.calendar_cli import read_file
from ccbridge.domain.access import AccessDeniedError, Principal, Role
from ccbridge.domain.calendar import CalendarYear
from ccbridge.domain.leases.model import ChangeKind
from ccbridge.services.calendar import CalendarInvalidError, CalendarService, Notice
from ccbridge.services.calendar_ports import CalendarRecord
from tests.fakes.calendar import ListAudit, MemoryCalendars, Ticker

ROOT = Principal(actor="key:root", role=Role.PLATFORM_ADMIN, tenant_id=None)
TENANT_ADMIN = Principal(actor="key:t1", role=Role.TENANT_ADMIN, tenant_id="t1")
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
CN_2026 = Path(__file__).parents[3] / "docs" / "calendars" / "cn-2026.yaml"
SHANGHAI = "Asia/Shanghai"


class World:
    def __init__(self) -> None:
        self.repo = MemoryCalendars()
        self.audit = ListAudit()
        self.ticker = Ticker()
        self.service = CalendarService(
            self.repo, self.audit, lambda: NOW, ttl_seconds=60, monotonic=self.ticker
        )

    async def load_2026(self) -> None:
        year = read_file(CN_2026)
        await self.service.put(ROOT, year.year, year.holidays, year.makeup_workdays)


@pytest.fixture
def world() -> World:
    return World()


async def test_only_the_platform_admin_changes_the_calendar(world: World) -> None:
    with pytest.raises(AccessDeniedError):
        await world.service.put(TENANT_ADMIN, 2026, [date(2026, 10, 1)], [])
    assert world.repo.rows == {}
    assert world.audit.entries == []


async def test_faulty_dates_are_refused_together_and_nothing_is_stored(world: World) -> None:
    with pytest.raises(CalendarInvalidError) as caught:
        await world.service.put(
            ROOT, 2026, [date(2026, 10, 1)], [date(2026, 10, 1), date(2026, 10, 8)]
        )
    fields = [e["field"] for e in caught.value.errors]
    assert fields == ["makeup_workdays[0]", "makeup_workdays[1]"]
    assert [e["field"] for e in caught.value.at("body.").errors] == [
        "body.makeup_workdays[0]",
        "body.makeup_workdays[1]",
    ]
    assert caught.value.at("body.").field == "body.makeup_workdays[0]"
    assert world.repo.rows == {}
    assert world.audit.entries == []


async def test_a_put_stores_the_year_sorted_once_each_and_audits_it_with_the_year_before(
    world: World,
) -> None:
    first = await world.service.put(
        ROOT, 2026, [date(2026, 10, 2), date(2026, 10, 1), date(2026, 10, 1)], []
    )
    assert first.holidays == (date(2026, 10, 1), date(2026, 10, 2))
    assert (first.loaded, first.updated_by, first.updated_at) == (True, "key:root", NOW)
    await world.service.put(ROOT, 2026, [date(2026, 10, 1)], [date(2026, 10, 10)])
    (_, _, _, _, _, created), (actor, tenant, action, kind, obj, updated) = world.audit.entries
    assert (actor, tenant, action, kind, obj) == (
        "key:root",
        None,
        "calendar.update",
        "calendar",
        "2026",
    )
    assert created["before"] is None
    assert updated == {
        "holidays": ["2026-10-01"],
        "makeup_workdays": ["2026-10-10"],
        "before": {"holidays": ["2026-10-01", "2026-10-02"], "makeup_workdays": []},
    }


async def test_a_year_never_set_reads_as_not_loaded(world: World) -> None:
    view = await world.service.get(2031)
    assert (view.year, view.holidays, view.makeup_days, view.loaded) == (2031, (), (), False)
    assert view.updated_at is None


async def test_reads_are_cached_until_the_ttl_and_a_put_here_refreshes_at_once(
    world: World,
) -> None:
    assert not (await world.service.get(2026)).loaded
    # Another process (or ``ccbridge calendar import``) writes the year behind our back.
    days = CalendarYear(2026, (date(2026, 10, 1),), ())
    await world.repo.put(CalendarRecord(days, NOW, "cli"))
    assert not (await world.service.get(2026)).loaded
    assert world.repo.reads == 1
    world.ticker.value += 61
    assert (await world.service.get(2026)).holidays == (date(2026, 10, 1),)
    assert world.repo.reads == 2
    await world.service.put(ROOT, 2026, [date(2026, 10, 2)], [])
    assert (await world.service.get(2026)).holidays == (date(2026, 10, 2),)
    assert world.repo.reads == 2  # the put replaced the cached year: no read needed


async def test_seven_working_days_over_the_spring_festival_count_the_makeup_saturdays(
    world: World,
) -> None:
    # Fri 13 Feb 2026, 10:00 in Shanghai. Sat 14 is worked (1), 15-23 are off, 24-27 (2-5),
    # Sat 28 is worked (6), Mon 2 Mar (7).
    at = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)
    await world.load_2026()
    notice = await world.service.notice(ChangeKind.SEAT_COUNT, at, SHANGHAI)
    assert notice == Notice(date(2026, 3, 2), calendar_loaded=True)


async def test_without_a_calendar_the_notice_counts_weekdays_and_says_so_once_in_the_log(
    world: World,
) -> None:
    at = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)
    with capture_logs() as logs:
        first = await world.service.notice(ChangeKind.SEAT_COUNT, at, SHANGHAI)
        again = await world.service.notice(ChangeKind.IVR, at, SHANGHAI)
    assert first == Notice(date(2026, 2, 24), calendar_loaded=False)
    assert again == Notice(date(2026, 2, 16), calendar_loaded=False)
    missing = [e for e in logs if e["event"] == "working_calendar_missing"]
    assert [(e["log_level"], e["year"]) for e in missing] == [("warning", 2026)]
    # The line says how to load one, with the file the repository ships.
    assert "ccbridge calendar import docs/calendars/cn-2026.yaml" in missing[0]["hint"]


async def test_a_notice_reaching_an_unloaded_next_year_is_flagged(world: World) -> None:
    await world.load_2026()
    thursday = datetime(2026, 12, 24, 2, 0, tzinfo=UTC)
    seats = await world.service.notice(ChangeKind.SEAT_COUNT, thursday, SHANGHAI)
    assert seats == Notice(date(2027, 1, 4), calendar_loaded=False)
    group = await world.service.notice(ChangeKind.SKILL_GROUP, thursday, SHANGHAI)
    assert group == Notice(date(2026, 12, 25), calendar_loaded=True)


async def test_the_notice_starts_from_the_tenants_own_date(world: World) -> None:
    await world.load_2026()
    # Wed 30 Sep 2026 20:00 in New York is already Thu 1 Oct (National Day) in Shanghai.
    at = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)
    new_york = await world.service.notice(ChangeKind.IVR, at, "America/New_York")
    shanghai = await world.service.notice(ChangeKind.IVR, at, SHANGHAI)
    assert new_york.earliest == date(2026, 10, 8)  # the Golden Week is off everywhere
    assert shanghai.earliest == date(2026, 10, 8)
    # Fri 9 Oct 23:30 in London is Sat 10 Oct 06:30 in Shanghai, a make-up working day.
    friday = datetime(2026, 10, 9, 22, 30, tzinfo=UTC)
    assert (await world.service.notice(ChangeKind.IVR, friday, "Europe/London")).earliest == (
        date(2026, 10, 10)
    )
    assert (await world.service.notice(ChangeKind.IVR, friday, SHANGHAI)).earliest == (
        date(2026, 10, 12)
    )


async def test_coverage_names_the_years_notices_now_reach_without_a_calendar(
    world: World,
) -> None:
    await world.load_2026()
    with capture_logs() as logs:
        december = await world.service.coverage(date(2026, 12, 2))
        june = await world.service.coverage(date(2026, 6, 1))
    assert (december.loaded_years, december.missing_years) == ([2026], [2027])
    assert (june.loaded_years, june.missing_years) == ([2026], [])
    assert [e["year"] for e in logs if e["event"] == "working_calendar_missing"] == [2027]


def test_the_shipped_2026_file_is_the_state_council_arrangement() -> None:
    year = read_file(CN_2026)
    assert year.year == 2026
    assert len(year.holidays) == 33  # 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert year.makeup_workdays == [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
    assert {date(2026, 2, 15), date(2026, 2, 23), date(2026, 10, 7)} <= set(year.holidays)
