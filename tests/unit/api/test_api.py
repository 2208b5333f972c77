"""HTTP API: call listing with keyset cursors, problem+json errors, readiness."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import OperationalError

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec, principal
from ccbridge.domain.access import ROLE_SCOPES, Principal, Role
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.observability.health import CheckResult, Readiness
from ccbridge.services.tenants import AccessService
from tests.fakes.calls import MemoryCallStore

PLATFORM = Principal("key:platform", Role.PLATFORM_ADMIN, None, ROLE_SCOPES[Role.PLATFORM_ADMIN])
T1_CRM = Principal("key:t1crm", Role.CRM, "t1", ROLE_SCOPES[Role.CRM])

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _call(i: int, tenant: str = "t1", state: CallState = CallState.ENDED) -> CallRecord:
    return CallRecord(
        call_id=f"1795433100.{i}",
        started_at=T0 + timedelta(seconds=i),
        state=state,
        tenant=tenant,
        caller="13800138000",
        callee="4008001234",
        skill_group="t1-sales",
        agent_no="1001",
        version=1,
    )


@pytest.fixture
def store() -> MemoryCallStore:
    s = MemoryCallStore()
    for i in range(25):
        s.submit(_call(i, tenant="t1" if i % 5 else "t2"))
    return s


@pytest.fixture
def readiness() -> Readiness:
    return Readiness(timeout=0.2)


@pytest.fixture
async def client(store: MemoryCallStore, readiness: Readiness) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        call_store=store,
        readiness=readiness,
        access=cast(AccessService, None),
        jwt=JwtCodec("unit-test-secret-unit-test-secret"),
    )
    app.dependency_overrides[principal] = lambda: PLATFORM
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_list_calls_walks_every_call_once_with_cursors(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        resp = await client.get("/api/v1/calls", params=params)
        assert resp.status_code == 200
        body = resp.json()
        seen += [c["call_id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25
    assert len(set(seen)) == 25
    assert seen[0] == "1795433100.24"  # newest first


async def test_call_carries_the_four_variables(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/calls/1795433100.1")
    assert resp.status_code == 200
    body = resp.json()
    assert (body["agent_no"], body["skill_group"], body["caller"], body["callee"]) == (
        "1001",
        "t1-sales",
        "13800138000",
        "4008001234",
    )
    assert body["started_at"].endswith("Z") or body["started_at"].endswith("+00:00")


async def test_tenant_filter_and_other_tenants_call_is_404(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/calls", params={"tenant": "t2", "limit": 100})
    assert {c["tenant"] for c in resp.json()["items"]} == {"t2"}
    resp = await client.get("/api/v1/calls/1795433100.1", params={"tenant": "t2"})
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "NOT_FOUND"


async def test_bad_input_is_problem_json_naming_the_field(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/calls", params={"limit": 100000})
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["status"] == 422
    assert body["errors"][0]["field"] == "query.limit"
    resp = await client.get("/api/v1/calls", params={"cursor": "not-a-cursor"})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "query.cursor"
    resp = await client.get("/api/v1/calls", params={"state": "flying"})
    assert resp.json()["errors"][0]["field"] == "query.state"


async def test_unknown_route_is_problem_json(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/nope")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"


async def test_readyz_reports_each_dependency(
    client: httpx.AsyncClient, readiness: Readiness
) -> None:
    async def ok() -> CheckResult:
        return CheckResult(True, {"port": 4573})

    async def down() -> CheckResult:
        raise ConnectionRefusedError("db down")

    readiness.add("fastagi", ok)
    readiness.add("database", down)
    resp = await client.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["checks"]["fastagi"] == {"ok": True, "port": 4573}
    assert body["checks"]["database"]["ok"] is False
    assert "db down" in body["checks"]["database"]["error"]
    resp = await client.get("/healthz")
    assert resp.json() == {"status": "alive"}


async def test_readyz_times_out_a_hung_check(
    client: httpx.AsyncClient, readiness: Readiness
) -> None:
    import asyncio

    async def hang() -> CheckResult:
        await asyncio.sleep(10)
        return CheckResult(True)

    readiness.add("ami", hang)
    resp = await client.get("/readyz")
    assert resp.status_code == 503
    assert "timed out" in resp.json()["checks"]["ami"]["error"]


async def test_openapi_is_served(client: httpx.AsyncClient) -> None:
    resp = await client.get("/openapi.json")
    assert resp.status_code == 200
    assert "/api/v1/calls" in resp.json()["paths"]


async def test_calls_need_a_credential(store: MemoryCallStore, readiness: Readiness) -> None:
    app = create_app(
        call_store=store,
        readiness=readiness,
        access=cast(AccessService, None),
        jwt=JwtCodec("unit-test-secret-unit-test-secret"),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.get("/api/v1/calls")
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert resp.headers["content-type"] == "application/problem+json"
        resp = await c.get("/api/v1/calls", headers={"Authorization": "Bearer not.a.jwt"})
        assert resp.status_code == 401


async def test_tenant_principal_sees_only_its_calls(
    client: httpx.AsyncClient, store: MemoryCallStore
) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    app.dependency_overrides[principal] = lambda: T1_CRM
    resp = await client.get("/api/v1/calls", params={"limit": 100})
    assert {c["tenant"] for c in resp.json()["items"]} == {"t1"}
    resp = await client.get("/api/v1/calls", params={"tenant": "t2"})
    assert resp.status_code == 404
    missing = await client.get("/api/v1/calls/nope")
    other = await client.get("/api/v1/calls/1795433100.0")  # a t2 call
    assert other.status_code == missing.status_code == 404
    assert other.json()["code"] == missing.json()["code"] == "NOT_FOUND"


class _LockedStore(MemoryCallStore):
    """A store whose database is locked by another writer (SQLite under write contention)."""

    async def get(self, call_id: str, tenant: str | None = None) -> CallRecord | None:
        raise OperationalError("SELECT …", {}, sqlite3.OperationalError("database is locked"))


async def test_locked_database_is_503_with_retry_after(readiness: Readiness) -> None:
    app = create_app(
        call_store=_LockedStore(),
        readiness=readiness,
        access=cast(AccessService, None),
        jwt=JwtCodec("unit-test-secret-unit-test-secret"),
    )
    app.dependency_overrides[principal] = lambda: PLATFORM
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.get("/api/v1/calls/1795433100.1")
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["retry-after"] == "1"
    body = resp.json()
    assert body["code"] == "DATABASE_UNAVAILABLE"
    assert "nothing was changed" in body["detail"]


class _BrokenStore(MemoryCallStore):
    """A store whose read raises ``error`` (a driver error during the request)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def get(self, call_id: str, tenant: str | None = None) -> CallRecord | None:
        raise self.error


