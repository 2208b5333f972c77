"""Tenants and access through the real app over a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.sqlite_reads import read_pool_for
from ccbridge.db.tenant_status_read import tenant_status_read
from ccbridge.domain.access import ROLE_SCOPES, ApiKey, Principal, Role, TenantStatus
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.observability.health import Readiness
from ccbridge.services import tenants as tenants_service
from ccbridge.services.tenant_status import TenantStatusCache
from ccbridge.services.tenants import AccessService, TenantChanges

SECRET = "integration-test-secret-0123456789abcdef"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PLATFORM_ADMIN = Principal(
    actor="t", role=Role.PLATFORM_ADMIN, tenant_id=None, scopes=ROLE_SCOPES[Role.PLATFORM_ADMIN]
)


@dataclass
class World:
    client: httpx.AsyncClient
    access: AccessService
    engine: AsyncEngine
    platform: dict[str, str]
    a_admin: dict[str, str]
    b_admin: dict[str, str]
    b_key_id: str


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        codec,
        now=lambda: datetime.now(UTC),
        token_ttl_seconds=600,
    )
    calls = CallRepository(sessions)
    await calls.upsert_many(
        [
            CallRecord(call_id=f"c-{t}", started_at=T0, state=CallState.ENDED, tenant=t, version=1)
            for t in ("ta", "tb")
        ]
    )
    app = create_app(call_store=calls, readiness=Readiness(), access=access, jwt=codec)
    _, platform = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for tid in ("ta", "tb"):
            resp = await client.post(
                "/api/v1/tenants",
                json={
                    "id": tid,
                    "name": f"Tenant {tid}",
                    "business_contact": {"name": "Li", "phone": "+86-10-1234", "email": "li@x.cn"},
                },
                headers=auth(platform),
            )
            assert resp.status_code == 201, resp.text
        keys = {}
        for tid in ("ta", "tb"):
            resp = await client.post(
                f"/api/v1/tenants/{tid}/api-keys",
                json={"name": "admin", "role": "tenant_admin"},
                headers=auth(platform),
            )
            assert resp.status_code == 201, resp.text
            keys[tid] = resp.json()
        yield World(
            client,
            access,
            engine,
            auth(platform),
            auth(keys["ta"]["key"]),
            auth(keys["tb"]["key"]),
            keys["tb"]["key_id"],
        )


async def test_key_is_shown_once_works_and_is_hashed_at_rest(world: World) -> None:
    c = world.client
    resp = await c.post("/api/v1/tenants/ta/api-keys", json={"name": "crm"}, headers=world.a_admin)
    assert resp.status_code == 201
    created = resp.json()
    plaintext = created["key"]
    assert plaintext.startswith(f"ccb_{created['key_id']}_")
    assert created["role"] == "crm"
    listing = await c.get("/api/v1/tenants/ta/api-keys", headers=world.a_admin)
    assert plaintext not in listing.text
    assert "secret" not in listing.text
    assert created["key_id"] in listing.text
    # X-API-Key works too
    resp = await c.get("/api/v1/calls", headers={"X-API-Key": plaintext})
    assert resp.status_code == 200
    assert [x["call_id"] for x in resp.json()["items"]] == ["c-ta"]
    secret = plaintext.split("_", 2)[2]
    async with world.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).all()
    dump = repr(rows)
    assert secret not in dump
    assert plaintext not in dump


async def test_revoked_key_is_401(world: World) -> None:
    c = world.client
    created = (
        await c.post("/api/v1/tenants/ta/api-keys", json={"name": "x"}, headers=world.a_admin)
    ).json()
    assert (await c.get("/api/v1/calls", headers=auth(created["key"]))).status_code == 200
    resp = await c.delete(f"/api/v1/tenants/ta/api-keys/{created['key_id']}", headers=world.a_admin)
    assert resp.status_code == 200
    assert resp.json()["revoked_at"] is not None
    resp = await c.get("/api/v1/calls", headers=auth(created["key"]))
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["www-authenticate"].startswith("Bearer")
    wrong = created["key"][:-2] + ("aa" if not created["key"].endswith("aa") else "bb")
    assert (await c.get("/api/v1/calls", headers=auth(wrong))).status_code == 401
    assert (await c.get("/api/v1/calls")).status_code == 401


async def test_person_token_works_expired_and_tampered_are_401(world: World) -> None:
    c = world.client
    resp = await c.post(
        "/api/v1/auth/token",
        json={"subject": "wang", "role": "agent", "agent_no": "1001"},
        headers=world.a_admin,
    )
    assert resp.status_code == 200, resp.text
    token = resp.json()["access_token"]
    assert 0 < resp.json()["expires_in"] <= 600
    resp = await c.get("/api/v1/calls", headers=auth(token))
    assert resp.status_code == 200
    assert {x["tenant"] for x in resp.json()["items"]} == {"ta"}
    # an agent token cannot manage keys (own tenant: 403), nor see tenant B (404)
    resp = await c.get("/api/v1/tenants/ta/api-keys", headers=auth(token))
    assert resp.status_code == 403
    assert resp.json()["code"] == "FORBIDDEN"
    assert (await c.get("/api/v1/tenants/tb/api-keys", headers=auth(token))).status_code == 404
    head, body, sig = token.split(".")
    tampered = f"{head}.{body}.{sig[:-3]}{'AAA' if not sig.endswith('AAA') else 'BBB'}"
    assert (await c.get("/api/v1/calls", headers=auth(tampered))).status_code == 401
    person = Principal("user:wang", Role.AGENT, "ta", ROLE_SCOPES[Role.AGENT], "1001")
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = JwtCodec(SECRET).sign(person, issued_at=past, expires_at=past + timedelta(hours=1))
    resp = await c.get("/api/v1/calls", headers=auth(expired))
    assert resp.status_code == 401
    assert "expired" in resp.json()["detail"]
    forged = JwtCodec("another-secret-another-secret-123").sign(
        person, issued_at=datetime.now(UTC), expires_at=datetime.now(UTC) + timedelta(minutes=5)
    )
    assert (await c.get("/api/v1/calls", headers=auth(forged))).status_code == 401


async def test_role_refusals_are_403_on_own_tenant(world: World) -> None:
    c = world.client
    resp = await c.post("/api/v1/tenants", json={"id": "tc", "name": "C"}, headers=world.a_admin)
    assert resp.status_code == 403
    resp = await c.patch("/api/v1/tenants/ta", json={"status": "active"}, headers=world.a_admin)
    assert resp.status_code == 403
    crm = (
        await c.post("/api/v1/tenants/ta/api-keys", json={"name": "crm"}, headers=world.a_admin)
    ).json()["key"]
    resp = await c.post("/api/v1/tenants/ta/api-keys", json={"name": "x"}, headers=auth(crm))
    assert resp.status_code == 403
    resp = await c.post(
        "/api/v1/tenants/ta/api-keys",
        json={"name": "x", "role": "crm", "scopes": ["keys:write"]},
        headers=world.a_admin,
    )
    assert resp.status_code == 403
    # the tenant admin may still edit its own profile
    resp = await c.patch("/api/v1/tenants/ta", json={"name": "A Ltd"}, headers=world.a_admin)
    assert resp.status_code == 200
    assert resp.json()["name"] == "A Ltd"


async def test_suspended_tenant_keys_stop_working(world: World) -> None:
    c = world.client
    resp = await c.patch("/api/v1/tenants/tb", json={"status": "suspended"}, headers=world.platform)
    assert resp.status_code == 200
    assert (await c.get("/api/v1/calls", headers=world.b_admin)).status_code == 401


@pytest.mark.parametrize("role", ["agent", "supervisor"])
async def test_person_tokens_die_with_their_tenant_and_return_with_it(
    world: World, role: str
) -> None:
    """One tenant check for keys and tokens: suspension locks a token out on the very next
    request, reinstatement lets it in again, termination locks it out for good."""
    c = world.client
    body = {"subject": "wang", "role": role, "agent_no": "1001"}
    resp = await c.post("/api/v1/auth/token", json=body, headers=world.b_admin)
    assert resp.status_code == 200, resp.text
    token = auth(resp.json()["access_token"])
    assert (await c.get("/api/v1/calls", headers=token)).status_code == 200

    resp = await c.patch("/api/v1/tenants/tb", json={"status": "suspended"}, headers=world.platform)
    assert resp.status_code == 200
    resp = await c.get("/api/v1/calls", headers=token)
    assert resp.status_code == 401
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert "suspended or terminated" in resp.json()["detail"]
    assert (await c.get("/api/v1/calls", headers=world.b_admin)).status_code == 401
    # the other tenant's people are untouched
    other = await c.post("/api/v1/auth/token", json=body, headers=world.a_admin)
    assert (await c.get("/api/v1/calls", headers=auth(other.json()["access_token"]))).is_success

    resp = await c.patch("/api/v1/tenants/tb", json={"status": "active"}, headers=world.platform)
    assert resp.status_code == 200
    assert (await c.get("/api/v1/calls", headers=token)).status_code == 200

    resp = await c.patch(
        "/api/v1/tenants/tb", json={"status": "terminated"}, headers=world.platform
    )
    assert resp.status_code == 200
    assert (await c.get("/api/v1/calls", headers=token)).status_code == 401
    assert (await c.get("/api/v1/calls", headers=world.b_admin)).status_code == 401


async def test_a_token_is_refused_once_another_process_suspends_its_tenant(
    engine: AsyncEngine,
) -> None:
    """A suspension made elsewhere (the CLI, another API process) reaches this process's token
    check within the status cache's TTL, not only at the token's expiry."""
    sessions = create_session_factory(engine)
    tick = [0.0]
    status = TenantStatusCache(
        lambda t: _status_of(sessions, t), ttl=5.0, monotonic=lambda: tick[0]
    )
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec(SECRET),
        now=lambda: T0,
        token_ttl_seconds=600,
        tenant_status=status,
    )
    elsewhere = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec(SECRET),
        now=lambda: T0,
        token_ttl_seconds=600,
    )
    admin = PLATFORM_ADMIN
    await access.create_tenant(admin, tenant_id="ta", name="A")
    person = Principal("user:wang", Role.AGENT, "ta", ROLE_SCOPES[Role.AGENT], "1001")
    for _ in range(3):
        assert await access.admits(person)
    assert status.reads == 1
    await elsewhere.update_tenant(admin, "ta", TenantChanges(status=TenantStatus.SUSPENDED))
    assert await access.admits(person)  # still cached
    tick[0] = 5.0
    assert not await access.admits(person)
    assert status.reads == 2


async def _status_of(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str
) -> TenantStatus | None:
    async with SqlAccessUnitOfWork(sessions) as uow:
        tenant = await uow.tenants.get(tenant_id)
    return tenant.status if tenant else None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/tenants/{t}", None),
        ("PATCH", "/api/v1/tenants/{t}", {"name": "pwned"}),
        ("GET", "/api/v1/tenants/{t}/api-keys", None),
        ("POST", "/api/v1/tenants/{t}/api-keys", {"name": "x"}),
        ("DELETE", "/api/v1/tenants/{t}/api-keys/{k}", None),
        ("GET", "/api/v1/audit?tenant={t}", None),
        ("GET", "/api/v1/calls?tenant={t}", None),
        ("POST", "/api/v1/auth/token", {"subject": "x", "role": "supervisor", "tenant": "{t}"}),
    ],
)
async def test_other_tenants_objects_answer_404_like_missing_ones(
    world: World, method: str, path: str, body: dict[str, str] | None
) -> None:
    async def call(tenant: str) -> httpx.Response:
        url = path.format(t=tenant, k=world.b_key_id)
        payload = {k: v.format(t=tenant) for k, v in body.items()} if body else None
        return await world.client.request(method, url, json=payload, headers=world.a_admin)

    other, missing = await call("tb"), await call("zz-missing")
    assert other.status_code == missing.status_code == 404, other.text
    strip = lambda r: {  # noqa: E731
        k: v for k, v in r.json().items() if k not in ("detail", "instance")
    }
    assert strip(other) == strip(missing)
    assert other.json()["detail"].replace("tb", "X") == missing.json()["detail"].replace(
        "zz-missing", "X"
    )
    assert other.headers["content-type"] == "application/problem+json"
    # tenant B's key is untouched
    assert (await world.client.get("/api/v1/calls", headers=world.b_admin)).status_code == 200


async def test_another_tenants_call_and_key_are_404(world: World) -> None:
    c = world.client
    assert (await c.get("/api/v1/calls/c-tb", headers=world.a_admin)).status_code == 404
    assert (await c.get("/api/v1/calls/c-ta", headers=world.a_admin)).status_code == 200
    # B's key id under A's own path: also 404
    resp = await c.delete(f"/api/v1/tenants/ta/api-keys/{world.b_key_id}", headers=world.a_admin)
    assert resp.status_code == 404
    listing = (await c.get("/api/v1/tenants", headers=world.a_admin)).json()
    assert [t["id"] for t in listing["items"]] == ["ta"]
    every = (await c.get("/api/v1/tenants", headers=world.platform)).json()
    assert [t["id"] for t in every["items"]] == ["ta", "tb"]


async def test_every_write_is_audited(world: World) -> None:
    c = world.client
    await c.patch("/api/v1/tenants/ta", json={"timezone": "Europe/Paris"}, headers=world.a_admin)
    key = (
        await c.post("/api/v1/tenants/ta/api-keys", json={"name": "k"}, headers=world.a_admin)
    ).json()
    await c.delete(f"/api/v1/tenants/ta/api-keys/{key['key_id']}", headers=world.a_admin)
    await c.post(
        "/api/v1/auth/token", json={"subject": "zhao", "role": "supervisor"}, headers=world.a_admin
    )
    resp = await c.get("/api/v1/audit", headers=world.a_admin)
    assert resp.status_code == 200
    entries = resp.json()["items"]
    actions = [e["action"] for e in entries]
    assert actions[:4] == ["token.issued", "api_key.revoked", "api_key.created", "tenant.updated"]
    assert "tenant.created" in actions
    assert {e["tenant_id"] for e in entries} == {"ta"}
    admin_key_id = next(e for e in entries if e["action"] == "tenant.updated")["actor"]
    assert admin_key_id.startswith("key:")
    assert all(e["at"] and e["actor"] for e in entries)
    every = (await c.get("/api/v1/audit?limit=500", headers=world.platform)).json()["items"]
    assert {e["tenant_id"] for e in every} >= {"ta", "tb", None}
    page = (await c.get("/api/v1/audit?limit=2", headers=world.a_admin)).json()
    assert len(page["items"]) == 2
    assert page["next_before_id"] is not None


async def test_audit_log_refuses_update_and_delete(world: World) -> None:
    for statement in ("UPDATE audit_log SET actor = 'someone-else'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            async with world.engine.begin() as conn:
                await conn.execute(text(statement))
    async with world.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
    assert count >= 4


async def test_bad_input_is_problem_json_naming_the_field(world: World) -> None:
    c = world.client
    cases = [
        ({"id": "Bad_Slug", "name": "x"}, "body.id"),
        ({"id": "tc", "name": "evil\r\nX-Injected: 1"}, "body.name"),
        ({"id": "tc", "name": "nul\x00"}, "body.name"),
        (
            {"id": "tc", "name": "x", "technical_contact": {"name": "a", "email": "nope"}},
            "body.technical_contact.email",
        ),
        (
            {"id": "tc", "name": "x", "business_contact": {"name": "a", "phone": "12ab"}},
            "body.business_contact.phone",
        ),
        ({"id": "tc", "name": "x", "timezone": "Mars/Base"}, "body.timezone"),
    ]
    for body, field in cases:
        resp = await c.post("/api/v1/tenants", json=body, headers=world.platform)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in resp.json()["errors"]], resp.json()
    resp = await c.post("/api/v1/tenants", json={"id": "ta", "name": "dup"}, headers=world.platform)
    assert resp.status_code == 409


async def test_key_cache_skips_the_database_and_revocation_here_applies_at_once(
    engine: AsyncEngine,
) -> None:
    """A good key is looked up once per TTL; a revocation or a suspension through this
    process's service is seen by the next request; one made elsewhere after the TTL."""
    sessions = create_session_factory(engine)
    now = [T0]
    lookups = [0]

    def uow() -> SqlAccessUnitOfWork:
        lookups[0] += 1
        return SqlAccessUnitOfWork(sessions)

    access = AccessService(uow, JwtCodec(SECRET), now=lambda: now[0], token_ttl_seconds=600)
    admin = PLATFORM_ADMIN
    await access.create_tenant(admin, tenant_id="ta", name="A")
    key, plaintext = await access.create_system_key(
        role=Role.CRM, tenant_id="ta", name="crm", actor="t"
    )
    lookups[0] = 0
    for _ in range(5):
        assert await access.authenticate_key(plaintext) is not None
    assert lookups[0] == 1
    assert await access.authenticate_key(plaintext[:-2] + "zz") is None  # bad keys: no cache
    await access.revoke_api_key(admin, "ta", key.key_id)
    assert await access.authenticate_key(plaintext) is None

    key2, plaintext2 = await access.create_system_key(
        role=Role.CRM, tenant_id="ta", name="crm2", actor="t"
    )
    assert await access.authenticate_key(plaintext2) is not None
    await access.update_tenant(admin, "ta", TenantChanges(status=TenantStatus.SUSPENDED))
    assert await access.authenticate_key(plaintext2) is None
    await access.update_tenant(admin, "ta", TenantChanges(status=TenantStatus.ACTIVE))
    assert await access.authenticate_key(plaintext2) is not None

    # Revoked by another process (straight in the database): trusted until the TTL ends.
    other = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec(SECRET),
        now=lambda: now[0],
        token_ttl_seconds=600,
    )
    await other.revoke_api_key(admin, "ta", key2.key_id)
    now[0] = T0 + timedelta(seconds=29)
    assert await access.authenticate_key(plaintext2) is not None
    now[0] = T0 + timedelta(seconds=31)
    assert await access.authenticate_key(plaintext2) is None


