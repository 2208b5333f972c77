"""The demo tenants written straight to a database (the simulator, the HA drills, benches)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_session_factory
from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.endpoints import EndpointRepository
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.services.tenants import AccessService
from ccbridge.testing.demo import seed_demo


async def seed_demo_database(engine: AsyncEngine, access: AccessService) -> list[str]:
    """Demo tenants, leases, skill groups, agents and phones matching the simulator's
    queues, over *engine*; returns the tenants created."""
    sessions = create_session_factory(engine)
    return await seed_demo(
        access,
        LeaseRepository(sessions),
        SkillGroupRepository(sessions),
        AgentRepository(sessions),
        EndpointRepository(sessions),
    )
