"""Inbound numbers and routing policies through the HTTP API and the FastAGI server, wired as
``ccbridge serve`` wires them, on SQLite and PostgreSQL.

The issue's done-when: a number assigned through the API routes the next call (here through
FastAGI and the fake PBX) without a restart; another tenant's number answers 404; every
assignment change is audited; a policy's split, VIP priority, overflow and maximum wait reach
the channel; a call-back request is stored and journalled.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import RoutingApi, create_app
from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.agi.server import DONE_VARIABLE, FastAgiServer
from ccbridge.asterisk.callback_agi import SCRIPT as CALLBACK
from ccbridge.asterisk.inbound_route import SCRIPT
from ccbridge.bootstrap import (
    IvrWiring,
    build_access_service,
    build_calendar_service,
    build_ivr_fastagi,
)
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.journal import SqlJournal
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.routing import CallHistoryRepository
from ccbridge.db.tables import CallRow
from ccbridge.domain.access import ALL_SCOPES, Principal, Role
from ccbridge.domain.inbound_numbers import NumberTarget, TargetType
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.settings import AgiSettings, IvrSettings, Settings
from ccbridge.testing.demo import seed_numbers
from ccbridge.testing.fake_agi import AgiCall, AgiResult, FakeAgiClient, split_args
from ccbridge.testing.fake_pbx import FakeAsterisk
from tests.fakes.seats import FakeClock, RecordingQueues
from tests.support.api_rig import auth, create_tenants, seat_api

SECRET = "integration-test-secret-0123456789abcdef"
DID = "4008001234"
T1 = "/api/v1/tenants/t1"
T2 = "/api/v1/tenants/t2"


@dataclass
class World:
    client: httpx.AsyncClient
    agi: FastAgiServer
    ivr: IvrWiring
    platform: dict[str, str]
    t1: dict[str, str]
    t2: dict[str, str]

    async def call(self, did: str = DID, caller: str = "13800138000", **kw: Any) -> AgiResult:
        url = f"agi://127.0.0.1:{self.agi.port}/{SCRIPT}"
        return await FakeAgiClient(
            url, AgiCall(dnid=did, extension=did, callerid=caller, **kw)
        ).run()

    async def audit(self, action: str) -> list[dict[str, Any]]:
        resp = await self.client.get("/api/v1/audit?limit=500", headers=self.platform)
        assert resp.status_code == 200, resp.text
        return [e for e in resp.json()["items"] if e["action"] == action]


@pytest.fixture
async def world(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[World]:
    settings = Settings(
        _env_file=None,
        simulate_pbx=False,
        agi=AgiSettings(port=0),
        ivr=IvrSettings(prompts_dir=tmp_path / "prompts"),
    )
    calendar = build_calendar_service(engine)
    ivr, agi = build_ivr_fastagi(settings, engine, calendar)
    access = build_access_service(settings, engine, tenant_status=ivr.tenant_status)
    sessions = create_session_factory(engine)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    routing = ivr.routing
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=JwtCodec(SECRET),
        seat_api=seat_api(sessions, clock, audit, calendar, RecordingQueues()),
        ivr_api=ivr.service,
        routing_api=RoutingApi(routing.numbers, routing.policies, routing.callbacks),
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    platform = auth(platform_key)
    await agi.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            admins = await create_tenants(client, platform, {"t1": {}, "t2": {}})
            for tid, groups in (("t1", ("sales", "support", "backup")), ("t2", ("service",))):
                for group in groups:
                    resp = await client.post(
                        f"/api/v1/tenants/{tid}/skill-groups",
                        json={"name": group},
                        headers=admins[tid],
                    )
                    assert resp.status_code == 201, resp.text
            yield World(client, agi, ivr, platform, admins["t1"], admins["t2"])
    finally:
        await agi.stop()


def _problem(resp: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    if field is not None:
        assert [e["field"] for e in body["errors"]] == [field], body
    return body


async def test_platform_assigns_tenant_maps_and_every_change_is_audited(world: World) -> None:
    c = world.client
    resp = await c.put(
        f"{T1}/numbers/{DID}", json={"description": "hotline"}, headers=world.platform
    )
    assert resp.status_code == 201, resp.text
    assert (resp.json()["kind"], resp.json()["target"]) == ("400", None)
    again = await c.put(f"{T1}/numbers/{DID}", headers=world.platform)
    assert again.status_code == 200  # held already: nothing changes
    # The tenant admin maps it, but cannot assign or release numbers.
    _problem(await c.put(f"{T1}/numbers/95555", headers=world.t1), 403)
    resp = await c.patch(
        f"{T1}/numbers/{DID}", json={"target": {"type": "group", "id": "sales"}}, headers=world.t1
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["target"] == {"type": "group", "id": "sales"}
    listed = await c.get(f"{T1}/numbers", headers=world.t1)
    assert [n["number"] for n in listed.json()] == [DID]
    _problem(await c.delete(f"{T1}/numbers/{DID}", headers=world.t1), 403)
    # A target the tenant does not have, and a number that is not one, name their field.
    _problem(
        await c.patch(
            f"{T1}/numbers/{DID}",
            json={"target": {"type": "group", "id": "service"}},
            headers=world.t1,
        ),
        422,
        "target.id",
    )
    _problem(
        await c.patch(
            f"{T1}/numbers/{DID}", json={"target": {"type": "flow", "id": "nope"}}, headers=world.t1
        ),
        422,
        "target.id",
    )
    _problem(await c.put(f"{T1}/numbers/40080012", headers=world.platform), 422, "number")
    assert [e["detail"]["kind"] for e in await world.audit("number.assign")] == ["400"]
    (mapped,) = await world.audit("number.map")
    assert mapped["detail"] == {"target": {"type": "group", "id": "sales"}, "before": None}
    assert mapped["tenant_id"] == "t1"
    resp = await c.delete(f"{T1}/numbers/{DID}", headers=world.platform)
    assert resp.status_code == 204
    _problem(await c.get(f"{T1}/numbers/{DID}", headers=world.t1), 404)
    (released,) = await world.audit("number.release")
    assert released["detail"] == {"target": {"type": "group", "id": "sales"}}


async def test_another_tenants_number_answers_404_and_cannot_be_assigned_twice(
    world: World,
) -> None:
    c = world.client
    assert (await c.put(f"{T1}/numbers/{DID}", headers=world.platform)).status_code == 201
    body = _problem(await c.put(f"{T2}/numbers/{DID}", headers=world.platform), 409)
    assert "t1" not in body["detail"]
    (refused,) = await world.audit("number.assign_refused")
    assert refused["tenant_id"] == "t2"
    for method, path, kw in (
        ("GET", f"{T2}/numbers/{DID}", {}),
        ("PATCH", f"{T2}/numbers/{DID}", {"json": {"target": None}}),
        ("GET", f"{T1}/numbers/{DID}", {}),
        ("PATCH", f"{T1}/numbers/{DID}", {"json": {"target": None}}),
        ("GET", f"{T1}/numbers", {}),
    ):
        resp = await c.request(method, path, headers=world.t2, **kw)
        assert resp.status_code == 404, (method, path, resp.text)
    assert (await c.get(f"{T2}/numbers", headers=world.t2)).json() == []


async def test_a_number_assigned_through_the_api_routes_the_next_call_without_a_restart(
    world: World,
) -> None:
    """Through the fake PBX: its caller runs the real FastAGI, then the queue it was given."""
    c = world.client
    url = f"agi://127.0.0.1:{world.agi.port}/{SCRIPT}"
    async with FakeAsterisk(agi_url=url, dids={}, seed=3, time_scale=0.001) as pbx:
        sim = pbx.simulator

        async def place() -> tuple[str | None, bool]:
            outcome = await (await sim.place_call("13900000001", did=DID, talk_seconds=5))
            return outcome.queue, outcome.hung_up_in_ivr

        assert await place() == (None, True)  # nobody holds the number yet: unrouted
        assert (await c.put(f"{T1}/numbers/{DID}", headers=world.platform)).status_code == 201
        sales = {"target": {"type": "group", "id": "sales"}}
        assert (await c.patch(f"{T1}/numbers/{DID}", json=sales, headers=world.t1)).is_success
        assert await place() == ("t1-sales", False)
        support = {"target": {"type": "group", "id": "support"}}
        assert (await c.patch(f"{T1}/numbers/{DID}", json=support, headers=world.t1)).is_success
        assert await place() == ("t1-support", False)
        # A suspended tenant's number is unrouted at once, and routed again when reinstated.
        suspend = await c.patch(T1, json={"status": "suspended"}, headers=world.platform)
        assert suspend.status_code == 200, suspend.text
        assert await place() == (None, True)
        assert (await c.patch(T1, json={"status": "active"}, headers=world.platform)).is_success
        assert await place() == ("t1-support", False)
        assert (await c.delete(f"{T1}/numbers/{DID}", headers=world.platform)).status_code == 204
        assert await place() == (None, True)
    answered = [o for o in sim.outcomes if o.queue is not None]
    assert len(answered) == 3
    assert all(o.answered for o in answered)
    # The table is read at the first call and after each change (assign and map together:
    # one read), never per call: 7 calls, 4 reads.
    assert world.ivr.routing.directory.loads == 4


async def test_a_number_mapped_to_a_flow_runs_it_and_its_queue_takes_the_groups_policy(
    world: World,
) -> None:
    flow = {
        "name": "Language desk",
        "start": "lang",
        "languages": ["zh", "en"],
        "nodes": {
            "lang": {
                "type": "language",
                "prompt": "sys:beep",
                "options": {"1": "zh", "2": "en"},
                "next": "q",
            },
            "q": {"type": "queue", "skill_group": "sales"},
        },
    }
    admin = Principal("key:ops", Role.PLATFORM_ADMIN, None, ALL_SCOPES)
    service = world.ivr.service
    await service.create_flow(admin, "t1", "desk", json.dumps(flow).encode(), "application/json")
    await service.publish(admin, "t1", "desk", "go live")
    c = world.client
    assert (await c.put(f"{T1}/numbers/{DID}", headers=world.platform)).is_success
    desk = {"target": {"type": "flow", "id": "desk"}}
    assert (await c.patch(f"{T1}/numbers/{DID}", json=desk, headers=world.t1)).is_success
    policy = {"languages": {"en": "support"}}
    assert (await c.put(f"{T1}/routing-policies/sales", json=policy, headers=world.t1)).is_success
    url = f"agi://127.0.0.1:{world.agi.port}/{SCRIPT}"
    english = await FakeAgiClient(url, AgiCall(dnid=DID, extension=DID), dtmf="2").run()
    chinese = await FakeAgiClient(url, AgiCall(dnid=DID, extension=DID), dtmf="1").run()
    assert english.variables_set["CCB_QUEUE"] == "t1-support"
    assert english.variables_set["CCB_X_ROUTING"] == "language"
    assert english.variables_set["CCB_ROUTE"] == "queue"
    assert chinese.variables_set["CCB_QUEUE"] == "t1-sales"


async def test_policy_decisions_reach_the_channel_through_fastagi(world: World) -> None:
    c = world.client
    assert (await c.put(f"{T1}/numbers/{DID}", headers=world.platform)).is_success
    sales = {"target": {"type": "group", "id": "sales"}}
    assert (await c.patch(f"{T1}/numbers/{DID}", json=sales, headers=world.t1)).is_success
    policy = {
        "split": [{"group": "sales", "weight": 70}, {"group": "support", "weight": 30}],
        "vip": {"priority": 10, "callers": ["13800000001"]},
        "overflow": {"after_seconds": 60, "group": "backup"},
        "max_wait": {"seconds": 240, "action": "callback"},
    }
    resp = await c.put(f"{T1}/routing-policies/sales", json=policy, headers=world.t1)
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == 1
    queues: Counter[str] = Counter()
    for i in range(200):
        result = await world.call(caller=f"139{i:08d}")
        queues[result.variables_set["CCB_QUEUE"]] += 1
    assert queues == {"t1-sales": 140, "t1-support": 60}  # 70 % / 30 %, exact to one call
    vip = (await world.call(caller="13800000001")).variables_set
    assert vip["CCB_PRIORITY"] == "10"
    # The node's FastAGI, as the composition root builds it, confirms the finished script
    # last: the dialplan's node failover reads it (docs/ha.md).
    assert list(vip)[-1] == DONE_VARIABLE
    assert vip[DONE_VARIABLE] == SCRIPT
    assert (vip["CCB_QUEUE_TIMEOUT"], vip["CCB_OVERFLOW_QUEUE"], vip["CCB_OVERFLOW_TIMEOUT"]) == (
        "60",
        "t1-backup",
        "180",
    )
    assert (vip["CCB_MAX_WAIT"], vip["CCB_MAX_WAIT_SECONDS"]) == ("callback", "240")
    plain = (await world.call(caller="13900000999")).variables_set
    assert "CCB_PRIORITY" not in plain
    # Deleting the policy queues the group's calls plainly again, on the next call.
    assert (await c.delete(f"{T1}/routing-policies/sales", headers=world.t1)).status_code == 204
    after = (await world.call()).variables_set
    assert after["CCB_QUEUE"] == "t1-sales"
    assert "CCB_QUEUE_TIMEOUT" not in after
    assert [e["detail"]["version"] for e in await world.audit("routing_policy.put")] == [1]
    assert len(await world.audit("routing_policy.delete")) == 1


async def test_policies_are_checked_and_tenant_scoped(world: World) -> None:
    c = world.client
    missing = {"split": [{"group": "sales", "weight": 1}, {"group": "nope", "weight": 1}]}
    _problem(
        await c.put(f"{T1}/routing-policies/sales", json=missing, headers=world.t1), 422, "body"
    )
    _problem(
        await c.put(f"{T1}/routing-policies/nope", json={}, headers=world.t1), 422, "path.group"
    )
    late = {
        "overflow": {"after_seconds": 300, "group": "backup"},
        "max_wait": {"seconds": 200, "action": "callback"},
    }
    _problem(
        await c.put(f"{T1}/routing-policies/sales", json=late, headers=world.t1),
        422,
        "body.overflow.after_seconds",
    )
    box = {"max_wait": {"seconds": 200, "action": "voicemail"}}
    _problem(
        await c.put(f"{T1}/routing-policies/sales", json=box, headers=world.t1),
        422,
        "body.max_wait.mailbox",
    )
    ok = {"sticky": {"ring_seconds": 15}}
    first = await c.put(f"{T1}/routing-policies/sales", json=ok, headers=world.t1)
    second = await c.put(f"{T1}/routing-policies/sales", json=ok, headers=world.t1)
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    got = await c.get(f"{T1}/routing-policies/sales", headers=world.t1)
    assert got.json()["sticky"] == {"ring_seconds": 15, "lookback_days": 30}
    assert [
        p["group"] for p in (await c.get(f"{T1}/routing-policies", headers=world.t1)).json()
    ] == ["sales"]
    assert (await c.get(f"{T1}/routing-policies/sales", headers=world.t2)).status_code == 404
    assert (
        await c.put(f"{T1}/routing-policies/sales", json=ok, headers=world.t2)
    ).status_code == 404
    assert (await c.get(f"{T2}/routing-policies/sales", headers=world.t2)).status_code == 404


async def test_a_callback_request_is_stored_listed_and_journalled(
    world: World, engine: AsyncEngine
) -> None:
    journal = SqlJournal(create_session_factory(engine))
    world.ivr.routing.callbacks.use_journal(journal)
    url = f"agi://127.0.0.1:{world.agi.port}/{CALLBACK}"
    channel = {
        "CCB_TENANT": "t1",
        "CCB_DID": DID,
        "CCB_GROUP": "sales",
        "CCB_MAX_WAIT_SECONDS": "240",
    }
    call = AgiCall(callerid="13800138000", uniqueid="1795433102.7", variables=channel)
    result = await FakeAgiClient(url, call).run()
    played = [split_args(cmd)[2] for cmd in result.commands if cmd.startswith("STREAM FILE")]
    assert played == ["auth-thankyou"]
    # Marked done once stored, before the thank-you: a node dying during the prompt does not
    # make the dialplan store the request again on the next node (docs/ha.md).
    assert result.variables_set[DONE_VARIABLE] == CALLBACK
    assert result.commands.index(f'SET VARIABLE {DONE_VARIABLE} "{CALLBACK}"') < next(
        i for i, cmd in enumerate(result.commands) if cmd.startswith("STREAM FILE")
    )
    anonymous = AgiCall(callerid="anonymous", variables=channel)
    assert (await FakeAgiClient(url, anonymous).run()).hung_up  # nobody to call back
    resp = await world.client.get(f"{T1}/callback-requests", headers=world.t1)
    (request,) = resp.json()
    assert (request["caller"], request["did"], request["skill_group"]) == (
        "13800138000",
        DID,
        "sales",
    )
    assert (request["call_id"], request["waited_seconds"], request["status"]) == (
        "1795433102.7",
        240,
        "requested",
    )
    assert (await world.client.get(f"{T2}/callback-requests", headers=world.t2)).json() == []
    assert (await world.client.get(f"{T1}/callback-requests", headers=world.t2)).status_code == 404
    (event,) = await journal.list_after("t1", 0, 10, types=["callback.requested"])
    assert event.call_id == "1795433102.7"
    assert event.data["request_id"] == request["id"]
    assert event.data["waited_seconds"] == 240


async def test_the_last_agent_who_answered_a_caller_is_found_in_the_call_records(
    engine: AsyncEngine,
) -> None:
    sessions = create_session_factory(engine)
    now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)

    def row(call_id: str, agent: str | None, days_ago: int, answered: bool = True) -> CallRow:
        at = now - timedelta(days=days_ago)
        return CallRow(
            call_id=call_id,
            tenant="t1",
            state="ended",
            caller="13800138000",
            agent_no=agent,
            started_at=at,
            answered_at=at if answered else None,
            legs=[],
            version=1,
            updated_at=at,
        )

    async with sessions() as db, db.begin():
        db.add_all(
            [
                row("c1", "1101", 20),
                row("c2", "1102", 3),
                row("c3", None, 1, answered=False),  # abandoned since: not an owner
            ]
        )
    history = CallHistoryRepository(sessions)
    assert await history.last_agent("t1", "13800138000", now - timedelta(days=30)) == "1102"
    assert await history.last_agent("t1", "13800138000", now - timedelta(days=2)) is None
    assert await history.last_agent("t2", "13800138000", now - timedelta(days=30)) is None


async def test_seed_numbers_assign_only_what_nobody_holds(world: World) -> None:
    """The simulator's seed (demo numbers and ``CCBRIDGE_ROUTES``) never overrides the API."""
    repo = world.ivr.routing.number_repo
    held = await world.client.put(f"{T1}/numbers/4008005678", headers=world.platform)
    assert held.status_code == 201
    seeded = await seed_numbers(
        repo,
        {
            DID: ("t1", "t1-sales"),
            "4008005678": ("t2", "t2-service"),  # held by t1 already: left alone
            "12": ("t1", "t1-sales"),  # not a number
            "95555": ("ghost", "ghost-x"),  # no such tenant
        },
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert seeded == [DID]
    mine = await repo.get(DID)
    assert mine is not None
    assert (mine.tenant_id, mine.target) == ("t1", NumberTarget(TargetType.GROUP, "sales"))
    other = await repo.get("4008005678")
    assert other is not None
    assert (other.tenant_id, other.target) == ("t1", None)
    assert await repo.get("95555") is None
