"""Service hours and holidays of a time-switch node, in the tenant's time zone."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from ccbridge.domain.calendar import (
    WEEKDAYS_ONLY,
    WorkingCalendar,
    require_aware,
    tenant_zone,
)
from ccbridge.domain.ivr.model import Holiday, OpenHours, Season, TimeSwitchNode


class Period(StrEnum):
    """What a time switch decided."""

    HOLIDAY = "holiday"
    OPEN = "open"
    CLOSED = "closed"


def _in_season(day: date, season: Season) -> bool:
    """Month-day ranges may wrap the year end (``12-01``–``02-28``)."""
    md = (day.month, day.day)
    if season.start <= season.end:
        return season.start <= md <= season.end
    return md >= season.start or md <= season.end


def _open_at(local: datetime, hours: tuple[OpenHours, ...], calendar: WorkingCalendar) -> bool:
    moment = local.time().replace(tzinfo=None)
    for rule in hours:
        named = local.weekday() in rule.days
        if not named and not (rule.workdays and calendar.is_working_day(local.date())):
            continue
        if rule.start <= rule.end:
            if rule.start <= moment < rule.end:
                return True
        elif moment >= rule.start or moment < rule.end:  # over midnight, e.g. 22:00–06:00
            return True
    return False


def holiday_of(node: TimeSwitchNode, day: date) -> Holiday | None:
    """Return the first holiday range that contains ``day``."""
    for holiday in node.holidays:
        if holiday.start <= day <= holiday.end:
            return holiday
    return None


def decide(
    node: TimeSwitchNode,
    now: datetime,
    tenant_timezone: str | None,
    calendar: WorkingCalendar = WEEKDAYS_ONLY,
) -> tuple[Period, Holiday | None]:
    """Say whether ``now`` is a holiday (which), open or closed (node zone over tenant's).

    ``workdays`` hours follow ``calendar``: public holidays closed, make-up Saturdays open.
    """
    require_aware(now)
    local = now.astimezone(tenant_zone(node.timezone or tenant_timezone))
    holiday = holiday_of(node, local.date())
    if holiday is not None:
        return Period.HOLIDAY, holiday
    if node.always_open:
        return Period.OPEN, None
    hours = node.hours
    for season in node.seasons:
        if _in_season(local.date(), season):
            hours = season.hours
            break
    return (Period.OPEN if _open_at(local, hours, calendar) else Period.CLOSED), None
