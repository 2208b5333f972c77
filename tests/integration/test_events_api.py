"""Events, webhooks, call params, wrap-up and export through the real app on both databases:
long-poll wakes on commit, SSE resumes with Last-Event-ID and pings, extras are off until
switched on, sandbox samples, redeliver/replay, rotation, and every cross-tenant call is 404."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import gc
import io
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from ccbridge.api.schemas.events import DATA_MODELS, EventOut
from ccbridge.bootstrap import run_api
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.floor import SqlFloorAlertStore
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository
from ccbridge.domain.agents.state import AgentState, AgentStatus
from ccbridge.domain.calls.model import CallRecord, CallSegment, CallState
from ccbridge.domain.floor.alerts import FloorFacts, SeatFact, breaches, opened
from ccbridge.domain.floor.rules import platform_defaults
from ccbridge.domain.journal.types import EventType, NewEvent
from ccbridge.domain.leases.model import SeatKind
from ccbridge.services.event_ports import (
    DeliveryAttempt,
    EventSettings,
    WebhookEndpoint,
    WebhookSecret,
)
from ccbridge.services.seat_ports import AgentRecord, SeatSession
from ccbridge.settings import Settings
from tests.fakes.seats import FakeClock
from tests.support.event_rig import (
    ADMIN,
    EventWorld,
    Receiver,
    allow_loopback,
    build_world,
    eventually,
    poll_all,
    serve,
)

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _call(call_id: str, tenant: str = "t1", **kw: Any) -> CallRecord:
    base = CallRecord(
        call_id=call_id,
        started_at=T0,
        tenant=tenant,
        caller="13800138000",
        callee="4008001234",
        skill_group="t1-sales",
        agent_no="1101",
        agent_interface="Local/1101@agents",
        queued_at=T0 + timedelta(seconds=1),
        answered_at=T0 + timedelta(seconds=5),
        state=CallState.CONNECTED,
        segments=(
            CallSegment(
                1,
                "1101",
                "Local/1101@agents",
                "t1-sales",
                "13800138000",
                "4008001234",
                "queue",
                T0 + timedelta(seconds=5),
            ),
        ),
        extras=(("ivr_choice", "2"), ("crm_customer", "VIP-7")),
        version=1,
    )
    return replace(base, **kw)


@pytest.fixture
async def world(engine: AsyncEngine) -> EventWorld:
    return await build_world(engine, sse_ping_seconds=0.2)


@pytest.fixture
async def http(world: EventWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=world.app), base_url="http://t"
    ) as client:
        yield client


async def test_poll_pages_by_cursor_and_long_poll_wakes_on_commit(
    world: EventWorld, http: httpx.AsyncClient
) -> None:
    crm = world.keys["t1:crm"]
    await world.calls.upsert_many([_call("c1"), _call("c2")])
    items = await poll_all(http, crm)
    assert [e["type"] for e in items] == ["call.queued", "call.answered"] * 2
    resp = await http.get(
        "/api/v1/events", params={"after": items[1]["cursor"], "limit": 1}, headers=crm
    )
    assert [e["id"] for e in resp.json()["items"]] == [items[2]["id"]]
    last = items[-1]["cursor"]

    # wait=25 (the most) and a hang guard: c3 in the answer means the commit woke it.
    poll = asyncio.create_task(
        http.get("/api/v1/events", params={"after": last, "wait": 25}, headers=crm)
    )
    await eventually(lambda: world.hub.watched("t1"))  # the long-poll is waiting ...
    assert not poll.done()
    await world.calls.upsert_many([_call("c3")])  # ... until this commit
    async with asyncio.timeout(30):
        resp = await poll
    assert resp.status_code == 200
    assert [e["call_id"] for e in resp.json()["items"]] == ["c3", "c3"]
    resp = await http.get(
        "/api/v1/events", params={"after": resp.json()["next_after"], "wait": 1}, headers=crm
    )
    assert resp.json()["items"] == []  # nothing came: timed out empty
    bad = await http.get("/api/v1/events", params={"after": "-1"}, headers=crm)
    assert bad.status_code == 422


async def test_sse_resumes_with_last_event_id_and_pings(world: EventWorld) -> None:
    crm = world.keys["t1:crm"]
    await world.calls.upsert_many([_call("c1"), _call("c2")])
    async with serve(world.app) as url, httpx.AsyncClient(base_url=url, timeout=None) as http:
        all_items = await poll_all(http, crm)
        resume_after = all_items[1]["cursor"]
        lines: list[str] = []
        headers = {**crm, "Last-Event-ID": resume_after}
        async with http.stream("GET", "/api/v1/events/stream", headers=headers) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            async for line in resp.aiter_lines():
                lines.append(line)
                if line == ": ping":
                    break
    ids = [line[4:] for line in lines if line.startswith("id: ")]
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert ids == [e["cursor"] for e in all_items[2:]]
    assert data == all_items[2:]
    assert ": ping" in lines


async def test_closing_the_hub_ends_streams_and_long_polls(world: EventWorld) -> None:
    """Shutdown: an open SSE stream ends (after what is committed) and a long-poll answers."""
    crm = world.keys["t1:crm"]
    await world.calls.upsert_many([_call("c1")])
    async with serve(world.app) as url, httpx.AsyncClient(base_url=url, timeout=None) as http:
        lines: list[str] = []

        async def read_stream() -> None:
            async with http.stream("GET", "/api/v1/events/stream", headers=crm) as resp:
                async for line in resp.aiter_lines():
                    lines.append(line)

        stream = asyncio.create_task(read_stream())
        await eventually(lambda: sum(ln.startswith("id: ") for ln in lines) == 2)
        await eventually(lambda: world.hub.waiting("t1") == 1)  # the stream waits for more
        poll = asyncio.create_task(
            http.get("/api/v1/events", params={"after": "999", "wait": 25}, headers=crm)
        )
        await eventually(lambda: world.hub.waiting("t1") == 2)  # and so does the long-poll
        world.hub.close()
        async with asyncio.timeout(20):  # hang guards: without close() both wait for more
            await stream
            resp = await poll
    assert resp.status_code == 200
    assert resp.json()["items"] == []
    assert [ln for ln in lines if ln.startswith("event: ")] == [
        "event: call.queued",
        "event: call.answered",
    ]


async def test_extras_are_off_until_the_tenant_switches_them_on(
    world: EventWorld, http: httpx.AsyncClient
) -> None:
    crm, admin = world.keys["t1:crm"], world.keys["t1:tenant_admin"]
    await world.calls.upsert_many([_call("c1")])
    (first, *_) = await poll_all(http, crm)
    assert first["data"]["extras"] == {}
    params = (await http.get("/api/v1/calls/c1/params", headers=crm)).json()
    assert params["extras"] == {}
    assert params["params"]["caller"] == "+8613800138000"
    assert params["params"]["caller_original"] == "13800138000"
    resp = await http.put("/api/v1/events/settings", json={"extras": ["ivr"]}, headers=admin)
    assert resp.status_code == 200, resp.text
    assert (await http.put("/api/v1/events/settings", json={}, headers=crm)).status_code == 403
    (first, *_) = await poll_all(http, crm)
    assert first["data"]["extras"] == {"ivr_choice": "2"}
    params = (await http.get("/api/v1/calls/c1/params", headers=crm)).json()
    assert params["extras"] == {"ivr_choice": "2"}


async def test_sandbox_samples_and_export(world: EventWorld, http: httpx.AsyncClient) -> None:
    admin, crm = world.keys["t1:tenant_admin"], world.keys["t1:crm"]
    assert (await http.post("/api/v1/events/test", headers=admin)).status_code == 409
    await http.put("/api/v1/events/settings", json={"sandbox": True}, headers=admin)
    resp = await http.post("/api/v1/events/test", headers=admin)
    assert resp.status_code == 201, resp.text
    samples = resp.json()["items"]
    assert [e["type"] for e in samples] == [
        "call.queued",
        "call.ringing",
        "call.answered",
        "call.ended",
    ]
    assert all(e["data"]["sandbox"] is True for e in samples)
    assert [e["id"] for e in await poll_all(http, crm)] == [e["id"] for e in samples]

    await world.calls.upsert_many([_call("c1"), _call("c0", started_at=T0 - timedelta(days=2))])
    window = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat()}
    resp = await http.get("/api/v1/events/export/calls", params=window, headers=crm)
    assert resp.status_code == 200
    assert resp.content.startswith(codecs.BOM_UTF8)  # zh-CN Excel needs it to read UTF-8
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert [(r["call_id"], r["agent_no"], r["skill_group"], r["caller"]) for r in rows] == [
        ("c1", "1101", "t1-sales", "+8613800138000")
    ]
    resp = await http.get(
        "/api/v1/events/export/calls", params={**window, "format": "json"}, headers=crm
    )
    assert [json.loads(line)["callee"] for line in resp.text.splitlines()] == ["+864008001234"]


async def test_wrapup_by_the_agent_of_the_call(world: EventWorld, http: httpx.AsyncClient) -> None:
    admin = world.keys["t1:tenant_admin"]
    await world.calls.upsert_many([_call("c1")])
    body = {"agent_no": "1101", "disposition": "resolved", "notes": "已解决", "submission_id": "s1"}
    resp = await http.post("/api/v1/calls/c1/wrapup", json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    event = resp.json()
    assert event["type"] == "wrapup.submitted"
    assert event["data"]["params"]["agent_no"] == "1101"
    again = await http.post("/api/v1/calls/c1/wrapup", json=body, headers=admin)
    assert again.json()["id"] == event["id"]  # idempotent by submission_id
    other = await http.post(
        "/api/v1/calls/c1/wrapup", json={**body, "agent_no": "9999"}, headers=admin
    )
    assert other.status_code == 409
    crm_try = await http.post("/api/v1/calls/c1/wrapup", json=body, headers=world.keys["t1:crm"])
    assert crm_try.status_code == 403
    t2 = await http.post(
        "/api/v1/calls/c1/wrapup", json=body, headers=world.keys["t2:tenant_admin"]
    )
    assert t2.status_code == 404


async def test_other_tenants_get_nothing_and_404(
    world: EventWorld, http: httpx.AsyncClient
) -> None:
    await world.calls.upsert_many([_call("c1")])
    t2 = world.keys["t2:tenant_admin"]
    assert await poll_all(http, world.keys["t2:crm"]) == []
    assert (
        await http.get("/api/v1/events", params={"tenant": "t1"}, headers=t2)
    ).status_code == 404
    assert (await http.get("/api/v1/calls/c1/params", headers=t2)).status_code == 404
    await allow_loopback(world, "t1")
    ep, _ = await world.webhooks.create(ADMIN, "t1", "http://127.0.0.1:9/hook", [])
    for method, path in [
        ("GET", f"/api/v1/webhooks/{ep.id}"),
        ("PATCH", f"/api/v1/webhooks/{ep.id}"),
        ("DELETE", f"/api/v1/webhooks/{ep.id}"),
        ("GET", f"/api/v1/webhooks/{ep.id}/deliveries"),
        ("POST", f"/api/v1/webhooks/{ep.id}/rotate-secret"),
        ("POST", f"/api/v1/webhooks/{ep.id}/replay"),
    ]:
        body = {"call_id": "c1"} if path.endswith("replay") else {}
        resp = await http.request(method, path, json=body, headers=t2)
        assert resp.status_code == 404, (method, path, resp.text)
    platform = world.keys["platform"]
    assert (await http.get("/api/v1/events", headers=platform)).status_code == 422
    ok = await http.get("/api/v1/events", params={"tenant": "t1"}, headers=platform)
    assert len(ok.json()["items"]) == 2


async def test_ssrf_guard_refuses_private_targets_unless_allow_listed(
    world: EventWorld, http: httpx.AsyncClient
) -> None:
    admin = world.keys["t1:tenant_admin"]
    for url in (
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest",
        "https://10.0.0.8/hook",
        "http://crm.example.com/hook",
    ):
        resp = await http.post("/api/v1/webhooks", json={"url": url}, headers=admin)
        assert resp.status_code == 422, (url, resp.text)
        assert resp.json()["errors"][0]["field"] == "url"
    # Opening a private network is the platform's decision: a tenant admin cannot.
    opened = {"allow_private": ["127.0.0.0/8"]}
    denied = await http.put("/api/v1/events/settings", json=opened, headers=admin)
    assert denied.status_code == 403, denied.text
    assert (await http.get("/api/v1/events/settings", headers=admin)).json()["allow_private"] == []
    platform = world.keys["platform"]
    done = await http.put(
        "/api/v1/events/settings", params={"tenant": "t1"}, json=opened, headers=platform
    )
    assert done.status_code == 200, done.text
    # The tenant admin may still switch extras, sending the list back unchanged.
    same = {"extras": ["ivr"], "allow_private": ["127.0.0.0/8"]}
    assert (await http.put("/api/v1/events/settings", json=same, headers=admin)).status_code == 200
    resp = await http.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=admin
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["secret"].startswith("whsec_")
    bad = await http.put(
        "/api/v1/events/settings",
        params={"tenant": "t1"},
        json={"allow_private": ["10.0.0.0/8", "nonsense"]},
        headers=platform,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.allow_private"


async def test_redeliver_replay_rotation_and_delivery_log(world: EventWorld) -> None:
    admin = world.keys["t1:tenant_admin"]
    await allow_loopback(world, "t1")
    receiver = Receiver()
    async with (
        serve(receiver) as url,
        serve(world.app) as api,
        httpx.AsyncClient(base_url=api) as http,
    ):
        resp = await http.post(
            "/api/v1/webhooks",
            json={"url": f"{url}/h", "event_types": ["call.answered"]},
            headers=admin,
        )
        hook = resp.json()
        old_secret = hook["secret"]
        dispatcher = world.dispatcher(idle_wait=0.05, refresh=0.05)
        task = asyncio.create_task(dispatcher.run())
        try:
            await world.calls.upsert_many([_call("c1")])
            await eventually(lambda: len(receiver.delivered()) == 1)
            assert receiver.delivered()[0].envelope["type"] == "call.answered"  # filtered
            rotated = await http.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret", headers=admin)
            new_secret = rotated.json()["secret"]
            assert rotated.json()["secrets_valid"] == 2
            cursor = receiver.delivered()[0].envelope["cursor"]
            resp = await http.post(
                f"/api/v1/webhooks/{hook['id']}/redeliver",
                json={"cursors": [int(cursor)]},
                headers=admin,
            )
            assert resp.status_code == 202
            await eventually(lambda: len(receiver.delivered()) == 2)
            again = receiver.delivered()[1]
            assert again.headers["webhook-id"] == receiver.delivered()[0].headers["webhook-id"]
            for secret in (old_secret, new_secret):  # both verify during the overlap
                assert Webhook(secret).verify(again.body, again.headers)
            resp = await http.post(
                f"/api/v1/webhooks/{hook['id']}/replay", json={"call_id": "c1"}, headers=admin
            )
            assert resp.json() == {"queued": 2}  # every event of the call, filter or not
            await eventually(lambda: len(receiver.delivered()) == 4)
            assert [r.envelope["type"] for r in receiver.delivered()[2:]] == [
                "call.queued",
                "call.answered",
            ], [(r.envelope["type"], r.envelope["cursor"]) for r in receiver.delivered()]

            async def delivery_log() -> list[dict[str, Any]]:
                path = f"/api/v1/webhooks/{hook['id']}/deliveries"
                return list((await http.get(path, headers=admin)).json())

            # The receiver answers before the worker records the outcome: wait for the log.
            async with asyncio.timeout(5):
                log = await delivery_log()
                while any(d["status"] == "queued" for d in log):
                    await asyncio.sleep(0.01)
                    log = await delivery_log()
            assert [d["status"] for d in log] == ["succeeded"] * 4
            assert sum(d["manual"] for d in log) == 3
            resp = await http.patch(
                f"/api/v1/webhooks/{hook['id']}", json={"enabled": False}, headers=admin
            )
            assert resp.json()["enabled"] is False
        finally:
            task.cancel()


async def test_agent_state_changes_are_journalled_with_the_session_write(
    world: EventWorld, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    sessions = create_session_factory(engine)
    await AgentRepository(sessions).create(
        AgentRecord("t1", "1101", "坐席 1101", True, "PJSIP/1101", SeatKind.INBOUND)
    )
    repo = SeatSessionRepository(sessions, world.journal)
    session = SeatSession(
        id="s1",
        tenant_id="t1",
        agent_no="1101",
        kind=SeatKind.INBOUND,
        interface="PJSIP/1101",
        signed_in_at=T0,
        signed_out_at=None,
        status=AgentStatus(since=T0, state=AgentState.NOT_READY, reason="签入"),
        version=1,
    )
    await repo.open(session)
    ready = await repo.save_status(
        replace(
            session, status=AgentStatus(since=T0 + timedelta(seconds=5), state=AgentState.READY)
        )
    )
    same = await repo.save_status(ready)  # no state change: no event
    await repo.close(same, T0 + timedelta(minutes=1))
    items = await poll_all(http, world.keys["t1:crm"])
    assert [(e["type"], e["data"]["state"], e["data"]["previous_state"]) for e in items] == [
        ("agent.state_changed", "not_ready", "signed_out"),
        ("agent.state_changed", "ready", "not_ready"),
        ("agent.state_changed", "signed_out", "ready"),
    ]
    assert all(e["data"]["agent_no"] == "1101" for e in items)
    assert await poll_all(http, world.keys["t2:crm"]) == []


async def test_recording_hook_and_every_payload_matches_its_schema(
    world: EventWorld, http: httpx.AsyncClient
) -> None:
    await world.calls.upsert_many([_call("c1")])
    await world.calls.upsert_many(
        [_call("c1", state=CallState.ENDED, ended_at=T0 + timedelta(minutes=2), version=2)]
    )
    first = await world.events.recording_ready(
        tenant="t1", call_id="c1", recording_id="r-1", url="https://rec/r-1", duration_s=115.0
    )
    again = await world.events.recording_ready(
        tenant="t1", call_id="c1", recording_id="r-1", url="https://rec/r-1", duration_s=115.0
    )
    assert first is not None
    assert again is None  # the recordings module may call twice: one event
    await world.events.update_settings(ADMIN, "t1", EventSettings(sandbox=True))
    await world.events.emit_samples(ADMIN, "t1")
    items = await poll_all(http, world.keys["t1:crm"])
    types = {e["type"] for e in items}
    assert {"call.queued", "call.answered", "call.ended", "recording.ready"} <= types
    for env in items:
        EventOut.model_validate(env)
        DATA_MODELS[EventType(env["type"])].model_validate(env["data"])
    rec = next(e for e in items if e["type"] == "recording.ready")
    assert rec["data"]["params"]["agent_no"] == "1101"
    assert rec["data"]["recording_id"] == "r-1"


async def test_retention_jobs_keep_30_days_of_journal_and_delivery_log(engine: AsyncEngine) -> None:
    """The hourly jobs: ``events.prune`` drops journal events recorded over 30 days ago and
    ``webhooks.prune_log`` delivery-log rows as old; a queued redelivery is never dropped."""
    clock = FakeClock(datetime(2026, 11, 1, tzinfo=UTC))
    w = await build_world(engine, clock=clock)
    endpoint = WebhookEndpoint(
        id="ep1",
        tenant="t1",
        url="https://crm.example/h",
        event_types=(),
        secrets=(WebhookSecret("whsec_x", clock.now(), None),),
        enabled=True,
        cursor=0,
        created_at=clock.now(),
    )
    await w.store.add(endpoint)
    old = await w.journal.write([_sample_event("t1", "old")])

    def attempt(status: str) -> DeliveryAttempt:
        return DeliveryAttempt(
            id=0,
            endpoint_id="ep1",
            event_seq=old[0].seq,
            event_id=old[0].id,
            status=status,
            manual=status == "queued",
            attempt=1,
            at=clock.now(),
        )

    for status in ("succeeded", "failed", "queued"):
        await w.store.log(attempt(status))
    clock.advance(days=31)
    await w.journal.write([_sample_event("t1", "new")])
    await w.store.log(attempt("succeeded"))

    assert await w.events.prune() == 1
    assert [e.call_id for e in await w.journal.list_after("t1", 0, 10)] == ["new"]
    assert await w.webhooks.prune_log() == 2
    left = await w.store.deliveries("ep1")
    assert sorted(a.status for a in left) == ["queued", "succeeded"]
    assert all(a.status == "queued" or a.at == clock.now() for a in left)


def _sample_event(tenant: str, key: str) -> NewEvent:
    return NewEvent(
        tenant=tenant,
        type=EventType.CALL_QUEUED,
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        key=key,
        call_id=key,
        data={"call_id": key, "params": {}, "extras": {}},
    )


async def test_an_api_process_serves_polls_woken_by_the_owner_commits(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ccbridge api` (PostgreSQL): ready once listening; a long-poll there returns when the
    PBX owner (another journal, no shared hub) commits; SQLite refuses it."""
    # The process-wide logging set-up and garbage collector stay the test session's.
    monkeypatch.setattr("ccbridge.bootstrap.configure_logging", lambda *_a, **_k: None)
    monkeypatch.setattr(gc, "freeze", lambda: None)
    url = engine.url.render_as_string(hide_password=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(database_url=url, log_level="WARNING")
    settings.api.host, settings.api.port = "127.0.0.1", port
    if engine.dialect.name != "postgresql":
        with pytest.raises(ValueError, match="PostgreSQL"):
            await run_api(settings)
        return
    owner = await build_world(engine)  # its journal writes; the API process has its own hub
    server = asyncio.create_task(run_api(settings))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/readyz")).status_code == 200
                return False

            for _ in range(200):
                if await ready():
                    break
                await asyncio.sleep(0.05)
            assert await ready()
            poll = asyncio.create_task(
                http.get(
                    "/api/v1/events",
                    params={"after": 0, "wait": 25},
                    headers=owner.keys["t1:crm"],
                    timeout=40,
                )
            )
            await asyncio.sleep(0.3)
            assert not poll.done()
            await owner.journal.write([_sample_event("t1", "from-owner")])
            # A hang guard short of the poll's own 25 s: an answer here was woken by NOTIFY.
            async with asyncio.timeout(20):
                resp = await poll
            assert [e["call_id"] for e in resp.json()["items"]] == ["from-owner"]
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server


async def test_floor_alerts_reach_poll_and_a_webhook_subscribed_to_them(
    world: EventWorld, engine: AsyncEngine
) -> None:
    admin, crm = world.keys["t1:tenant_admin"], world.keys["t1:crm"]
    await allow_loopback(world, "t1")
    receiver = Receiver()
    facts = FloorFacts([SeatFact("1001", AgentState.BREAK, T0, 0)], [], "2026-11-23")
    [breach] = breaches(platform_defaults(), facts, T0 + timedelta(minutes=11))
    alert = opened(breach, "a1", "t1", T0 + timedelta(minutes=11))
    store = SqlFloorAlertStore(create_session_factory(engine), world.journal)
    async with (
        serve(receiver) as url,
        serve(world.app) as api,
        httpx.AsyncClient(base_url=api) as http,
    ):
        kinds = ["floor.alert", "floor.alert_cleared"]
        resp = await http.post(
            "/api/v1/webhooks", json={"url": f"{url}/h", "event_types": kinds}, headers=admin
        )
        assert resp.status_code == 201, resp.text
        task = asyncio.create_task(world.dispatcher(idle_wait=0.05, refresh=0.05).run())
        try:
            await world.calls.upsert_many([_call("c1")])  # not subscribed: never delivered
            await store.raise_alerts([alert])
            await store.clear_alerts([alert], T0 + timedelta(minutes=12))
            await eventually(lambda: len(receiver.delivered()) == 2)
        finally:
            task.cancel()
        delivered = [r.envelope for r in receiver.delivered()]
        assert [e["type"] for e in delivered] == kinds
        assert [e["data"]["id"] for e in delivered] == ["a1", "a1"]
        polled = [e for e in await poll_all(http, crm) if e["type"].startswith("floor.")]
        assert polled == delivered
        for envelope in polled:
            DATA_MODELS[EventType(envelope["type"])].model_validate(envelope["data"])
