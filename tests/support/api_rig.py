"""Shared wiring for the API tests that run the real app: the seat services, and tenants with
an admin key each, created over HTTP as an operator would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.api.app import SeatApi
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.dial_policies import DialPolicyRepository
from ccbridge.db.repositories.endpoints import EndpointRepository
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository, StateIntervalRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.services.agents import AgentAdminService
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import CalendarService, TenantZoneReader
from ccbridge.services.dialing import DialPolicyService
from ccbridge.services.endpoints import EndpointGuard, EndpointService
from ccbridge.services.leases import LeaseService
from ccbridge.services.seats import SeatService
from tests.fakes.seats import FakeClock, RecordingQueues


def auth(key: str) -> dict[str, str]:
    """The Authorization header for an API key or token."""
    return {"Authorization": f"Bearer {key}"}


def seat_api(
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    audit: AuditRecorder,
    calendar: CalendarService,
    queues: RecordingQueues,
    agents_context: str = "ccbridge-agents",
) -> SeatApi:
    """Agents, seats, leases, dial policies and phones over the test database, PBX queues
    recorded."""
    agents, groups = AgentRepository(sessions), SkillGroupRepository(sessions)
    leases, seat_sessions = LeaseRepository(sessions), SeatSessionRepository(sessions)
    phones = EndpointRepository(sessions)
    guard = EndpointGuard(phones, audit)
    return SeatApi(
        agent_admin=AgentAdminService(agents, groups, seat_sessions, audit, guard),
        seats=SeatService(
            agents=agents,
            leases=leases,
            sessions=seat_sessions,
            intervals=StateIntervalRepository(sessions),
            queues=queues,
            endpoints=guard,
            clock=clock,
        ),
        leases=LeaseService(
            leases,
            seat_sessions,
            audit,
            clock.now,
            calendar=calendar,
            zones=TenantZoneReader(lambda: SqlAccessUnitOfWork(sessions)),
        ),
        audit=audit,
        current_call=lambda _interface: None,
        dial_policy=DialPolicyService(
            DialPolicyRepository(sessions),
            lambda: SqlAccessUnitOfWork(sessions),
            audit,
            clock.now,
        ),
        endpoints=EndpointService(phones, audit, clock.now, agents_context),
    )


async def claim_phones(
    client: httpx.AsyncClient, who: dict[str, str], tenant_id: str, *names: str
) -> list[dict[str, Any]]:
    """Claim ``PJSIP/<name>`` for each name as the tenant's admin; return the endpoints."""
    claimed = []
    for name in names:
        resp = await client.post(
            f"/api/v1/tenants/{tenant_id}/endpoints", json={"name": name}, headers=who
        )
        assert resp.status_code == 201, resp.text
        claimed.append(resp.json())
    return claimed


async def create_tenants(
    client: httpx.AsyncClient,
    platform: dict[str, str],
    tenants: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, str]]:
    """Create each tenant (id → extra fields such as ``timezone``) with a tenant-admin key;
    return each admin's headers."""
    admins: dict[str, dict[str, str]] = {}
    for tid, extra in tenants.items():
        body = {"id": tid, "name": tid.upper(), **extra}
        resp = await client.post("/api/v1/tenants", json=body, headers=platform)
        assert resp.status_code == 201, resp.text
        resp = await client.post(
            f"/api/v1/tenants/{tid}/api-keys",
            json={"name": "admin", "role": "tenant_admin"},
            headers=platform,
        )
        assert resp.status_code == 201, resp.text
        admins[tid] = auth(resp.json()["key"])
    return admins
