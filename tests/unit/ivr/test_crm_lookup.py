"""The CRM lookup adapter: SSRF guard, timeout, size cap, CR/LF/NUL rejection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import httpx

from ccbridge.crm.http_lookup import HttpCrmLookup
from ccbridge.domain.egress import IpNetwork, parse_networks


def _allow(*networks: str) -> Callable[[str], Awaitable[Sequence[IpNetwork]]]:
    async def allow_for(tenant_id: str) -> Sequence[IpNetwork]:
        assert tenant_id == "t1"
        return parse_networks(networks)

    return allow_for


def _public_dns(host: str, port: int) -> list[str]:
    return ["127.0.0.1"] if host == "localhost" else ["93.184.216.34"]


def _transport(body: bytes, status: int = 200, delay: float = 0.0) -> httpx.MockTransport:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(delay)
        assert request.url.params["caller"] == "138"
        return httpx.Response(status, content=body)

    return httpx.MockTransport(handler)


async def test_loopback_and_private_hosts_are_refused_unless_allowed() -> None:
    crm = HttpCrmLookup(transport=_transport(b'{"tier": "vip"}'))  # real resolver: localhost
    for url in (
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://10.0.0.5/x",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
    ):
        assert (await crm.lookup("t1", url, {"caller": "138"}, 500)).ok is False, url
    allowed = HttpCrmLookup(
        allow_for=_allow("127.0.0.1"),
        transport=_transport(b'{"tier": "vip", "n": 3, "x": [1]}'),
    )
    answer = await allowed.lookup("t1", "http://127.0.0.1/x", {"caller": "138"}, 500)
    assert answer.ok
    assert dict(answer.fields) == {"tier": "vip", "n": "3"}


async def test_line_breaks_timeouts_and_errors_fail_the_lookup() -> None:
    def crm(body: bytes, status: int = 200, delay: float = 0.0) -> HttpCrmLookup:
        return HttpCrmLookup(resolver=_public_dns, transport=_transport(body, status, delay))

    url = "http://crm.local/c"
    assert (
        await crm(b'{"tier": "vip\\r\\nHANGUP"}').lookup("t1", url, {"caller": "138"}, 500)
    ).ok is False
    assert (await crm(b'{"t": "a\\u0000"}').lookup("t1", url, {"caller": "138"}, 500)).ok is False
    assert (await crm(b"{}", delay=0.5).lookup("t1", url, {"caller": "138"}, 100)).ok is False
    assert (await crm(b"{}", status=500).lookup("t1", url, {"caller": "138"}, 500)).ok is False
    assert (await crm(b"[1]").lookup("t1", url, {"caller": "138"}, 500)).ok is False
    assert (
        await crm(b'{"a": "' + b"x" * 70000 + b'"}').lookup("t1", url, {"caller": "138"}, 500)
    ).ok is False


async def test_an_unreadable_allow_list_fails_closed_without_failing_the_call() -> None:
    async def broken(tenant_id: str) -> Sequence[IpNetwork]:
        raise OSError("database away")

    public = HttpCrmLookup(
        allow_for=broken, resolver=_public_dns, transport=_transport(b'{"tier": "vip"}')
    )
    assert (await public.lookup("t1", "https://crm.example/c", {"caller": "138"}, 500)).ok
    private = HttpCrmLookup(allow_for=broken, transport=_transport(b'{"tier": "vip"}'))
    assert not (await private.lookup("t1", "http://127.0.0.1/c", {"caller": "138"}, 500)).ok
