"""Dial policies and outbound rights: which numbers a tenant may transfer a call out to."""

from __future__ import annotations

import pytest

from ccbridge.domain.agents.policy import RefusalCode
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