async def test_requests_that_miss_the_key_cache_together_share_one_look_up(
    engine: AsyncEngine,
) -> None:
    """When a busy key's entry expires, the requests arriving meanwhile wait for one read
    (not one session and touch each); a revocation during that read is not undone by it."""
    sessions = create_session_factory(engine)
    lookups = [0]
    gate = asyncio.Event()

    class SlowUnitOfWork(SqlAccessUnitOfWork):
        async def __aenter__(self) -> SlowUnitOfWork:
            lookups[0] += 1
            await super().__aenter__()
            read = self.api_keys.get

            async def read_then_hold(key_id: str) -> ApiKey | None:
                key = await read(key_id)
                await gate.wait()  # the key has been read: hold the look-up here
                return key

            self.api_keys.get = read_then_hold  # type: ignore[method-assign]
            return self

    slow = [False]

    def uow() -> SqlAccessUnitOfWork:
        return SlowUnitOfWork(sessions) if slow[0] else SqlAccessUnitOfWork(sessions)

    access = AccessService(uow, JwtCodec(SECRET), now=lambda: T0, token_ttl_seconds=600)
    admin = PLATFORM_ADMIN
    await access.create_tenant(admin, tenant_id="ta", name="A")
    key, plaintext = await access.create_system_key(
        role=Role.CRM, tenant_id="ta", name="crm", actor="t"
    )
    slow[0] = True
    waiting = [asyncio.create_task(access.authenticate_key(plaintext)) for _ in range(20)]
    await asyncio.sleep(0.05)
    waiting[0].cancel()  # one caller going away does not cancel the shared read
    gate.set()
    results = await asyncio.gather(*waiting[1:])
    assert lookups[0] == 1
    assert all(r is not None and r.tenant_id == "ta" for r in results)

    # A revocation while a read is in flight: the read's answer is not cached afterwards.
    access._keys.drop_key(key.key_id)
    gate.clear()
    reading = asyncio.create_task(access.authenticate_key(plaintext))
    await asyncio.sleep(0.05)
    slow[0] = False
    await access.revoke_api_key(admin, "ta", key.key_id)
    gate.set()
    await reading
    assert await access.authenticate_key(plaintext) is None


