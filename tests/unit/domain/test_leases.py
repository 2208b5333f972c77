"""Seat leases: concurrency limit, capabilities per kind, notice periods for changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ccbridge.domain.agents.policy import Allowed, RefusalCode, Refused
from ccbridge.domain.leases.model import (
    CAPABILITIES,
    Capability,
    ChangeKind,
    LeaseChange,
    SeatKind,
    SeatLease,
    can_sign_in,
    check_capability,
    check_notice,
    earliest_effective_date,
    lease_on,
    validate_change,
)

# Friday 20 Nov 2026, 10:00 in Shanghai
FRIDAY = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
LEASE = SeatLease(
    tenant="acme",
    seats={SeatKind.INBOUND: 10, SeatKind.INBOUND_OUTBOUND: 2},
    valid_from=date(2026, 1, 1),
    valid_until=date(2026, 12, 31),
    monthly_price={SeatKind.INBOUND: Decimal("800"), SeatKind.INBOUND_OUTBOUND: Decimal("1200")},
)


def test_tenth_sign_in_allowed_eleventh_refused() -> None:
    assert can_sign_in({SeatKind.INBOUND: 9}, LEASE, SeatKind.INBOUND, FRIDAY) == Allowed()
    refused = can_sign_in({SeatKind.INBOUND: 10}, LEASE, SeatKind.INBOUND, FRIDAY)
    assert isinstance(refused, Refused)
    assert refused.code is RefusalCode.SEAT_LIMIT_REACHED
    assert refused.message == (
        "All 10 leased inbound seats of acme are in use; "
        "wait until an agent signs out, or lease more seats."
    )


def test_seat_kinds_are_counted_separately() -> None:
    active = {SeatKind.INBOUND: 10, SeatKind.INBOUND_OUTBOUND: 1}
    assert isinstance(can_sign_in(active, LEASE, SeatKind.INBOUND_OUTBOUND), Allowed)
    active[SeatKind.INBOUND_OUTBOUND] = 2
    assert isinstance(can_sign_in(active, LEASE, SeatKind.INBOUND_OUTBOUND), Refused)


def test_no_or_expired_lease_refuses() -> None:
    refused = can_sign_in({}, None, SeatKind.INBOUND)
    assert isinstance(refused, Refused)
    assert refused.code is RefusalCode.LEASE_NOT_ACTIVE
    next_year = datetime(2027, 1, 2, tzinfo=UTC)
    refused = can_sign_in({}, LEASE, SeatKind.INBOUND, next_year)
    assert isinstance(refused, Refused)
    assert refused.code is RefusalCode.LEASE_NOT_ACTIVE


def test_window_and_prices() -> None:
    assert LEASE.is_active_on(date(2026, 12, 31))
    assert not LEASE.is_active_on(date(2025, 12, 31))
    assert LEASE.price_of(SeatKind.INBOUND_OUTBOUND) == Decimal("1200")
    assert LEASE.seats_of(SeatKind.INBOUND) == 10
    with pytest.raises(ValueError, match="before"):
        SeatLease("x", {}, date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(ValueError, match=">= 0"):
        SeatLease("x", {SeatKind.INBOUND: -1}, date(2026, 1, 1))


@pytest.mark.parametrize(
    "capability",
    [
        Capability.OUTBOUND_CALL,
        Capability.TRANSFER_INCOMING,
        Capability.THREE_WAY_CALL,
        Capability.TRANSFER_OUT,
    ],
)
def test_inbound_seat_refuses_outbound_capabilities(capability: Capability) -> None:
    refused = check_capability(SeatKind.INBOUND, capability)
    assert isinstance(refused, Refused)
    assert refused.code is RefusalCode.CAPABILITY_NOT_LEASED
    assert "needs an inbound+outbound seat" in refused.message
    assert check_capability(SeatKind.INBOUND_OUTBOUND, capability) == Allowed()


def test_inbound_capabilities_are_a_subset() -> None:
    inbound = CAPABILITIES[SeatKind.INBOUND]
    assert inbound < CAPABILITIES[SeatKind.INBOUND_OUTBOUND]
    assert Capability.HAND_BACK_TO_IVR in inbound
    assert Capability.HOLD in inbound
    assert all(check_capability(SeatKind.INBOUND, c) == Allowed() for c in inbound)


def _change(kind: ChangeKind, effective: date, override: str | None = None) -> LeaseChange:
    seats = {SeatKind.INBOUND: 12} if kind is ChangeKind.SEAT_COUNT else None
    return LeaseChange("acme", kind, FRIDAY, effective, seats, override)


def test_seven_working_days_over_a_weekend_and_a_holiday() -> None:
    # Fri 20 Nov + 7 WD = Tue 1 Dec; with Mon 30 Nov a holiday it is Wed 2 Dec.
    assert earliest_effective_date(ChangeKind.SEAT_COUNT, FRIDAY) == date(2026, 12, 1)
    holidays = {date(2026, 11, 30)}
    assert earliest_effective_date(ChangeKind.SEAT_COUNT, FRIDAY, holidays) == date(2026, 12, 2)
    too_early = validate_change(_change(ChangeKind.SEAT_COUNT, date(2026, 12, 1)), holidays)
    assert isinstance(too_early, Refused)
    assert too_early.code is RefusalCode.NOTICE_TOO_SHORT
    assert too_early.message == (
        "A seat count change needs 7 working days' notice; "
        "the earliest effective date is 2026-12-02."
    )
    assert validate_change(_change(ChangeKind.SEAT_COUNT, date(2026, 12, 2)), holidays) == Allowed()


def test_skill_group_change_needs_one_working_day() -> None:
    assert earliest_effective_date(ChangeKind.SKILL_GROUP, FRIDAY) == date(2026, 11, 23)
    refused = validate_change(_change(ChangeKind.SKILL_GROUP, date(2026, 11, 21)))
    assert isinstance(refused, Refused)
    assert "1 working day's notice" in refused.message
    assert validate_change(_change(ChangeKind.SKILL_GROUP, date(2026, 11, 23))) == Allowed()


def test_platform_admin_override_waives_notice_but_not_the_past() -> None:
    waived = validate_change(_change(ChangeKind.SEAT_KIND, date(2026, 11, 20), "root"))
    assert isinstance(waived, Allowed)
    assert "root" in waived.note
    past = validate_change(_change(ChangeKind.SEAT_KIND, date(2026, 11, 19), "root"))
    assert isinstance(past, Refused)
    assert past.code is RefusalCode.EFFECTIVE_DATE_IN_PAST


def test_request_date_is_tenant_local() -> None:
    # 17:00 UTC Friday is already Saturday 01:00 in Shanghai: the count starts from Saturday.
    late = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
    assert earliest_effective_date(ChangeKind.SKILL_GROUP, late) == date(2026, 11, 23)
    assert earliest_effective_date(ChangeKind.SEAT_COUNT, late) == date(2026, 12, 1)


def test_lease_on_applies_seat_changes_from_their_effective_date() -> None:
    change = _change(ChangeKind.SEAT_COUNT, date(2026, 12, 1))
    assert lease_on(LEASE, [change], date(2026, 11, 30)).seats_of(SeatKind.INBOUND) == 10
    after = lease_on(LEASE, [change], date(2026, 12, 1))
    assert after.seats_of(SeatKind.INBOUND) == 12
    assert after.seats_of(SeatKind.INBOUND_OUTBOUND) == 0
    assert after.valid_until == LEASE.valid_until


def test_check_notice_judges_against_an_earliest_date_in_the_tenants_zone() -> None:
    # 03:30 UTC on Fri 4 Dec is Thu 3 Dec 22:30 in New York: today there is the 3rd.
    at = datetime(2026, 12, 4, 3, 30, tzinfo=UTC)
    change = LeaseChange("acme", ChangeKind.SKILL_GROUP, at, date(2026, 12, 3), None, "root")
    assert isinstance(check_notice(change, date(2026, 12, 4), "America/New_York"), Allowed)
    past = check_notice(change, date(2026, 12, 7), "Asia/Shanghai")  # Shanghai is on the 4th
    assert isinstance(past, Refused)
    assert past.code is RefusalCode.EFFECTIVE_DATE_IN_PAST
