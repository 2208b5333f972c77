"""The one outbound-address policy: a table of addresses, allowed or refused with a reason."""

from __future__ import annotations

import pytest

from ccbridge.domain.egress import (
    EgressRefusedError,
    check_addresses,
    decide,
    parse_networks,
)

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link_local"),
    ("fe80::1", "link_local"),
    ("fe80::1%eth0", "link_local"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.254", "cgnat"),
    ("198.18.0.1", "benchmark"),
    ("198.19.255.1", "benchmark"),
    ("192.0.2.1", "documentation"),
    ("2001:db8::1", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("fc00::1", "unique_local"),
    ("fd12:3456::1", "unique_local"),
    ("fec0::1", "site_local"),
    ("::ffff:127.0.0.1", "embedded_loopback"),
    ("::ffff:169.254.169.254", "embedded_link_local"),
    ("::ffff:10.0.0.1", "embedded_private"),
    ("::127.0.0.1", "ipv4_compatible"),
    ("2002:7f00:1::1", "embedded_loopback"),  # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::1", "embedded_link_local"),  # 6to4 of 169.254.169.254
    ("64:ff9b::7f00:1", "embedded_loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a00:1", "embedded_private"),  # NAT64 of 10.0.0.1
    ("64:ff9b:1::a9fe:a9fe", "embedded_link_local"),  # local-use NAT64
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "embedded_loopback"),  # Teredo, client 127.0.0.1
    ("100::1", "reserved"),
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize(("address", "category"), REFUSED)
def test_non_global_addresses_are_refused_with_their_reason(address: str, category: str) -> None:
    decision = decide([address])
    assert not decision.allowed
    assert decision.category == category
    with pytest.raises(EgressRefusedError) as err:
        check_addresses([address])
    assert err.value.failure == "refused_address"
    assert address not in str(err.value)  # the message never echoes the address


@pytest.mark.parametrize("address", ALLOWED)
def test_global_unicast_passes(address: str) -> None:
    assert check_addresses([address]) == address


def test_every_resolved_address_must_pass_not_just_the_first() -> None:
    assert decide(["8.8.8.8", "127.0.0.1"]).category == "loopback"
    assert decide(["10.0.0.1", "8.8.8.8"]).category == "private"


def test_an_unresolved_host_and_a_non_ip_are_refused() -> None:
    assert decide([]).category == "unresolved"
    assert decide(["not-an-ip"]).category == "not_an_ip"


def test_an_allow_listed_network_opens_only_that_network() -> None:
    allow = parse_networks(["10.20.0.0/16", "127.0.0.1"])
    assert check_addresses(["10.20.3.4"], allow) == "10.20.3.4"
    assert check_addresses(["127.0.0.1"], allow) == "127.0.0.1"
    assert check_addresses(["::ffff:10.20.3.4"], allow) == "::ffff:10.20.3.4"
    assert decide(["10.21.0.1"], allow).category == "private"
    assert decide(["127.0.0.2"], allow).category == "loopback"
    assert decide(["::1"], allow).category == "loopback"


def test_a_bad_allow_list_entry_is_named() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        parse_networks(["10.0.0.0/8", "nonsense"])