async def access_with_a_key(
    uow: Callable[[], SqlAccessUnitOfWork], now: list[datetime]
) -> tuple[AccessService, ApiKey, str]:
    """An access service on *uow* and clock ``now[0]``, tenant ``ta`` and a CRM key of it."""
    access = AccessService(uow, JwtCodec(SECRET), now=lambda: now[0], token_ttl_seconds=600)
    await access.create_tenant(PLATFORM_ADMIN, tenant_id="ta", name="A")
    key, plaintext = await access.create_system_key(
        role=Role.CRM, tenant_id="ta", name="crm", actor="t"
    )
    return access, key, plaintext


@dataclass
class HeldTouches:
    """An access service whose key-use records wait for :attr:`hold` (and may fail)."""

    access: AccessService
    now: list[datetime]
    hold: asyncio.Event
    started: asyncio.Event
    failing: list[bool]
    done: list[str]


async def held_touches(engine: AsyncEngine) -> tuple[HeldTouches, str, str]:
    """The rig, tenant ``ta`` and a CRM key: ``(rig, key_id, plaintext)``."""
    sessions = create_session_factory(engine)
    hold, started, failing, done = asyncio.Event(), asyncio.Event(), [False], []

    class HeldTouchUnitOfWork(SqlAccessUnitOfWork):
        async def __aenter__(self) -> HeldTouchUnitOfWork:
            await super().__aenter__()
            touch = self.api_keys.touch

            async def held_touch(key_id: str, at: datetime, *, unless_after: datetime) -> None:
                started.set()
                await hold.wait()
                if failing[0]:
                    raise RuntimeError("database is locked")
                await touch(key_id, at, unless_after=unless_after)
                done.append(key_id)

            self.api_keys.touch = held_touch  # type: ignore[method-assign]
            return self

    now = [T0]
    access, key, plaintext = await access_with_a_key(lambda: HeldTouchUnitOfWork(sessions), now)
    return HeldTouches(access, now, hold, started, failing, done), key.key_id, plaintext


