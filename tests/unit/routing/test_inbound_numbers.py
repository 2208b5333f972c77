"""Which strings are inbound numbers, and what kind each is."""

from __future__ import annotations

import pytest

from ccbridge.domain.inbound_numbers import (
    InvalidNumberError,
    NumberKind,
    NumberTarget,
    TargetType,
    classify_number,
)


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("4008001234", NumberKind.TOLL_FREE_400),
        ("8008101234", NumberKind.TOLL_FREE_800),
        ("95555", NumberKind.SERVICE_95),
        ("95105888", NumberKind.SERVICE_95),
        ("96110", NumberKind.SERVICE_96),
        ("02161234567", NumberKind.DID),
        ("+862161234567", NumberKind.DID),
        ("61234567", NumberKind.DID),
        ("110", NumberKind.DID),
    ],
)
def test_numbers_are_classified(number: str, kind: NumberKind) -> None:
    assert classify_number(number) == kind


@pytest.mark.parametrize(
    "number",
    [
        "",
        "40080012",  # a 400 number is 10 digits
        "400800123456",
        "9555",  # 95xxx is 5-8 digits
        "12",
        "+0862161234567",
        "+12",
        "4008001234\r\n",
        "100&DAHDI/g1",
        "1" * 17,
        "４００８００１２３４",  # full-width digits are not digits to Asterisk
    ],
)
def test_anything_else_is_refused(number: str) -> None:
    with pytest.raises(InvalidNumberError) as caught:
        classify_number(number)
    assert caught.value.field == "number"


def test_targets_are_plain_ids() -> None:
    assert NumberTarget(TargetType.GROUP, "sales").id == "sales"
    with pytest.raises(InvalidNumberError) as caught:
        NumberTarget(TargetType.GROUP, "sales,t")
    assert caught.value.field == "target.id"
    with pytest.raises(InvalidNumberError):
        NumberTarget(TargetType.FLOW, "")