def _invalidated() -> Exception:
    err = sa_exc.InterfaceError("SELECT …", {}, Exception("connection is closed"))
    err.connection_invalidated = True
    return err


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param(_invalidated(), 503, id="sqlalchemy-connection-invalidated"),
        pytest.param(
            asyncpg.ConnectionDoesNotExistError("connection was closed"), 503, id="asyncpg-closed"
        ),
        pytest.param(ConnectionResetError(104, "reset by peer"), 503, id="reset"),
        pytest.param(sa_exc.TimeoutError("QueuePool limit reached"), 503, id="pool-timeout"),
        pytest.param(ValueError("a bug"), 500, id="programming-error-is-still-500"),
    ],
)
async def test_driver_errors_answer_503_never_500(
    readiness: Readiness, error: Exception, status: int
) -> None:
    app = create_app(
        call_store=_BrokenStore(error),
        readiness=readiness,
        access=cast(AccessService, None),
        jwt=JwtCodec("unit-test-secret-unit-test-secret"),
    )
    app.dependency_overrides[principal] = lambda: PLATFORM
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        resp = await c.get("/api/v1/calls/1795433100.1")
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    if status == 503:
        assert resp.headers["retry-after"] == "1"
        assert resp.json()["code"] == "DATABASE_UNAVAILABLE"


async def test_routes_of_unwired_services_are_404_not_500(client: httpx.AsyncClient) -> None:
    """An API-only process (`ccbridge api`) has no seats, recordings, IVR or calendar: their
    routes answer a clean 404 problem, never a 500 from a missing service."""
    for path in (
        "/api/v1/tenants/t1/recordings",
        "/api/v1/tenants/t1/ivr/flows",
        "/api/v1/calendar/2026",
        "/api/v1/seats/live",
        "/api/v1/events",
    ):
        resp = await client.get(path)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v1/calls")).status_code == 200