async def test_a_request_does_not_wait_for_the_keys_last_use_write(engine: AsyncEngine) -> None:
    """The look-up answers once the key is read and checked; the last-use touch, which may
    wait behind the database's writer, follows on its own and a failed one only logs."""
    rig, key_id, plaintext = await held_touches(engine)
    access = rig.access
    found = await asyncio.wait_for(access.authenticate_key(plaintext), timeout=10)
    assert found is not None
    assert found.tenant_id == "ta"
    await asyncio.wait_for(rig.started.wait(), timeout=10)  # the touch is under way, held
    rig.hold.set()
    for _ in range(200):  # the touch lands after the answer
        (listed,) = await access.list_api_keys(PLATFORM_ADMIN, "ta")
        if listed.last_used_at is not None:
            break
        await asyncio.sleep(0.01)
    assert listed.key_id == key_id
    assert listed.last_used_at == T0

    # A touch that fails after answering costs the request nothing; the next one still works.
    rig.failing[0] = True
    rig.started.clear()
    access._keys.drop_key(key_id)
    rig.now[0] = T0 + timedelta(minutes=5)
    assert await access.authenticate_key(plaintext) is not None
    await asyncio.wait_for(rig.started.wait(), timeout=10)
    await asyncio.gather(*access._key_tasks)  # the failed touch ended (logged, not raised)
    (listed,) = await access.list_api_keys(PLATFORM_ADMIN, "ta")
    assert listed.last_used_at == T0
    assert await access.authenticate_key(plaintext) is not None


