"""The inbound FastAGI route, driven over TCP by the fake Asterisk's AGI client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ccbridge.asterisk.agi.server import AgiRouter, AgiServerConfig, FastAgiServer
from ccbridge.asterisk.inbound_route import SCRIPT, InboundRoute, InboundRouteHandler
from ccbridge.domain.access import TenantStatus
from ccbridge.services.tenant_status import TenantStatusCache
from ccbridge.testing.fake_agi import AgiCall, FakeAgiClient

ROUTES = {"4008001234": InboundRoute("t1", "t1-sales")}


async def _server(handler: InboundRouteHandler) -> FastAgiServer:
    router = AgiRouter()
    router.add_route(SCRIPT, handler)
    server = FastAgiServer(AgiServerConfig(port=0), router)
    await server.start()
    return server


@pytest.fixture
async def routed() -> AsyncIterator[tuple[FastAgiServer, InboundRouteHandler]]:
    handler = InboundRouteHandler(ROUTES, fallback=None)
    server = await _server(handler)
    yield server, handler
    await server.stop()


async def _call(server: FastAgiServer, dnid: str) -> dict[str, str]:
    url = f"agi://127.0.0.1:{server.port}/{SCRIPT}"
    result = await FakeAgiClient(url, AgiCall(dnid=dnid, extension=dnid)).run()
    return result.variables_set if not result.hung_up else {"hung_up": "yes"}


async def test_known_did_sets_tenant_did_and_queue(
    routed: tuple[FastAgiServer, InboundRouteHandler],
) -> None:
    server, _ = routed
    assert await _call(server, "4008001234") == {
        "CCB_TENANT": "t1",
        "CCB_DID": "4008001234",
        "CCB_QUEUE": "t1-sales",
    }


async def test_unknown_did_without_fallback_hangs_up_and_counts(
    routed: tuple[FastAgiServer, InboundRouteHandler],
) -> None:
    server, handler = routed
    assert await _call(server, "4009999999") == {"hung_up": "yes"}
    assert handler.unrouted == 1


async def test_hostile_dnid_never_reaches_a_command() -> None:
    handler = InboundRouteHandler(ROUTES, fallback=InboundRoute("t1", "t1-support"))
    server = await _server(handler)
    try:
        # CVE-2010-0685 style: an extension that would add a call leg if passed on raw.
        got = await _call(server, "100&DAHDI/g1/4165551212")
    finally:
        await server.stop()
    assert got == {"CCB_TENANT": "t1", "CCB_QUEUE": "t1-support"}


async def test_unknown_dnid_falls_back_to_the_extension(
    routed: tuple[FastAgiServer, InboundRouteHandler],
) -> None:
    # Seen on a real Asterisk 22.10.1: Local channels and some trunks send agi_dnid: unknown.
    server, _ = routed
    url = f"agi://127.0.0.1:{server.port}/{SCRIPT}"
    result = await FakeAgiClient(url, AgiCall(dnid="unknown", extension="4008001234")).run()
    assert result.variables_set["CCB_QUEUE"] == "t1-sales"
    assert result.variables_set["CCB_DID"] == "4008001234"


async def test_numbers_of_a_tenant_that_is_not_active_are_unrouted() -> None:
    """A suspended or terminated tenant's number gets what an unknown number gets: the
    fallback route, or a hang-up; the status is read once per tenant, not once per call."""
    status = {"t1": TenantStatus.SUSPENDED, "t2": TenantStatus.ACTIVE}
    reads: list[str] = []

    async def read(tenant: str) -> TenantStatus | None:
        reads.append(tenant)
        return status.get(tenant)

    cache = TenantStatusCache(read, monotonic=lambda: 0.0)
    routes = {**ROUTES, "4008005678": InboundRoute("t2", "t2-sales")}
    no_fallback = InboundRouteHandler(routes, fallback=None, tenant_closed=cache.is_closed)
    server = await _server(no_fallback)
    try:
        assert await _call(server, "4008001234") == {"hung_up": "yes"}
        assert await _call(server, "4008001234") == {"hung_up": "yes"}
        assert no_fallback.unrouted == 2
        assert (await _call(server, "4008005678"))["CCB_QUEUE"] == "t2-sales"
        cache.changed("t1", TenantStatus.ACTIVE)  # reinstated: routed again at once
        assert (await _call(server, "4008001234"))["CCB_QUEUE"] == "t1-sales"
        cache.changed("t1", TenantStatus.TERMINATED)
        assert await _call(server, "4008001234") == {"hung_up": "yes"}
    finally:
        await server.stop()
    assert sorted(reads) == ["t1", "t2"]

    fallback = InboundRouteHandler(
        ROUTES, fallback=InboundRoute("t2", "t2-sales"), tenant_closed=cache.is_closed
    )
    server = await _server(fallback)
    try:
        got = await _call(server, "4008001234")
    finally:
        await server.stop()
    assert got == {"CCB_TENANT": "t2", "CCB_DID": "4008001234", "CCB_QUEUE": "t2-sales"}
    assert fallback.unrouted == 0

    unknown = InboundRouteHandler(
        {"4008009999": InboundRoute("t-not-in-db", "q")}, None, tenant_closed=cache.is_closed
    )
    server = await _server(unknown)
    try:  # a route to a tenant the database does not know still works, as before
        assert (await _call(server, "4008009999"))["CCB_QUEUE"] == "q"
    finally:
        await server.stop()
