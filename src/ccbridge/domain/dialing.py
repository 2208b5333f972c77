"""Outbound dialling rights of a tenant: its seat kinds and its dial policy (pure).

Only inbound+outbound seats may dial out or transfer out (SEAT-01/02); where they may dial is the
tenant's dial policy (SEAT-19: no personal calls; SEC-01: no resold telecom services). A policy
is two prefix lists; the longest matching prefix decides, and a tie goes to ``deny``. A number
that matches no prefix is refused: the allow list is an allow list.

An agent's outbound call (click-to-call, transfer out, a 3-way party) is also checked against the
policy's toll-fraud limits (:class:`OutboundLimits`): international and premium-rate numbers,
calls per hour and at once per seat and per tenant, and a business-hours window on working days.
Each refusal names its rule (a :class:`RefusalCode`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time

from ccbridge.domain.agents.policy import RefusalCode, Refused
from ccbridge.domain.calls.numbers import DEFAULT_REGION, DialledNumber, NumberKind, check_region
from ccbridge.domain.leases.model import CAPABILITIES, Capability, SeatKind

PREFIX_RE = re.compile(r"^\+?[0-9]{1,15}$|^\+$")
"""A dial prefix: digits, optionally after ``+`` (``+`` alone matches every E.164 number)."""
MAX_PREFIXES = 100

DEFAULT_ALLOW: tuple[str, ...] = ("0", "1", "400", "800")
"""National numbers: fixed lines with the trunk 0, mobiles and short codes (1…), 400/800."""
DEFAULT_DENY: tuple[str, ...] = ("00", "+", "160", "168")
"""International (``00`` and ``+``) and premium-rate information services (160…, 168…)."""


MAX_CAP = 100_000
CALLER_ID_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """The local-time window (tenant zone) in which agents may dial out; ``start < end``."""

    start: time
    end: time
    working_days_only: bool = True
    """Also refuse on weekends and public holidays (the tenant's working-day calendar)."""

    def __post_init__(self) -> None:
        """Refuse an empty or inverted window."""
        if not self.start < self.end:
            raise ValueError("business hours start before they end")

    def refusal(self, local: time, working_day: bool) -> Refused | None:
        """Say why dialling at local time *local* on that day is refused, or ``None``."""
        if self.working_days_only and not working_day:
            return Refused(
                RefusalCode.OUTSIDE_BUSINESS_HOURS,
                "outbound calls are only allowed on working days",
            )
        if not self.start <= local < self.end:
            return Refused(
                RefusalCode.OUTSIDE_BUSINESS_HOURS,
                f"outbound calls are only allowed {self.start:%H:%M}-{self.end:%H:%M} tenant time",
            )
        return None


@dataclass(frozen=True, slots=True)
class OutboundLimits:
    """Toll-fraud limits of a tenant's agent-dialled calls; ``None`` means no cap."""

    deny_international: bool = True
    deny_premium_rate: bool = True
    per_seat_per_hour: int | None = 60
    per_tenant_per_hour: int | None = None
    concurrent_per_seat: int | None = 1
    concurrent_per_tenant: int | None = None
    business_hours: BusinessHours | None = None

    def __post_init__(self) -> None:
        """Refuse a cap below 1 or absurdly high."""
        for cap in (
            self.per_seat_per_hour,
            self.per_tenant_per_hour,
            self.concurrent_per_seat,
            self.concurrent_per_tenant,
        ):
            if cap is not None and not 1 <= cap <= MAX_CAP:
                raise ValueError(f"a cap is 1..{MAX_CAP} or null")


@dataclass(frozen=True, slots=True)
class OutboundUsage:
    """What a seat and its tenant have dialled: in the last hour, and still up now."""

    seat_last_hour: int = 0
    tenant_last_hour: int = 0
    seat_active: int = 0
    tenant_active: int = 0


@dataclass(frozen=True, slots=True)
class DialPolicy:
    """Where a tenant's calls may be dialled out to: allowed and denied number prefixes, the
    region numbers are read in, and the toll-fraud limits of agent-dialled calls."""

    allow: tuple[str, ...] = DEFAULT_ALLOW
    deny: tuple[str, ...] = DEFAULT_DENY
    region: str = DEFAULT_REGION
    limits: OutboundLimits = field(default_factory=OutboundLimits)
    caller_id: str | None = None
    """The number the tenant's agent-dialled calls present (E.164); none: no click-to-call."""

    def __post_init__(self) -> None:
        """Refuse a malformed prefix or an oversized list (the API checks first, with paths)."""
        check_region(self.region)
        if self.caller_id is not None and not CALLER_ID_RE.fullmatch(self.caller_id):
            raise ValueError(f"not an E.164 caller ID: {self.caller_id!r}")
        for prefixes in (self.allow, self.deny):
            if len(prefixes) > MAX_PREFIXES:
                raise ValueError(f"at most {MAX_PREFIXES} prefixes per list")
            bad = [p for p in prefixes if not PREFIX_RE.fullmatch(p)]
            if bad:
                raise ValueError(f"not a dial prefix: {bad[0]!r}")

    def refusal(self, number: str) -> Refused | None:
        """Say why ``number`` may not be dialled under this policy, or ``None`` when it may."""
        allowed = _longest(self.allow, number)
        denied = _longest(self.deny, number)
        if denied is not None and (allowed is None or len(denied) >= len(allowed)):
            return Refused(
                RefusalCode.NUMBER_NOT_ALLOWED,
                f"{number} starts with {denied!r}, which the tenant's dial policy denies",
            )
        if allowed is None:
            return Refused(
                RefusalCode.NUMBER_NOT_ALLOWED,
                f"{number} matches no prefix the tenant's dial policy allows",
            )
        return None

    def outbound_refusal(
        self,
        number: DialledNumber | None,
        usage: OutboundUsage,
        *,
        local: time,
        working_day: bool,
    ) -> Refused | None:
        """Say which rule refuses an agent-dialled call to *number* now, or ``None``.

        Checked in this order: the number (valid, not international, not premium rate, the
        prefix lists on the digits the trunk dials), business hours, then rate and concurrency
        caps (seat before tenant).
        """
        limits = self.limits
        if number is None:
            return Refused(
                RefusalCode.NUMBER_INVALID, f"not a valid phone number in region {self.region}"
            )
        if limits.deny_international and number.international:
            return Refused(
                RefusalCode.INTERNATIONAL_DENIED,
                f"{number.e164} is international, which the tenant's dial policy denies",
            )
        if limits.deny_premium_rate and number.kind is NumberKind.PREMIUM_RATE:
            return Refused(
                RefusalCode.PREMIUM_RATE_DENIED,
                f"{number.e164} is a premium-rate number, which the tenant's dial policy denies",
            )
        refused = self.refusal(number.national)
        if refused is not None:
            return refused
        if limits.business_hours is not None:
            refused = limits.business_hours.refusal(local, working_day)
            if refused is not None:
                return refused
        caps = (
            (
                limits.per_seat_per_hour,
                usage.seat_last_hour,
                RefusalCode.SEAT_RATE_LIMITED,
                "calls per hour on this seat",
            ),
            (
                limits.per_tenant_per_hour,
                usage.tenant_last_hour,
                RefusalCode.TENANT_RATE_LIMITED,
                "calls per hour for the tenant",
            ),
            (
                limits.concurrent_per_seat,
                usage.seat_active,
                RefusalCode.SEAT_CONCURRENCY_LIMITED,
                "outbound calls at once on this seat",
            ),
            (
                limits.concurrent_per_tenant,
                usage.tenant_active,
                RefusalCode.TENANT_CONCURRENCY_LIMITED,
                "outbound calls at once for the tenant",
            ),
        )
        for cap, used, code, what in caps:
            if cap is not None and used >= cap:
                return Refused(code, f"the dial policy allows {cap} {what}; {used} already")
        return None


def _longest(prefixes: tuple[str, ...], number: str) -> str | None:
    matching = [p for p in prefixes if number.startswith(p)]
    return max(matching, key=len) if matching else None


@dataclass(frozen=True, slots=True)
class OutboundRights:
    """What a tenant may dial now: its dial policy and the seats it leases by kind."""

    policy: DialPolicy
    seats: Mapping[SeatKind, int]

    def seat_refusal(self) -> Refused | None:
        """Refuse any transfer out when no leased seat kind includes it (inbound-only tenant)."""
        if any(n > 0 and Capability.TRANSFER_OUT in CAPABILITIES[k] for k, n in self.seats.items()):
            return None
        return Refused(
            RefusalCode.CAPABILITY_NOT_LEASED,
            "transfer to an external number needs inbound+outbound seats; "
            "the tenant's lease in force has none",
        )

    def refusal(self, number: str) -> Refused | None:
        """Say why the tenant may not transfer a call out to ``number`` now, or ``None``."""
        return self.seat_refusal() or self.policy.refusal(number)


NO_OUTBOUND = OutboundRights(DialPolicy(), {})
"""A tenant without a lease in force: nothing may be dialled out."""