@pytest.mark.parametrize("pooled", [True, False], ids=["read-pool", "orm-session"])
async def test_the_tenant_status_read_names_each_status_through_the_pool_or_a_session(
    engine: AsyncEngine, pooled: bool
) -> None:
    """The status cache's store read answers the same through the service's read pool
    (the loop's own SQLite connection, or asyncpg) as through an ORM session."""
    sessions = create_session_factory(engine)
    pool = read_pool_for(engine) if pooled else None
    assert pool is not None or not pooled
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec(SECRET),
        now=lambda: T0,
        token_ttl_seconds=60,
    )
    admin = PLATFORM_ADMIN
    read = tenant_status_read(sessions, pool)
    try:
        await access.create_tenant(admin, tenant_id="ta", name="A")
        await access.create_tenant(admin, tenant_id="tb", name="B")
        await access.update_tenant(admin, "tb", TenantChanges(status=TenantStatus.SUSPENDED))
        assert await read("ta") is TenantStatus.ACTIVE
        assert await read("tb") is TenantStatus.SUSPENDED
        assert await read("zz-missing") is None
        cache = TenantStatusCache(read, ttl=0)
        assert await cache.is_active("ta")
        assert not await cache.is_active("tb")
    finally:
        if pool is not None:
            await pool.close()


