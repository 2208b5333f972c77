"""The event journal, its readers and webhooks wired over a test database, plus a real HTTP
receiver: what the integration tests of issue 7 share."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import EventApi, create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.journal import SqlEventSettings, SqlJournal
from ccbridge.db.webhooks import SqlWebhookStore
from ccbridge.domain.access import ALL_SCOPES, Principal, Role
from ccbridge.domain.time import Clock, SystemClock
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.event_hub import EventHub
from ccbridge.services.event_ports import EventSettings, WebhookSender
from ccbridge.services.events import EventService
from ccbridge.services.tenants import AccessService
from ccbridge.services.webhooks import WebhookDispatcher, WebhookService
from ccbridge.webhook_http.sender import HttpWebhookSender
from tests.support.call_writes import JournalledCalls

SECRET = "event-tests-secret-0123456789abcdef0123"
ADMIN = Principal(actor="test:admin", role=Role.PLATFORM_ADMIN, tenant_id=None, scopes=ALL_SCOPES)


def auth(key: str) -> dict[str, str]:
    """Bearer header for an API key."""
    return {"Authorization": f"Bearer {key}"}


@dataclass
class EventWorld:
    """Everything behind /api/v1/events and webhooks, over one database."""

    hub: EventHub
    journal: SqlJournal
    calls: JournalledCalls
    events: EventService
    store: SqlWebhookStore
    webhooks: WebhookService
    access: AccessService
    clock: Clock
    sender: WebhookSender
    app: Any
    keys: dict[str, dict[str, str]] = field(default_factory=dict)

    def dispatcher(self, **kw: Any) -> WebhookDispatcher:
        """A fresh dispatcher over the same database (a restarted process)."""
        return WebhookDispatcher(
            self.store, self.journal, self.events, self.sender, self.hub, self.clock, **kw
        )


async def build_world(
    engine: AsyncEngine,
    *,
    clock: Clock | None = None,
    sender: WebhookSender | None = None,
    sse_ping_seconds: float = 15.0,
) -> EventWorld:
    """Wire the services like bootstrap does; create tenants t1, t2 and their keys."""
    clock = clock or SystemClock()
    sessions = create_session_factory(engine)
    hub = EventHub()
    journal = SqlJournal(sessions, on_commit=hub.publish, now=clock.now)
    calls = JournalledCalls(engine, journal)
    codec = JwtCodec(SECRET)
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=SystemClock().now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    events = EventService(journal, hub, SqlEventSettings(sessions), calls, audit, clock.now)
    store = SqlWebhookStore(sessions)
    sender = sender or HttpWebhookSender()
    webhooks = WebhookService(store, events, sender, journal, audit, clock)
    app = create_app(
        call_store=calls,
        readiness=Readiness(),
        access=access,
        jwt=codec,
        event_api=EventApi(
            events=events, webhooks=webhooks, clock=clock, sse_ping_seconds=sse_ping_seconds
        ),
    )
    world = EventWorld(hub, journal, calls, events, store, webhooks, access, clock, sender, app)
    _, platform = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    world.keys["platform"] = auth(platform)
    for tid in ("t1", "t2"):
        await access.create_tenant(ADMIN, tenant_id=tid, name=tid.upper())
        for role in (Role.TENANT_ADMIN, Role.CRM):
            _, key = await access.create_system_key(
                role=role, tenant_id=tid, name=role.value, actor="test"
            )
            world.keys[f"{tid}:{role.value}"] = auth(key)
    return world


async def allow_loopback(world: EventWorld, tenant: str, *, sandbox: bool = False) -> None:
    """Let *tenant*'s webhooks reach 127.0.0.1 (the test receivers)."""
    await world.events.update_settings(
        ADMIN, tenant, EventSettings(frozenset(), sandbox, ("127.0.0.0/8",))
    )


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run an ASGI app with uvicorn on an ephemeral port; yield its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await task


@dataclass
class Received:
    """One webhook request as the receiver saw it."""

    headers: dict[str, str]
    body: bytes
    answered: int | None = None
    """The status the receiver answered (``None``: never answered)."""

    @property
    def envelope(self) -> dict[str, Any]:
        """The decoded JSON body."""
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """A CRM's webhook endpoint: records every request; can be down or slow."""

    status: Callable[[], int] = lambda: 204
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    before_answer: Callable[[Received], Awaitable[None]] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        got = Received(headers, body)
        self.received.append(got)
        self.arrived.set()
        if self.before_answer is not None:
            await self.before_answer(got)
        if self.delay:
            await asyncio.sleep(self.delay)
        code = self.status()
        got.answered = code
        await send({"type": "http.response.start", "status": code, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def delivered(self) -> list[Received]:
        """Requests answered with a 2xx, in arrival order."""
        return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]

    def ids(self) -> list[str]:
        """``webhook-id`` of every request, in arrival order (duplicates kept)."""
        return [r.headers["webhook-id"] for r in self.received]


async def poll_all(client: httpx.AsyncClient, who: dict[str, str], after: int = 0) -> list[Any]:
    """Read the whole journal by keyset pages."""
    out: list[Any] = []
    while True:
        resp = await client.get("/api/v1/events", params={"after": after, "limit": 50}, headers=who)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        out.extend(page["items"])
        if not page["items"]:
            return out
        after = int(page["next_after"])


async def eventually(cond: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until *cond* holds (checked every 10 ms); fail after *within* seconds."""
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def cursor_reaches(world: EventWorld, tenant: str, seq: int, within: float = 5.0) -> None:
    """Wait until every endpoint of *tenant* has committed delivery up to *seq*."""
    async with asyncio.timeout(within):
        while any(e.cursor < seq for e in await world.store.list(tenant)):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(coro: Awaitable[None]) -> AsyncIterator[asyncio.Future[None]]:
    """Run *coro* as a task for the block; cancel it and wait for it afterwards."""
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
