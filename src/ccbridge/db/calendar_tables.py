"""The platform's working-day calendar: one row per year, the same for every tenant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ccbridge.db.tables import Base, UTCDateTime


class WorkingCalendarRow(Base):
    """A year's holidays and make-up working days (JSON lists of ISO dates, sorted)."""

    __tablename__ = "working_calendars"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holidays: Mapped[list[str]] = mapped_column(JSON)
    makeup_workdays: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (CheckConstraint("year BETWEEN 2000 AND 2100", name="year_range"),)