async def test_shutdown_settles_the_key_use_records_in_flight(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the database closes, shutdown waits for a key-use record in flight, and
    cancels one that outlasts ``SETTLE_SECONDS`` (a late commit would reopen the database)."""
    rig, key_id, plaintext = await held_touches(engine)
    access = rig.access
    assert await access.authenticate_key(plaintext) is not None
    settling = asyncio.create_task(access.settle())
    await asyncio.wait_for(rig.started.wait(), timeout=10)
    await asyncio.sleep(0.05)
    assert not settling.done()  # waits for the record
    rig.hold.set()
    await asyncio.wait_for(settling, timeout=10)
    assert rig.done == [key_id]

    rig.hold.clear()
    monkeypatch.setattr(tenants_service, "SETTLE_SECONDS", 0.05)
    access._keys.drop_key(key_id)
    rig.now[0] = T0 + timedelta(minutes=5)
    assert await access.authenticate_key(plaintext) is not None
    await asyncio.wait_for(access.settle(), timeout=10)
    assert not access._key_tasks  # cancelled, not left to commit later
    assert rig.done == [key_id]


async def test_a_busy_key_is_re_read_before_it_expires_and_no_request_waits_for_it(
    engine: AsyncEngine,
) -> None:
    """Past two thirds of the key cache's TTL a request answers from the cache and starts
    one re-read in the background; a re-read that finds the key revoked drops it."""
    sessions = create_session_factory(engine)
    gate = asyncio.Event()
    gate.set()
    reads = [0]

    class GatedReadUnitOfWork(SqlAccessUnitOfWork):
        async def __aenter__(self) -> GatedReadUnitOfWork:
            await super().__aenter__()
            read = self.api_keys.get

            async def gated(key_id: str) -> ApiKey | None:
                reads[0] += 1
                await gate.wait()
                return await read(key_id)

            self.api_keys.get = gated  # type: ignore[method-assign]
            return self

    now = [T0]
    access, key, plaintext = await access_with_a_key(lambda: GatedReadUnitOfWork(sessions), now)
    assert await access.authenticate_key(plaintext) is not None
    assert reads[0] == 1
    gate.clear()  # the re-read will hang until released
    now[0] = T0 + timedelta(seconds=25)
    for _ in range(3):
        assert await asyncio.wait_for(access.authenticate_key(plaintext), timeout=10) is not None
    assert reads[0] == 2  # one re-read, held, and nobody waited for it
    gate.set()
    await asyncio.gather(*access._key_tasks)
    now[0] = T0 + timedelta(seconds=40)  # past the first entry's end: the re-read renewed it
    assert await access.authenticate_key(plaintext) is not None
    assert reads[0] == 2

    other = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        JwtCodec(SECRET),
        now=lambda: T0,
        token_ttl_seconds=60,
    )
    await other.revoke_api_key(PLATFORM_ADMIN, "ta", key.key_id)  # elsewhere: not seen at once
    now[0] = T0 + timedelta(seconds=50)
    assert await access.authenticate_key(plaintext) is not None  # trusted until its TTL ends
    await asyncio.gather(*access._key_tasks)  # the re-read found it revoked
    assert await access.authenticate_key(plaintext) is None
