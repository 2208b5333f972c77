"""Tenants are placed on a PBX the database knows (ADR 0033), over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from ccbridge.api.app import create_app
from ccbridge.api.security import JwtCodec
from ccbridge.db.access_tables import AuditRow, TenantRow
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_session_factory
from ccbridge.db.ha_tables import PbxOwnerRow
from ccbridge.db.repositories import CallRepository
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository
from ccbridge.domain.access import ROLE_SCOPES, Principal, Role
from ccbridge.domain.agents.state import AgentState, AgentStatus
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.ha.placement import CLUSTER_LEASE
from ccbridge.domain.leases.model import SeatKind
from ccbridge.errors import InvalidRequestError
from ccbridge.observability.health import Readiness
from ccbridge.services.seat_ports import SeatSession
from ccbridge.services.tenants import AccessService

SECRET = "placement-test-secret-0123456789abcdef"
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@dataclass
class Rig:
    client: httpx.AsyncClient
    sessions: async_sessionmaker  # type: ignore[type-arg]
    platform: dict[str, str]

    def access(self, home_pbx: str | None) -> AccessService:
        return AccessService(
            lambda: SqlAccessUnitOfWork(self.sessions),
            JwtCodec(SECRET),
            now=lambda: NOW,
            token_ttl_seconds=600,
            home_pbx=home_pbx,
        )

    async def served(self, pbx: str) -> None:
        """A node of *pbx* has held its lease (the row every PBX's nodes write)."""
        async with self.sessions.begin() as s:
            await s.execute(
                insert(PbxOwnerRow).values(
                    pbx=pbx, node="n1", epoch=1, acquired_at=NOW, expires_at=NOW - timedelta(1)
                )
            )

    async def placement(self, tenant_id: str) -> str:
        async with self.sessions() as s:
            row = await s.get(TenantRow, tenant_id)
            assert row is not None
            return row.pbx_id


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def rig(engine: AsyncEngine) -> AsyncIterator[Rig]:
    sessions = create_session_factory(engine)
    codec = JwtCodec(SECRET)
    access = AccessService(
        lambda: SqlAccessUnitOfWork(sessions),
        codec,
        now=lambda: NOW,
        token_ttl_seconds=600,
        home_pbx="pbx-a",
    )
    app = create_app(
        call_store=CallRepository(sessions), readiness=Readiness(), access=access, jwt=codec
    )
    _, platform = await access.create_system_key(
        role=Role.PLATFORM_ADMIN, tenant_id=None, name="ops", actor="test"
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield Rig(client, sessions, auth(platform))


async def test_a_new_tenant_is_placed_on_the_node_pbx_and_only_the_platform_sees_it(
    rig: Rig,
) -> None:
    c = rig.client
    resp = await c.post("/api/v1/tenants", json={"id": "ta", "name": "A"}, headers=rig.platform)
    assert resp.status_code == 201, resp.text
    assert resp.json()["pbx_id"] == "pbx-a"
    assert await rig.placement("ta") == "pbx-a"
    resp = await c.post(
        "/api/v1/tenants/ta/api-keys",
        json={"name": "admin", "role": "tenant_admin"},
        headers=rig.platform,
    )
    admin = auth(resp.json()["key"])
    assert (await c.get("/api/v1/tenants/ta", headers=admin)).json()["pbx_id"] is None
    assert (await c.get("/api/v1/tenants/ta", headers=rig.platform)).json()["pbx_id"] == "pbx-a"
    listed = (await c.get("/api/v1/tenants", headers=rig.platform)).json()["items"]
    assert [t["pbx_id"] for t in listed] == ["pbx-a"]
    moved = await c.patch("/api/v1/tenants/ta", json={"pbx_id": "pbx-a"}, headers=admin)
    assert moved.status_code == 403, moved.text


async def test_an_unknown_or_malformed_pbx_is_422_naming_the_field(rig: Rig) -> None:
    c = rig.client
    for pbx in ("pbx-b", "a b", "evil\r\nX: 1", "x" * 65):
        resp = await c.post(
            "/api/v1/tenants", json={"id": "tb", "name": "B", "pbx_id": pbx}, headers=rig.platform
        )
        assert resp.status_code == 422, (pbx, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        problem = resp.json()
        fields = [e["field"] for e in problem.get("errors", [])] or [problem.get("field")]
        assert "body.pbx_id" in fields, problem
    unknown = await c.post(
        "/api/v1/tenants", json={"id": "tb", "name": "B", "pbx_id": "pbx-b"}, headers=rig.platform
    )
    assert "pbx-a" in unknown.json()["detail"]  # names the PBXs it could be placed on
    assert (await c.get("/api/v1/tenants/tb", headers=rig.platform)).status_code == 404


async def test_a_tenant_moves_to_a_pbx_the_database_knows_and_the_move_is_audited(
    rig: Rig,
) -> None:
    c = rig.client
    await rig.served("pbx-b")
    resp = await c.post(
        "/api/v1/tenants", json={"id": "tb", "name": "B", "pbx_id": "pbx-b"}, headers=rig.platform
    )
    assert resp.status_code == 201, resp.text
    assert await rig.placement("tb") == "pbx-b"
    resp = await c.patch("/api/v1/tenants/tb", json={"pbx_id": "pbx-a"}, headers=rig.platform)
    assert resp.status_code == 200, resp.text
    assert resp.json()["pbx_id"] == "pbx-a"
    async with rig.sessions() as s:
        details = (
            (await s.execute(select(AuditRow.detail).where(AuditRow.tenant_id == "tb")))
            .scalars()
            .all()
        )
    assert {"name": "B", "pbx_id": "pbx-b"} in details
    assert {"changed": ["pbx_id"]} in details


async def test_tenants_on_a_pbx_the_database_does_not_know_are_adopted_by_the_node(
    rig: Rig,
) -> None:
    """A renamed CCBRIDGE_HA__PBX_ID (or tenants from before placements) would otherwise
    leave tenants served by no node; tenants of another known PBX stay where they are."""
    await rig.served("pbx-b")
    await rig.served(CLUSTER_LEASE)  # the once-per-database lease is no PBX to place on
    for tid, pbx in (("t1", None), ("t2", None), ("t3", "pbx-b")):
        body = {"id": tid, "name": tid} | ({"pbx_id": pbx} if pbx else {})
        assert (
            await rig.client.post("/api/v1/tenants", json=body, headers=rig.platform)
        ).is_success
    async with rig.sessions.begin() as s:  # as created by a node of PBX "default"
        await s.execute(
            TenantRow.__table__.update()
            .where(TenantRow.id.in_(["t1", "t2"]))
            .values(pbx_id="default")
        )
    assert await rig.access("pbx-a").adopt_orphaned_tenants() == 2
    assert [await rig.placement(t) for t in ("t1", "t2", "t3")] == ["pbx-a", "pbx-a", "pbx-b"]
    assert await rig.access("pbx-a").adopt_orphaned_tenants() == 0  # nothing left to adopt


async def test_an_api_only_process_places_on_the_only_pbx_or_asks_which(rig: Rig) -> None:
    """``ccbridge api`` serves no PBX: its own CCBRIDGE_HA__PBX_ID (often left at
    ``default``) must not become a tenant's placement that no owner serves."""
    ops = Principal("key:ops", Role.PLATFORM_ADMIN, None, ROLE_SCOPES[Role.PLATFORM_ADMIN])
    api_only = rig.access(None)
    with pytest.raises(InvalidRequestError) as none_yet:
        await api_only.create_tenant(ops, tenant_id="t0", name="t0")
    assert none_yet.value.field == "body.pbx_id"
    assert "none yet" in none_yet.value.detail
    await rig.served("pbx-a")
    await rig.served(CLUSTER_LEASE)
    placed = await api_only.create_tenant(ops, tenant_id="t1", name="t1")
    assert placed.pbx_id == "pbx-a"  # the database's only PBX
    await rig.served("pbx-b")
    with pytest.raises(InvalidRequestError, match="pbx-a, pbx-b"):
        await api_only.create_tenant(ops, tenant_id="t2", name="t2")
    chosen = await api_only.create_tenant(ops, tenant_id="t2", name="t2", pbx_id="pbx-b")
    assert chosen.pbx_id == "pbx-b"
    assert await api_only.adopt_orphaned_tenants() == 0


async def test_a_tenant_with_a_signed_in_seat_or_a_live_call_does_not_move(rig: Rig) -> None:
    """Its queue members and calls live on its current PBX, whose owner stops managing them
    at the move: 409 on body.pbx_id until they are over; nothing changes meanwhile."""
    c = rig.client
    await rig.served("pbx-b")
    resp = await c.post("/api/v1/tenants", json={"id": "tb", "name": "B"}, headers=rig.platform)
    assert resp.status_code == 201, resp.text
    calls = CallRepository(rig.sessions)
    live = CallRecord(call_id="1.1", started_at=NOW, state=CallState.QUEUED, tenant="tb", version=1)
    await calls.upsert_many([live])
    seats = SeatSessionRepository(rig.sessions)
    seat = SeatSession(
        id="s1",
        tenant_id="tb",
        agent_no="1001",
        kind=SeatKind.INBOUND,
        interface="PJSIP/tb-1001",
        signed_in_at=NOW,
        signed_out_at=None,
        status=AgentStatus(since=NOW, state=AgentState.READY),
    )
    await seats.open(seat)
    move = {"pbx_id": "pbx-b"}
    resp = await c.patch("/api/v1/tenants/tb", json=move, headers=rig.platform)
    assert resp.status_code == 409, resp.text
    problem = resp.json()
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "1 seat(s) signed in and 1 call(s) not ended" in problem["detail"]
    assert [e["field"] for e in problem.get("errors", [])] == ["body.pbx_id"]
    assert await rig.placement("tb") == "pbx-a"
    await seats.close(seat, NOW)
    await calls.upsert_many([replace(live, state=CallState.ENDED, version=2)])
    resp = await c.patch("/api/v1/tenants/tb", json=move, headers=rig.platform)
    assert resp.status_code == 200, resp.text
    assert await rig.placement("tb") == "pbx-b"
