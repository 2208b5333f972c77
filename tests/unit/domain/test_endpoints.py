"""Endpoint names and the interfaces derived from them (ADR 0009)."""

from __future__ import annotations

import pytest

from ccbridge.domain.endpoints import (
    InvalidEndpointError,
    Technology,
    check_context,
    interface_for,
    parse_interface,
)

CTX = "ccbridge-agents"


def test_interfaces_are_derived_from_the_name() -> None:
    assert interface_for(Technology.PJSIP, "1001", CTX) == "PJSIP/1001"
    assert interface_for(Technology.LOCAL, "1001", CTX) == "Local/1001@ccbridge-agents"
    assert interface_for(Technology.PJSIP, "hotdesk-7.a_b", CTX) == "PJSIP/hotdesk-7.a_b"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a/b",
        "a&b",
        "a@b",
        "a,b",
        "a b",
        "1001\r\n",
        "1001\n",
        "1001\x00",
        "x" * 65,
        "-1001",
        "_X.",
        "１００１",  # full-width digits
    ],
)
def test_an_unsafe_name_is_refused(name: str) -> None:
    for tech in Technology:
        with pytest.raises(InvalidEndpointError) as info:
            interface_for(tech, name, CTX)
        assert info.value.field == "name"


def test_the_longest_name_is_accepted() -> None:
    assert interface_for(Technology.PJSIP, "x" * 64, CTX) == "PJSIP/" + "x" * 64


@pytest.mark.parametrize("context", ["", "a@b", "ctx/x", "ctx\r\n", "x" * 81])
def test_an_unsafe_context_is_refused(context: str) -> None:
    with pytest.raises(InvalidEndpointError):
        check_context(context)


@pytest.mark.parametrize(
    ("interface", "parsed"),
    [
        ("PJSIP/1001", (Technology.PJSIP, "1001")),
        ("Local/1001@ccbridge-agents", (Technology.LOCAL, "1001")),
        ("Local/00881234567@outbound-trunk", None),  # only the agents context
        ("Local/1001@ccbridge-agents/n", None),
        ("Local/1001", None),
        ("SIP/1001", None),
        ("IAX2/1001", None),
        ("PJSIP/1001&PJSIP/2101", None),
        ("PJSIP/", None),
        ("1001", None),
    ],
)
def test_parse_interface_accepts_only_what_an_endpoint_could_be(
    interface: str, parsed: tuple[Technology, str] | None
) -> None:
    assert parse_interface(interface, CTX) == parsed
