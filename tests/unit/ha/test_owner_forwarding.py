"""A standby forwards owner-only requests to the PBX owner, once (ADR 0031).

The decision is pure (``domain.ha.forwarding``); the forwarder is tested between two real
FastAPI apps: a standby whose HTTP client reaches the owner app through an ASGI transport.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from ccbridge.api.owner_forwarding import (
    AT_PBX_OWNER,
    AT_PBX_OWNER_STREAM,
    FORWARDED_BY_HEADER,
    MAX_FORWARDED_BODY,
    SERVED_BY_HEADER,
    OwnerForwarder,
    install_owner_forwarding,
)
from ccbridge.api.problems import install_problem_handlers
from ccbridge.domain.ha.forwarding import (
    ForwardTo,
    NoOwner,
    OwnerAddress,
    ServeHere,
    is_api_address,
    route_owner_request,
)
from ccbridge.errors import ConflictError
from ccbridge.observability.metrics import Metrics
from ccbridge.settings import ApiSettings, HaSettings

OWNER = OwnerAddress("node-a", 3, "http://node-a:8000/")


# ------------------------------------------------------------------ the decision


def test_the_owner_serves_it_without_looking_anywhere() -> None:
    route = route_owner_request(this_node="node-a", owns_pbx=True, owner=None, forwarded_by=None)
    assert route == ServeHere()


def test_a_standby_forwards_to_the_owners_address() -> None:
    route = route_owner_request(this_node="node-b", owns_pbx=False, owner=OWNER, forwarded_by=None)
    assert route == ForwardTo(OWNER, "http://node-a:8000")


def test_a_forwarded_request_is_never_forwarded_again() -> None:
    route = route_owner_request(
        this_node="node-b", owns_pbx=False, owner=OWNER, forwarded_by="node-c"
    )
    assert isinstance(route, NoOwner)
    assert "node-c" in route.reason


@pytest.mark.parametrize(
    ("owner", "said"),
    [
        (None, "takeover"),
        (OwnerAddress("node-b", 2, "http://node-b:8000"), "term has ended"),
        (OwnerAddress("node-a", 2, None), "not published"),
        (OwnerAddress("node-a", 2, "ftp://node-a"), "not published"),
    ],
)
def test_without_a_reachable_other_owner_nobody_serves_it(
    owner: OwnerAddress | None, said: str
) -> None:
    route = route_owner_request(this_node="node-b", owns_pbx=False, owner=owner, forwarded_by=None)
    assert isinstance(route, NoOwner)
    assert said in route.reason


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://node-a:8000", True),
        ("https://ccbridge.example.net", True),
        ("http://[::1]:8000/", True),
        ("http://node-a:8000/api", False),
        ("http://user:pw@node-a:8000", False),
        ("http://node-a:99999", False),
        ("node-a:8000", False),
        ("http://node-a:8000?x=1", False),
        ("", False),
    ],
)
def test_an_api_address_is_scheme_host_and_port_only(url: str, ok: bool) -> None:
    assert is_api_address(url) is ok


def test_the_advertised_address_defaults_to_the_api_bind() -> None:
    ha = HaSettings()
    assert ha.api_address(ApiSettings(host="10.0.0.5", port=8001)) == "http://10.0.0.5:8001"
    wildcard = ha.api_address(ApiSettings(host="0.0.0.0", port=8000))
    assert not wildcard.startswith("http://0.0.0.0")
    given = HaSettings(advertise_url="http://ccbridge-b:8000/")
    assert given.api_address(ApiSettings()) == "http://ccbridge-b:8000"


def test_a_bad_advertised_address_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="advertise_url"):
        HaSettings(advertise_url="http://ccbridge-b:8000/api")


# ------------------------------------------------------------------ two real apps


def _node_app(forwarder: OwnerForwarder | None, seen: list[dict[str, Any]]) -> FastAPI:
    """A node with one owner-only POST, one owner-only stream and one ordinary GET."""
    app = FastAPI()
    install_problem_handlers(app)
    install_owner_forwarding(app, forwarder)

    @app.post("/api/v1/tenants/{tenant_id}/seats/{agent_no}/hold", dependencies=[AT_PBX_OWNER])
    async def hold(
        request: Request,
        tenant_id: str,
        agent_no: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Any:
        body = await request.json()
        if body.get("refuse"):
            raise ConflictError("no call to hold", field="agent_no")
        seen.append(
            {
                "tenant": tenant_id,
                "agent": agent_no,
                "auth": authorization,
                "query": dict(request.query_params),
                "body": body,
                "forwarded_by": request.headers.get(FORWARDED_BY_HEADER),
            }
        )
        return {"held": True, "tenant": tenant_id}

    @app.get("/api/v1/stream", dependencies=[AT_PBX_OWNER_STREAM])
    async def stream() -> StreamingResponse:
        async def events() -> Any:
            for n in range(3):
                yield f"data: {n}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/api/v1/plain")
    async def plain() -> Any:
        return {"served": "locally"}

    return app


class Lease:
    """The owner as the lease row names it, and how often the standby looked."""

    def __init__(self, owner: OwnerAddress | None) -> None:
        self.owner = owner
        self.looks = 0

    async def __call__(self, pbx: str) -> OwnerAddress | None:
        assert pbx == "default"
        self.looks += 1
        return self.owner


def _standby(
    owner_app: FastAPI | None, lease: Lease, *, timeout: float = 5.0
) -> tuple[FastAPI, list[dict[str, Any]]]:
    transport = httpx.ASGITransport(owner_app) if owner_app is not None else None
    forwarder = OwnerForwarder(
        node="node-b",
        pbx="default",
        owns_pbx=lambda: False,
        lookup=lease,
        timeout=timeout,
        transport=transport,
    )
    seen: list[dict[str, Any]] = []
    return _node_app(forwarder, seen), seen


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://node-b")


def _owner() -> tuple[FastAPI, list[dict[str, Any]]]:
    owner_seen: list[dict[str, Any]] = []
    forwarder = OwnerForwarder(
        node="node-a",
        pbx="default",
        owns_pbx=lambda: True,
        lookup=Lease(None),
        timeout=5.0,
    )
    return _node_app(forwarder, owner_seen), owner_seen


async def test_the_standby_relays_the_request_and_the_owners_answer() -> None:
    owner_app, owner_seen = _owner()
    standby, standby_seen = _standby(owner_app, Lease(OWNER))
    async with _client(standby) as http:
        resp = await http.post(
            "/api/v1/tenants/t1/seats/1101/hold?reason=x",
            json={"note": "张伟 holds"},
            headers={"Authorization": "Bearer k", "Idempotency-Key": "abc"},
        )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"held": True, "tenant": "t1"}
    assert resp.headers[SERVED_BY_HEADER] == "node-a"
    assert standby_seen == []  # the standby's handler never ran
    forwarder: OwnerForwarder = standby.state.owner_forwarder
    assert (forwarder.forwarded, forwarder.failed) == (1, 0)
    assert owner_seen == [
        {
            "tenant": "t1",
            "agent": "1101",
            "auth": "Bearer k",
            "query": {"reason": "x"},
            "body": {"note": "张伟 holds"},
            "forwarded_by": "node-b",
        }
    ]


async def test_the_owners_refusal_is_relayed_as_it_is() -> None:
    owner_app, _ = _owner()
    standby, _ = _standby(owner_app, Lease(OWNER))
    async with _client(standby) as http:
        resp = await http.post("/api/v1/tenants/t1/seats/1101/hold", json={"refuse": True})
    assert resp.status_code == 409
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers[SERVED_BY_HEADER] == "node-a"
    assert resp.json()["errors"] == [{"field": "agent_no", "message": "no call to hold"}]


async def test_routes_that_do_not_need_the_owner_are_served_locally() -> None:
    lease = Lease(OWNER)
    standby, _ = _standby(None, lease)
    async with _client(standby) as http:
        resp = await http.get("/api/v1/plain")
    assert resp.json() == {"served": "locally"}
    assert lease.looks == 0


async def test_a_stream_is_relayed_chunk_by_chunk() -> None:
    owner_app, _ = _owner()
    standby, _ = _standby(owner_app, Lease(OWNER))
    async with _client(standby) as http, http.stream("GET", "/api/v1/stream") as resp:
        assert resp.headers[SERVED_BY_HEADER] == "node-a"
        lines = [line async for line in resp.aiter_lines() if line]
    assert lines == ["data: 0", "data: 1", "data: 2"]


async def test_without_an_owner_the_standby_answers_503_with_the_reason() -> None:
    standby, seen = _standby(None, Lease(None))
    async with _client(standby) as http:
        resp = await http.post("/api/v1/tenants/t1/seats/1101/hold", json={})
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["Retry-After"]
    assert "takeover" in resp.json()["detail"]
    assert seen == []
    forwarder: OwnerForwarder = standby.state.owner_forwarder
    assert (forwarder.forwarded, forwarder.failed) == (0, 1)


async def test_a_request_forwarded_once_is_not_passed_round() -> None:
    owner_app, owner_seen = _owner()
    standby, seen = _standby(owner_app, Lease(OWNER))
    async with _client(standby) as http:
        resp = await http.post(
            "/api/v1/tenants/t1/seats/1101/hold", json={}, headers={FORWARDED_BY_HEADER: "node-c"}
        )
    assert resp.status_code == 503
    assert "node-c" in resp.json()["detail"]
    assert seen == owner_seen == []


async def test_an_owner_that_cannot_be_reached_is_a_503_naming_it() -> None:
    unreachable = OwnerAddress("node-a", 3, "http://127.0.0.1:9")  # discard port: refused
    forwarder = OwnerForwarder(
        node="node-b", pbx="default", owns_pbx=lambda: False, lookup=Lease(unreachable), timeout=2
    )
    standby = _node_app(forwarder, [])
    try:
        async with _client(standby) as http:
            resp = await http.post("/api/v1/tenants/t1/seats/1101/hold", json={})
    finally:
        await forwarder.close()
    assert resp.status_code == 503
    assert "node-a could not be reached" in resp.json()["detail"]
    assert "127.0.0.1" not in resp.text  # no internal address in the answer


async def test_an_owner_that_does_not_answer_in_time_is_a_504_that_says_retry() -> None:
    """The owner takes the request and never answers (a real socket: the timeout is the
    HTTP client's own)."""
    taken = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        taken.set()
        await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    owner = OwnerAddress("node-a", 3, f"http://127.0.0.1:{port}")
    forwarder = OwnerForwarder(
        node="node-b", pbx="default", owns_pbx=lambda: False, lookup=Lease(owner), timeout=1.0
    )
    try:
        async with _client(_node_app(forwarder, [])) as http:
            resp = await http.post("/api/v1/tenants/t1/seats/1101/hold", json={})
    finally:
        await forwarder.close()
        server.close()
    assert taken.is_set()
    assert resp.status_code == 504
    body = resp.json()
    assert body["code"] == "PBX_OWNER_TIMEOUT"
    assert "Idempotency-Key" in body["detail"]


async def test_an_oversized_body_is_refused_not_relayed() -> None:
    owner_app, owner_seen = _owner()
    standby, _ = _standby(owner_app, Lease(OWNER))
    async with _client(standby) as http:
        resp = await http.post(
            "/api/v1/tenants/t1/seats/1101/hold",
            content=b'{"x": "' + b"a" * MAX_FORWARDED_BODY + b'"}',
            headers={"Content-Type": "application/json"},
        )
    assert resp.status_code == 413
    assert owner_seen == []


async def test_a_single_node_forwards_nothing() -> None:
    seen: list[dict[str, Any]] = []
    app = _node_app(None, seen)
    async with _client(app) as http:
        resp = await http.post("/api/v1/tenants/t1/seats/1101/hold", json={"a": 1})
    assert resp.status_code == 200
    assert SERVED_BY_HEADER not in resp.headers
    assert seen[0]["body"] == {"a": 1}


def test_a_standbys_forwards_are_scraped_as_counters() -> None:
    metrics = Metrics()
    counts = {"forwarded": 3, "failed": 1}
    metrics.ha.watch_forwarding(lambda: counts["forwarded"], lambda: counts["failed"])
    read = metrics.registry.get_sample_value
    assert read("ccbridge_owner_requests_forwarded_total") == 3
    assert read("ccbridge_owner_forwards_failed_total") == 1


# ------------------------------------------------------------------ several PBXs (ADR 0033)


async def test_a_request_for_a_tenant_of_another_pbx_goes_to_that_pbxs_owner() -> None:
    """node-a owns PBX "default"; tenant tb lives on "pbx-b", owned by node-c: even the owner
    of its own PBX forwards tb's call control there, and serves t1's itself."""
    placed = {"t1": "default", "tb": "pbx-b"}

    async def placement(tenant: str) -> str | None:
        return placed.get(tenant)

    looked: list[str] = []

    async def owners(pbx: str) -> OwnerAddress | None:
        looked.append(pbx)
        return {"pbx-b": OwnerAddress("node-c", 1, "http://node-c:8000")}.get(pbx)

    c_seen: list[dict[str, Any]] = []
    node_c = _node_app(
        OwnerForwarder(
            node="node-c",
            pbx="pbx-b",
            owns_pbx=lambda: True,
            lookup=owners,
            timeout=5.0,
            placement=placement,
        ),
        c_seen,
    )
    a_seen: list[dict[str, Any]] = []
    node_a = _node_app(
        OwnerForwarder(
            node="node-a",
            pbx="default",
            owns_pbx=lambda: True,
            lookup=owners,
            timeout=5.0,
            transport=httpx.ASGITransport(node_c),
            placement=placement,
        ),
        a_seen,
    )
    async with _client(node_a) as http:
        there = await http.post("/api/v1/tenants/tb/seats/1101/hold", json={})
        here = await http.post("/api/v1/tenants/t1/seats/1101/hold", json={})
        unknown = await http.post("/api/v1/tenants/nobody/seats/1101/hold", json={})
    assert there.status_code == 200, there.text
    assert there.headers[SERVED_BY_HEADER] == "node-c"
    assert [s["tenant"] for s in c_seen] == ["tb"]
    assert c_seen[0]["forwarded_by"] == "node-a"
    assert here.status_code == 200
    assert SERVED_BY_HEADER not in here.headers
    assert unknown.status_code == 200  # no such tenant: served here, where the route says 404
    assert [s["tenant"] for s in a_seen] == ["t1", "nobody"]
    assert looked == ["pbx-b"]  # its own PBX's tenants need no lookup on the owner


async def test_a_pbx_without_an_owner_now_answers_503_for_its_tenants_only() -> None:
    async def placement(tenant: str) -> str | None:
        return {"tb": "pbx-b"}.get(tenant, "default")

    async def nobody(_pbx: str) -> OwnerAddress | None:
        return None

    seen: list[dict[str, Any]] = []
    node_a = _node_app(
        OwnerForwarder(
            node="node-a",
            pbx="default",
            owns_pbx=lambda: True,
            lookup=nobody,
            timeout=5.0,
            placement=placement,
        ),
        seen,
    )
    async with _client(node_a) as http:
        there = await http.post("/api/v1/tenants/tb/seats/1101/hold", json={})
        here = await http.post("/api/v1/tenants/t1/seats/1101/hold", json={})
    assert there.status_code == 503, there.text
    assert there.headers["content-type"] == "application/problem+json"
    assert here.status_code == 200
