"""Dial policies and outbound rights: which numbers a tenant may transfer a call out to."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from ccbridge.domain.agents.policy import RefusalCode
from ccbridge.domain.calls import numbers
from ccbridge.domain.dialing import NO_OUTBOUND, DialPolicy, OutboundRights
from ccbridge.domain.leases.model import SeatKind

DEFAULT = DialPolicy()


@pytest.mark.parametrize(
    "number",
    ["13912345678", "01062345678", "02161234567", "4008001234", "8008001234", "110"],
)
def test_default_policy_allows_national_numbers(number: str) -> None:
    assert DEFAULT.refusal(number) is None


@pytest.mark.parametrize(
    ("number", "prefix"),
    [
        ("00442079460000", "'00'"),  # international
        ("+442079460000", "'+'"),  # international, E.164 form
        ("16001234567", "'160'"),  # premium-rate information service
        ("16812345", "'168'"),
    ],
)
def test_default_policy_denies_international_and_premium(number: str, prefix: str) -> None:
    refused = DEFAULT.refusal(number)
    assert refused is not None
    assert refused.code is RefusalCode.NUMBER_NOT_ALLOWED
    assert prefix in refused.message


def test_longest_prefix_decides_and_a_tie_denies() -> None:
    policy = DialPolicy(allow=("0", "0044"), deny=("00", "139"))
    assert policy.refusal("00442079460000") is None  # 0044 is longer than 00
    assert policy.refusal("00331234567") is not None  # only 00 matches beyond 0
    assert policy.refusal("13912345678") is not None  # denied; no allow matches at all
    tie = DialPolicy(allow=("139",), deny=("139",))
    assert tie.refusal("13912345678") is not None


def test_a_number_matching_no_prefix_is_refused() -> None:
    refused = DialPolicy(allow=("0",), deny=()).refusal("13912345678")
    assert refused is not None
    assert "matches no prefix" in refused.message


@pytest.mark.parametrize("bad", ["", "9x", "++1", "1234567890123456"])
def test_malformed_prefixes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a dial prefix"):
        DialPolicy(allow=(bad,))


def test_only_inbound_outbound_seats_may_transfer_out() -> None:
    inbound_only = OutboundRights(DEFAULT, {SeatKind.INBOUND: 10})
    refused = inbound_only.refusal("13912345678")
    assert refused is not None
    assert refused.code is RefusalCode.CAPABILITY_NOT_LEASED
    assert inbound_only.seat_refusal() is not None
    zero = OutboundRights(DEFAULT, {SeatKind.INBOUND: 10, SeatKind.INBOUND_OUTBOUND: 0})
    assert zero.seat_refusal() is not None
    mixed = OutboundRights(DEFAULT, {SeatKind.INBOUND: 10, SeatKind.INBOUND_OUTBOUND: 1})
    assert mixed.seat_refusal() is None
    assert mixed.refusal("13912345678") is None
    denied = mixed.refusal("0044123456")
    assert denied is not None
    assert denied.code is RefusalCode.NUMBER_NOT_ALLOWED
    assert NO_OUTBOUND.seat_refusal() is not None


# ---------------------------------------------------------------- agent-dialled calls (issue 15)

from datetime import time as _time  # noqa: E402

from ccbridge.domain.calls.numbers import dialled_number  # noqa: E402
from ccbridge.domain.dialing import BusinessHours, OutboundLimits, OutboundUsage  # noqa: E402

NOON = _time(12, 0)


def _outbound(policy: DialPolicy, raw: str, usage: OutboundUsage | None = None) -> object:
    refused = policy.outbound_refusal(
        dialled_number(raw, policy.region), usage or OutboundUsage(), local=NOON, working_day=True
    )
    return None if refused is None else refused.code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("13800138000", None),
        ("020-8765-4321", None),
        ("+8613800138000", None),
        ("4008001234", None),
        ("+14155550123", RefusalCode.INTERNATIONAL_DENIED),
        ("0014155550123", RefusalCode.INTERNATIONAL_DENIED),
        ("95588", RefusalCode.NUMBER_INVALID),
        ("16012345678", RefusalCode.NUMBER_INVALID),
        ("not a number", RefusalCode.NUMBER_INVALID),
    ],
)
def test_outbound_numbers_under_the_default_policy(raw: str, code: RefusalCode | None) -> None:
    assert _outbound(DialPolicy(), raw) == code


def test_international_allowed_still_needs_an_allowed_prefix() -> None:
    open_world = DialPolicy(
        allow=("02", "1", "0044"), deny=(), limits=OutboundLimits(deny_international=False)
    )
    assert _outbound(open_world, "+442079460000") is None
    assert _outbound(open_world, "+14155550123") is RefusalCode.NUMBER_NOT_ALLOWED


def test_caps_name_the_seat_before_the_tenant() -> None:
    policy = DialPolicy(
        limits=OutboundLimits(
            per_seat_per_hour=3,
            per_tenant_per_hour=10,
            concurrent_per_seat=1,
            concurrent_per_tenant=5,
        )
    )
    ok = "13800138000"
    assert _outbound(policy, ok, OutboundUsage(2, 9, 0, 4)) is None
    assert _outbound(policy, ok, OutboundUsage(3, 9, 0, 0)) is RefusalCode.SEAT_RATE_LIMITED
    assert _outbound(policy, ok, OutboundUsage(0, 10, 0, 0)) is RefusalCode.TENANT_RATE_LIMITED
    assert _outbound(policy, ok, OutboundUsage(0, 0, 1, 0)) is RefusalCode.SEAT_CONCURRENCY_LIMITED
    assert (
        _outbound(policy, ok, OutboundUsage(0, 0, 0, 5)) is RefusalCode.TENANT_CONCURRENCY_LIMITED
    )


def test_business_hours_window_and_working_days() -> None:
    hours = BusinessHours(_time(9), _time(18))
    assert hours.refusal(_time(9), True) is None
    assert hours.refusal(_time(17, 59), True) is None
    assert hours.refusal(_time(18), True).code is RefusalCode.OUTSIDE_BUSINESS_HOURS  # type: ignore[union-attr]
    assert hours.refusal(NOON, False).code is RefusalCode.OUTSIDE_BUSINESS_HOURS  # type: ignore[union-attr]
    assert BusinessHours(_time(9), _time(18), False).refusal(NOON, False) is None
    with pytest.raises(ValueError, match="start before"):
        BusinessHours(_time(18), _time(9))


def test_plain_chinese_mobile_digits_parse_as_libphonenumber_parses_them() -> None:
    rng = random.Random(16)
    samples = [f"1{p:02d}{rng.randrange(10**8):08d}" for p in range(30, 100) for _ in range(40)]
    samples += ["13800138000", "17012345678", "17812345678", "19912345678", "14012345678"]
    for raw in samples:
        parsed = phonenumbers.parse(raw, "CN")
        slow = (
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(parsed)
            else None
        )
        numbers.to_e164.cache_clear()
        assert numbers.to_e164(raw) == slow, raw
        assert numbers._parse(raw, "CN") == (parsed if slow else None), raw
