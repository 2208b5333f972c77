"""The platform's working-day calendar: holidays and make-up working days (调休) per year."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from ccbridge.api.schemas.bounds import Int64
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.services.calendar import CalendarInvalidError, CalendarService, CalendarView

router = APIRouter(prefix="/api/v1/calendar", tags=["leases"])

Year = Annotated[Int64, Path(ge=2000, le=2100, description="The calendar year")]
Dates = Annotated[list[date], Field(max_length=366)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only the platform admin changes the calendar"},
    422: {"description": "A faulty date; `errors[].field` names each (`body.holidays[i]`, …)"},
}


class CalendarIn(BaseModel):
    """A year's official arrangement: every day off, and every weekend day that is worked."""

    model_config = ConfigDict(extra="forbid")

    holidays: Dates = Field(
        default_factory=list,
        description="Days off; weekend days inside a holiday range may be listed (no effect)",
    )
    makeup_workdays: Dates = Field(
        default_factory=list,
        description="Saturdays or Sundays that are working days (调休); never also a holiday",
    )


class CalendarOut(CalendarIn):
    """A year of the calendar; `calendar_loaded: false` means none is stored for that year and
    notice periods reaching it count Monday to Friday only."""

    year: int
    calendar_loaded: bool
    updated_at: datetime | None
    updated_by: str | None

    @classmethod
    def of(cls, view: CalendarView) -> CalendarOut:
        """Build from the service's view of the year."""
        return cls(
            year=view.year,
            holidays=list(view.holidays),
            makeup_workdays=list(view.makeup_days),
            calendar_loaded=view.loaded,
            updated_at=view.updated_at,
            updated_by=view.updated_by,
        )


def _svc(request: Request) -> CalendarService:
    service: CalendarService = request.app.state.calendar
    return service


@router.get("/{year}", response_model=CalendarOut, responses=_RESPONSES)
async def get_calendar(
    request: Request,
    year: Year,
    _who: Annotated[Principal, Depends(require("leases:read"))],
) -> CalendarOut:
    """The year's holidays and make-up working days, the same for every tenant.

    Lease changes and IVR publishing count their notice in working days on it, on each tenant's
    local dates.
    """
    return CalendarOut.of(await _svc(request).get(year))


@router.put("/{year}", response_model=CalendarOut, responses=_RESPONSES)
async def put_calendar(
    request: Request,
    year: Year,
    body: CalendarIn,
    who: Annotated[Principal, Depends(require("leases:write"))],
) -> CalendarOut:
    """Replace the year (platform admin; audited as ``calendar.update``).

    Every faulty date is named at once: a date outside the year, a make-up working day that
    is not a Saturday or Sunday, a date listed both as holiday and as make-up day.
    """
    try:
        view = await _svc(request).put(who, year, body.holidays, body.makeup_workdays)
    except CalendarInvalidError as exc:
        raise exc.at("body.") from None
    return CalendarOut.of(view)
