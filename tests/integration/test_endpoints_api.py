"""A seat's phone is one of its tenant's endpoints, nothing else (ADR 0009), on both backends.

The attacks of the hardening issue: an agent signing in on a trunk (``Local/…@outbound-trunk``)
or on another tenant's phone, and a tenant admin giving its agent another tenant's phone. Each
is refused with 422 naming the field, leaves an audit entry, and never reaches the PBX.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.calendar import CalendarRepository
from ccbridge.domain.access import Role
from ccbridge.domain.leases.model import SeatKind
from ccbridge.observability.health import Readiness
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService
from ccbridge.services.seat_ports import AgentRecord, SkillLevel
from ccbridge.services.tenants import AccessService
from tests.fakes.seats import FakeClock, RecordingQueues
from tests.support.api_rig import auth, claim_phones, create_tenants, seat_api

SECRET = "integration-test-secret-0123456789abcdef"
AGENTS_CONTEXT = "agents-under-test"


@dataclass
class World:
    client: httpx.AsyncClient
    queues: RecordingQueues
    agents: AgentRepository
    platform: dict[str, str]
    t1: dict[str, str]
    t2: dict[str, str]
    t2_phone: dict[str, Any]

    async def post(self, path: str, body: Any = None, who: dict[str, str] | None = None) -> Any:
        return await self.client.post(path, json=body, headers=who or self.t1)

    async def agent_token(self, agent_no: str = "1000") -> dict[str, str]:
        body = {"subject": f"agent-{agent_no}", "role": "agent", "agent_no": agent_no}
        resp = await self.post("/api/v1/auth/token", body)
        assert resp.status_code in (200, 201), resp.text
        return auth(resp.json()["access_token"])

    async def audit(self, action: str) -> list[dict[str, Any]]:
        resp = await self.client.get("/api/v1/audit", headers=self.platform)
        assert resp.status_code == 200, resp.text
        return [e for e in resp.json()["items"] if e["action"] == action]


def _agent(no: str, phone: str) -> dict[str, Any]:
    return {
        "agent_no": no,
        "name": f"坐席 {no}",
        "certified": True,
        "interface": phone,
        "skills": [{"skill_group": "sales", "level": 8}],
    }


@pytest.fixture
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))  # JWTs expire in real time
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions), codec, now=clock.now, token_ttl_seconds=600
    )
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    queues = RecordingQueues()
    calendar = CalendarService(CalendarRepository(sessions), audit, clock.now)
    app = create_app(
        call_store=CallRepository(sessions),
        readiness=Readiness(),
        access=access,
        jwt=codec,
        seat_api=seat_api(sessions, clock, audit, calendar, queues, AGENTS_CONTEXT),
    )
    _, platform_key = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    platform = auth(platform_key)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        admins = await create_tenants(client, platform, {"t1": {}, "t2": {}})
        for tid in admins:
            lease = {"seats": {"inbound": 10}, "valid_from": "2026-01-01"}
            resp = await client.post(f"/api/v1/tenants/{tid}/leases", json=lease, headers=platform)
            assert resp.status_code == 201, resp.text
            resp = await client.post(
                f"/api/v1/tenants/{tid}/skill-groups", json={"name": "sales"}, headers=admins[tid]
            )
            assert resp.status_code == 201, resp.text
        await claim_phones(client, admins["t1"], "t1", "1000", "1001")
        (t2_phone,) = await claim_phones(client, admins["t2"], "t2", "2101")
        w = World(
            client,
            queues,
            AgentRepository(sessions),
            platform,
            admins["t1"],
            admins["t2"],
            t2_phone,
        )
        for no in ("1000", "1001"):
            resp = await w.post("/api/v1/tenants/t1/agents", _agent(no, f"PJSIP/{no}"))
            assert resp.status_code == 201, resp.text
        resp = await w.post("/api/v1/tenants/t2/agents", _agent("2101", "2101"), w.t2)
        assert resp.status_code == 201, resp.text
        yield w


def _invalid(resp: httpx.Response, field: str) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert [e["field"] for e in body["errors"]] == [field], body
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"interface": "Local/00881234567@outbound-trunk"}, "body.interface"),
        ({"interface": "PJSIP/2101"}, "body.interface"),
        ({"endpoint": "2101"}, "body.endpoint"),
        ({"endpoint": "PJSIP/1000&PJSIP/2101"}, "body.endpoint"),
        ({"endpoint": "1000\r\nAction: Originate"}, "body.endpoint"),
        ({"endpoint": f"Local/1000@{AGENTS_CONTEXT}"}, "body.endpoint"),  # not claimed
        ({"endpoint": ""}, "body.endpoint"),
        ({"endpoint": "PJSIP/" + "9" * 1000}, "body.endpoint"),
    ],
)
async def test_an_agent_signs_in_only_on_a_phone_of_its_tenant(
    world: World, body: dict[str, str], field: str
) -> None:
    token = await world.agent_token()
    resp = await world.post("/api/v1/tenants/t1/seats/1000/sign-in", body, token)
    problem = _invalid(resp, field)
    assert "t2" not in problem["detail"]
    assert world.queues.calls == []
    live = await world.client.get("/api/v1/seats/live", headers=world.t1)
    assert live.json() == []
    (entry,) = await world.audit("endpoint.refused")
    assert (entry["tenant_id"], entry["actor"]) == ("t1", "user:agent-1000")
    assert entry["detail"]["field"] == field
    assert "\r" not in entry["detail"]["value"]


async def test_another_tenants_endpoint_id_is_not_a_choice(world: World) -> None:
    token = await world.agent_token()
    body = {"endpoint": world.t2_phone["id"]}
    resp = await world.post("/api/v1/tenants/t1/seats/1000/sign-in", body, token)
    _invalid(resp, "body.endpoint")
    assert world.queues.calls == []


async def test_an_agent_picks_a_phone_by_endpoint_id_or_name(world: World) -> None:
    (desk,) = await claim_phones(world.client, world.t1, "t1", "hotdesk-7")
    token = await world.agent_token()
    resp = await world.post(
        "/api/v1/tenants/t1/seats/1000/sign-in", {"endpoint": desk["id"]}, token
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["interface"] == "PJSIP/hotdesk-7"
    assert world.queues.calls == [("add", "t1-sales", "PJSIP/hotdesk-7", "False", "")]
    await world.post("/api/v1/tenants/t1/seats/1000/sign-out", who=token)
    resp = await world.post("/api/v1/tenants/t1/seats/1000/sign-in", {"endpoint": "1001"}, token)
    assert resp.status_code == 200, resp.text
    assert resp.json()["interface"] == "PJSIP/1001"
    # The deprecated ``interface`` still works as a choice among the tenant's phones.
    await world.post("/api/v1/tenants/t1/seats/1000/sign-out", who=token)
    body = {"interface": "PJSIP/hotdesk-7"}
    resp = await world.post("/api/v1/tenants/t1/seats/1000/sign-in", body, token)
    assert resp.status_code == 200, resp.text
    both = {"interface": "PJSIP/1000", "endpoint": "1000"}
    resp = await world.post("/api/v1/tenants/t1/seats/1001/sign-in", both, token)
    assert resp.status_code in (403, 422)


async def test_an_admin_cannot_give_its_agent_another_tenants_phone(world: World) -> None:
    resp = await world.post("/api/v1/tenants/t1/agents", _agent("1002", "PJSIP/2101"))
    _invalid(resp, "body.interface")
    resp = await world.client.put(
        "/api/v1/tenants/t1/agents/1000", json=_agent("1000", "PJSIP/2101"), headers=world.t1
    )
    _invalid(resp, "body.interface")
    resp = await world.client.put(
        "/api/v1/tenants/t1/agents/1000",
        json=_agent("1000", "Local/00881234567@outbound-trunk"),
        headers=world.t1,
    )
    _invalid(resp, "body.interface")
    agent = await world.client.get("/api/v1/tenants/t1/agents/1000", headers=world.t1)
    assert agent.json()["interface"] == "PJSIP/1000"
    assert (
        await world.client.get("/api/v1/tenants/t1/agents/1002", headers=world.t1)
    ).status_code == 404
    assert len(await world.audit("endpoint.refused")) == 3
    # Naming one of its own phones by name stores that phone's interface.
    resp = await world.client.put(
        "/api/v1/tenants/t1/agents/1000", json=_agent("1000", "1001"), headers=world.t1
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["interface"] == "PJSIP/1001"


async def test_a_phone_is_claimed_by_one_tenant_only(world: World) -> None:
    for body in ({"name": "2101"}, {"name": "2101", "technology": "Local"}):
        resp = await world.post("/api/v1/tenants/t1/endpoints", body)
        assert resp.status_code == 409, resp.text
        assert "t2" not in resp.text
    refused = await world.audit("endpoint.claim_refused")
    assert [e["tenant_id"] for e in refused] == ["t1", "t1"]
    resp = await world.post("/api/v1/tenants/t1/endpoints", {"name": "1999", "technology": "Local"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["interface"] == f"Local/1999@{AGENTS_CONTEXT}"
    # The same phone by the other technology is the same phone: claimed already.
    resp = await world.post("/api/v1/tenants/t2/endpoints", {"name": "1999"}, world.t2)
    assert resp.status_code == 409, resp.text


@pytest.mark.parametrize(
    "name",
    ["a/b", "a&b", "a@b", "1000\r\n", "1000\x00", "x" * 65, " 1000", "_X.", "1000,1001"],
)
async def test_an_unsafe_name_is_refused_with_the_field(world: World, name: str) -> None:
    resp = await world.post("/api/v1/tenants/t1/endpoints", {"name": name, "technology": "Local"})
    _invalid(resp, "body.name")
    assert len(await world.audit("endpoint.claim_refused")) == 1
    listing = await world.client.get("/api/v1/tenants/t1/endpoints", headers=world.t1)
    assert [e["name"] for e in listing.json()] == ["1000", "1001"]


async def test_another_tenants_endpoint_answers_404(world: World) -> None:
    own = f"/api/v1/tenants/t2/endpoints/{world.t2_phone['id']}"
    assert (await world.client.get(own, headers=world.t2)).status_code == 200
    assert (await world.client.get(own, headers=world.t1)).status_code == 404
    assert (await world.client.delete(own, headers=world.t1)).status_code == 404
    crossed = f"/api/v1/tenants/t1/endpoints/{world.t2_phone['id']}"
    assert (await world.client.get(crossed, headers=world.t1)).status_code == 404
    assert (await world.client.delete(crossed, headers=world.t1)).status_code == 404
    listing = await world.client.get("/api/v1/tenants/t1/endpoints", headers=world.t1)
    assert "2101" not in {e["name"] for e in listing.json()}
    assert (await world.client.get(own, headers=world.t2)).status_code == 200


async def test_the_platform_admin_manages_a_tenants_phones(world: World) -> None:
    resp = await world.post("/api/v1/tenants/t1/endpoints", {"name": "5000"}, world.platform)
    assert resp.status_code == 201, resp.text
    path = f"/api/v1/tenants/t1/endpoints/{resp.json()['id']}"
    assert (await world.client.delete(path, headers=world.platform)).status_code == 204
    assert (await world.client.get(path, headers=world.t1)).status_code == 404
    supervisor = await world.post("/api/v1/auth/token", {"subject": "boss", "role": "supervisor"})
    boss = auth(supervisor.json()["access_token"])
    assert (await world.client.get("/api/v1/tenants/t1/endpoints", headers=boss)).status_code == 200
    resp = await world.post("/api/v1/tenants/t1/endpoints", {"name": "5001"}, boss)
    assert resp.status_code == 403


async def test_a_phone_in_use_is_not_released(world: World) -> None:
    listing = await world.client.get("/api/v1/tenants/t1/endpoints", headers=world.t1)
    ids = {e["name"]: e["id"] for e in listing.json()}
    path = "/api/v1/tenants/t1/endpoints/{}"
    resp = await world.client.delete(path.format(ids["1000"]), headers=world.t1)
    assert resp.status_code == 409  # agent 1000's phone
    (desk,) = await claim_phones(world.client, world.t1, "t1", "hotdesk-9")
    await world.post("/api/v1/tenants/t1/seats/1001/sign-in", {"endpoint": "hotdesk-9"})
    resp = await world.client.delete(path.format(desk["id"]), headers=world.t1)
    assert resp.status_code == 409  # carries 1001's seat
    await world.post("/api/v1/tenants/t1/seats/1001/sign-out")
    resp = await world.client.delete(path.format(desk["id"]), headers=world.t1)
    assert resp.status_code == 204
    assert len(await world.audit("endpoint.delete")) == 1
    resp = await world.post("/api/v1/tenants/t1/seats/1001/sign-in", {"endpoint": "hotdesk-9"})
    _invalid(resp, "body.endpoint")
    # Released, the phone can be claimed by another tenant.
    resp = await world.post("/api/v1/tenants/t2/endpoints", {"name": "hotdesk-9"}, world.t2)
    assert resp.status_code == 201, resp.text


async def test_an_agent_whose_own_phone_is_unclaimed_cannot_sign_in(world: World) -> None:
    # As an agent stored before endpoints existed (migration 0012 left its phone unclaimed).
    await world.agents.create(
        AgentRecord(
            tenant_id="t1",
            agent_no="1003",
            name="legacy",
            certified=True,
            interface="Local/00881234567@outbound-trunk",
            seat_kind=SeatKind.INBOUND,
            skills=(SkillLevel("sales", 5),),
        )
    )
    resp = await world.post("/api/v1/tenants/t1/seats/1003/sign-in")
    _invalid(resp, "agent.interface")
    assert world.queues.calls == []
