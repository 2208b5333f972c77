"""Per-tenant seat rules (break and not-ready limits) and the decision values every check returns.

Checks never raise for a business refusal: they return ``Allowed``, ``Refused(code, message)``
or ``Queued(message)``. ``code`` is stable (the API maps it); ``message`` is for the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from ccbridge.domain.calendar import DEFAULT_TIMEZONE


class RefusalCode(StrEnum):
    """Stable machine-readable reason of a refusal."""

    SEAT_LIMIT_REACHED = "SEAT_LIMIT_REACHED"
    LEASE_NOT_ACTIVE = "LEASE_NOT_ACTIVE"
    AGENT_NOT_CERTIFIED = "AGENT_NOT_CERTIFIED"
    ALREADY_SIGNED_IN = "ALREADY_SIGNED_IN"
    BREAK_LIMIT_PER_DAY = "BREAK_LIMIT_PER_DAY"
    FLOOR_BREAK_CAP = "FLOOR_BREAK_CAP"
    NO_BREAK_REQUESTED = "NO_BREAK_REQUESTED"
    NOTICE_TOO_SHORT = "NOTICE_TOO_SHORT"
    EFFECTIVE_DATE_IN_PAST = "EFFECTIVE_DATE_IN_PAST"
    CAPABILITY_NOT_LEASED = "CAPABILITY_NOT_LEASED"
    NUMBER_NOT_ALLOWED = "NUMBER_NOT_ALLOWED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    DEVICE_IN_USE = "DEVICE_IN_USE"
    NUMBER_INVALID = "NUMBER_INVALID"
    INTERNATIONAL_DENIED = "INTERNATIONAL_DENIED"
    PREMIUM_RATE_DENIED = "PREMIUM_RATE_DENIED"
    SEAT_RATE_LIMITED = "SEAT_RATE_LIMITED"
    TENANT_RATE_LIMITED = "TENANT_RATE_LIMITED"
    SEAT_CONCURRENCY_LIMITED = "SEAT_CONCURRENCY_LIMITED"
    TENANT_CONCURRENCY_LIMITED = "TENANT_CONCURRENCY_LIMITED"
    OUTSIDE_BUSINESS_HOURS = "OUTSIDE_BUSINESS_HOURS"
    NO_TRANSIT = "NO_TRANSIT"
    NO_CALLER_ID = "NO_CALLER_ID"


@dataclass(frozen=True, slots=True)
class Allowed:
    """The request may go ahead."""

    note: str = ""


@dataclass(frozen=True, slots=True)
class Refused:
    """The request is refused; ``code`` is stable, ``message`` is what the user sees."""

    code: RefusalCode
    message: str


@dataclass(frozen=True, slots=True)
class Queued:
    """The request waits for a free slot (e.g. a break when the floor cap is reached)."""

    message: str


Decision = Allowed | Refused | Queued

ALLOWED = Allowed()


@dataclass(frozen=True, slots=True)
class BreakPolicy:
    """小休 rules; contract defaults: 3 a day, 3 of a floor at once (SEAT-08). The 10-minute
    length is a floor rule (``break_too_long``), which alerts rather than refuses."""

    max_per_day: int | None = 3
    floor_cap: int | None = 3
    queue_when_floor_full: bool = False

    @classmethod
    def outbound_project(cls) -> BreakPolicy:
        """Outbound projects choose their own breaks (SEAT-09; 10 min each is a floor rule)."""
        return cls(max_per_day=None, floor_cap=None)


@dataclass(frozen=True, slots=True)
class SeatPolicy:
    """All seat rules of one tenant (or one project of a tenant)."""

    breaks: BreakPolicy = BreakPolicy()
    wrapup: timedelta = timedelta(0)
    """After-call work after each call; zero means the agent goes straight back."""
    timezone: str = DEFAULT_TIMEZONE
    """Daily counters reset at the tenant-local midnight."""


@dataclass(frozen=True, slots=True)
class DailyCounter:
    """A count that restarts every tenant-local day."""

    day: date | None = None
    count: int = 0

    def on(self, day: date) -> int:
        """Return the count for ``day`` (0 on any other day than the one recorded)."""
        return self.count if self.day == day else 0

    def incremented(self, day: date) -> DailyCounter:
        """Return the counter with one more occurrence on ``day``."""
        return DailyCounter(day, self.on(day) + 1)


def check_break(policy: BreakPolicy, taken_today: int, floor_on_break: int) -> Decision:
    """Decide a break request from today's count and how many others of the floor are on break."""
    if policy.max_per_day is not None and taken_today >= policy.max_per_day:
        return Refused(
            RefusalCode.BREAK_LIMIT_PER_DAY,
            f"You have already taken {taken_today} of {policy.max_per_day} breaks today; "
            "further breaks need the shift lead's approval.",
        )
    if policy.floor_cap is not None and floor_on_break >= policy.floor_cap:
        if policy.queue_when_floor_full:
            return Queued(
                f"{floor_on_break} agents of your floor are on break (limit {policy.floor_cap}); "
                "your break starts as soon as one of them is back."
            )
        return Refused(
            RefusalCode.FLOOR_BREAK_CAP,
            f"{floor_on_break} agents of your floor are already on break "
            f"(limit {policy.floor_cap}); try again when one of them is back.",
        )
    return ALLOWED


def check_agent_sign_in(agent_no: str, certified: bool, already_signed_in: bool) -> Decision:
    """Refuse an uncertified agent, or a second sign-in of the same 工号 (SEAT-06)."""
    if not certified:
        return Refused(
            RefusalCode.AGENT_NOT_CERTIFIED,
            f"Agent {agent_no} is not certified yet; a department manager must certify "
            "the agent before the first sign-in.",
        )
    if already_signed_in:
        return Refused(
            RefusalCode.ALREADY_SIGNED_IN,
            f"Agent {agent_no} is already signed in on another seat; sign out there first.",
        )
    return ALLOWED
