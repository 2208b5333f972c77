"""Egress allow-lists for tests whose stand-in servers listen on 127.0.0.1."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from ccbridge.services.egress import EgressPolicy


class StaticAllowLists:
    """An ``AllowListSource`` from a dict (tenant → networks)."""

    def __init__(self, lists: dict[str, list[str]] | None = None) -> None:
        self.lists = dict(lists or {})

    async def allow_list(self, tenant: str) -> Sequence[str]:
        """The tenant's networks, empty when none."""
        return self.lists.get(tenant, [])


def loopback_egress() -> EgressPolicy:
    """Every tenant may reach 127.0.0.1 (the tests' FTP and HTTP servers)."""
    return EgressPolicy(StaticAllowLists(), ["127.0.0.1/32"])


PUBLIC_TEST_IP = "93.184.216.34"


def fake_dns(host: str, port: int) -> list[str]:
    """Names under ``.example`` are public unless they start with ``internal``; IPs are
    themselves; anything else does not resolve (no real DNS in tests)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [host.strip("[]")]
    if host.startswith("internal"):
        return ["10.0.0.5"]
    if host.endswith(".example") or host.endswith(".example.com"):
        return [PUBLIC_TEST_IP]
    raise OSError(f"{host} does not resolve")
