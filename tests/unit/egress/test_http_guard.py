"""The httpx egress adapter against a real HTTP server on 127.0.0.1: refused unless
allow-listed, connects to exactly the checked address, survives DNS rebinding."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ccbridge.crm.http_lookup import HttpCrmLookup
from ccbridge.domain.egress import EgressRefusedError, IpNetwork, parse_networks
from ccbridge.egress.failures import failure_of
from ccbridge.egress.http import guarded_client
from ccbridge.webhook_http.sender import HttpWebhookSender

PUBLIC = "93.184.216.34"


class Local:
    """A tiny HTTP server: counts requests and remembers their Host headers."""

    def __init__(self) -> None:
        hosts: list[str] = []
        self.hosts = hosts

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                hosts.append(self.headers.get("host", ""))
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                body = b'{"tier": "vip"}'
                status = 503 if self.path.startswith("/fail") else 200
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local() -> Iterator[Local]:
    server = Local()
    yield server
    server.close()


class Rebinding:
    """A resolver stub: a public address on the first look-up, 127.0.0.1 afterwards."""

    def __init__(self, first: str = PUBLIC) -> None:
        self.first = first
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return [self.first] if self.calls == 1 else ["127.0.0.1"]


def _loopback() -> tuple[IpNetwork, ...]:
    return parse_networks(["127.0.0.1/32"])


async def test_loopback_is_refused_before_any_byte_is_sent(local: Local) -> None:
    async with guarded_client((), timeout=5) as client:
        with pytest.raises((httpx.HTTPError, EgressRefusedError)) as err:
            await client.get(f"http://127.0.0.1:{local.port}/x")
    assert failure_of(err.value) == "refused_address"
    assert local.hosts == []


async def test_an_allow_listed_loopback_is_reached(local: Local) -> None:
    async with guarded_client(_loopback(), timeout=5) as client:
        resp = await client.get(f"http://127.0.0.1:{local.port}/x")
    assert resp.status_code == 200
    assert local.hosts == [f"127.0.0.1:{local.port}"]


async def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(
    local: Local,
) -> None:
    looked_up: list[str] = []

    def dns(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    async with guarded_client(_loopback(), timeout=5, resolver=dns) as client:
        resp = await client.get(f"http://crm.example:{local.port}/x")
    assert resp.status_code == 200
    assert looked_up == ["crm.example"]  # one look-up per connection, none by the socket layer
    assert local.hosts == [f"crm.example:{local.port}"]


async def test_dns_rebinding_between_check_and_connect_is_refused(local: Local) -> None:
    dns = Rebinding()
    sender = HttpWebhookSender(resolver=dns)
    try:
        await sender.check_target(f"http://hooks.example:{local.port}/h", ())  # public: passes
        result = await sender.send(f"http://hooks.example:{local.port}/h", b"{}", {}, ())
    finally:
        await sender.close()
    assert dns.calls == 2  # the connect-time look-up is the one checked and used
    assert not result.ok
    assert result.error == "refused_address"
    assert local.hosts == []


async def test_a_name_answering_public_and_private_addresses_is_refused(local: Local) -> None:
    def dns(host: str, port: int) -> list[str]:
        return [PUBLIC, "127.0.0.1"]

    async with guarded_client((), timeout=5, resolver=dns) as client:
        with pytest.raises((httpx.HTTPError, EgressRefusedError)) as err:
            await client.get(f"http://mixed.example:{local.port}/x")
    assert failure_of(err.value) == "refused_address"
    assert local.hosts == []


async def test_webhook_errors_are_one_word_without_internal_detail(local: Local) -> None:
    sender = HttpWebhookSender(timeout=5)
    try:
        refused = await sender.send(f"http://127.0.0.1:{local.port}/h", b"{}", {}, ())
        closed_port = await sender.send("http://127.0.0.1:9/h", b"{}", {}, ["127.0.0.1/32"])
        status = await sender.send(
            f"http://127.0.0.1:{local.port}/fail", b"{}", {}, ["127.0.0.1/32"]
        )
    finally:
        await sender.close()
    assert refused.error == "refused_address"
    assert closed_port.error == "connect_failed"  # not "Connection refused [Errno 111] ..."
    assert (status.status, status.error) == (503, "http_503")  # not the receiver's body


async def test_webhook_check_target_refuses_metadata_and_unresolvable_alike() -> None:
    sender = HttpWebhookSender(resolver=lambda host, port: ["169.254.169.254"])
    with pytest.raises(EgressRefusedError) as metadata:
        await sender.check_target("https://meta.example/h", ())

    def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(EgressRefusedError) as missing:
        await HttpWebhookSender(resolver=nxdomain).check_target("https://x.example/h", ())
    assert str(metadata.value) == str(missing.value)


async def test_crm_lookup_refuses_loopback_unless_the_tenant_allow_lists_it(local: Local) -> None:
    async def nothing(tenant_id: str) -> tuple[IpNetwork, ...]:
        return ()

    async def loopback(tenant_id: str) -> tuple[IpNetwork, ...]:
        return _loopback() if tenant_id == "t1" else ()

    url = f"http://127.0.0.1:{local.port}/c"
    assert not (await HttpCrmLookup(allow_for=nothing).lookup("t1", url, {}, 2000)).ok
    assert not (await HttpCrmLookup(allow_for=loopback).lookup("t2", url, {}, 2000)).ok
    assert local.hosts == []
    answer = await HttpCrmLookup(allow_for=loopback).lookup("t1", url, {}, 2000)
    assert answer.ok
    assert dict(answer.fields) == {"tier": "vip"}


async def test_crm_lookup_survives_dns_rebinding(local: Local) -> None:
    async def nothing(tenant_id: str) -> tuple[IpNetwork, ...]:
        return ()

    dns = Rebinding()
    crm = HttpCrmLookup(allow_for=nothing, resolver=dns)
    answer = await crm.lookup("t1", f"http://crm.example:{local.port}/c", {}, 2000)
    assert not answer.ok
    assert dns.calls == 2
    assert local.hosts == []
