"""Agent and skill-group administration for a tenant, every write audited."""

from __future__ import annotations

import builtins
from dataclasses import asdict, replace

from ccbridge.domain.access import Principal
from ccbridge.domain.acd.membership import queue_name
from ccbridge.errors import ConflictError, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.endpoints import EndpointGuard
from ccbridge.services.pbx_config import PbxQueueSync
from ccbridge.services.seat_ports import (
    AgentRecord,
    AgentRepo,
    SeatSessionRepo,
    SkillGroupRecord,
    SkillGroupRepo,
)


class UnknownSkillGroupError(ConflictError):
    """Raised when an agent names a skill group its tenant does not have."""


class AgentAdminService:
    """Create, change and remove agents and skill groups of one tenant."""

    def __init__(
        self,
        agents: AgentRepo,
        groups: SkillGroupRepo,
        sessions: SeatSessionRepo,
        audit: AuditRecorder,
        endpoints: EndpointGuard,
        pbx_queues: PbxQueueSync | None = None,
    ) -> None:
        self._agents = agents
        self._groups = groups
        self._sessions = sessions
        self._audit = audit
        self._endpoints = endpoints
        self.pbx_queues = pbx_queues
        """Publishes and verifies the queues after a skill-group change (with several nodes: a
        relay to the PBX owner)."""

    async def create_agent(self, who: Principal, record: AgentRecord) -> AgentRecord:
        """Add an agent; its phone must be one of the tenant's endpoints, its groups must exist."""
        record = await self._own_phone(who, record)
        await self._check_groups(record)
        created = await self._agents.create(record)
        await self._audit.record(
            who, record.tenant_id, "agent.create", "agent", record.agent_no, _agent_detail(created)
        )
        return created

    async def get_agent(self, tenant_id: str, agent_no: str) -> AgentRecord:
        """Return one agent (another tenant's is not found)."""
        agent = await self._agents.get(tenant_id, agent_no)
        if agent is None:
            raise NotFoundError(f"agent {agent_no} not found")
        return agent

    async def list_agents(
        self, tenant_id: str, after: str | None, limit: int
    ) -> builtins.list[AgentRecord]:
        """Return agents ordered by 工号."""
        return await self._agents.list(tenant_id, after=after, limit=limit)

    async def update_agent(self, who: Principal, record: AgentRecord) -> AgentRecord:
        """Replace an agent at the version the caller read (409 if it changed meanwhile)."""
        current = await self.get_agent(record.tenant_id, record.agent_no)
        record = await self._own_phone(who, record)
        await self._check_groups(record)
        updated = await self._agents.update(replace(record, version=current.version))
        await self._audit.record(
            who, record.tenant_id, "agent.update", "agent", record.agent_no, _agent_detail(updated)
        )
        return updated

    async def delete_agent(self, who: Principal, tenant_id: str, agent_no: str) -> None:
        """Remove an agent; a signed-in agent must sign out first."""
        if await self._sessions.get_open(tenant_id, agent_no) is not None:
            raise ConflictError(f"agent {agent_no} is signed in; sign the agent out first")
        if not await self._agents.delete(tenant_id, agent_no):
            raise NotFoundError(f"agent {agent_no} not found")
        await self._audit.record(who, tenant_id, "agent.delete", "agent", agent_no)

    async def create_group(
        self, who: Principal, tenant_id: str, name: str, strategy: str, description: str
    ) -> SkillGroupRecord:
        """Add a skill group; its Asterisk queue is ``<tenant>-<name>``.

        Raises :class:`~ccbridge.errors.PbxConfigMismatchError` when the PBX, after the
        reload, does not report the queue (the group stays stored and is retried on reload).
        """
        record = SkillGroupRecord(
            tenant_id=tenant_id,
            name=name,
            queue=queue_name(tenant_id, name),
            strategy=strategy,
            description=description,
        )
        created = await self._groups.create(record)
        await self._audit.record(
            who, tenant_id, "skill_group.create", "skill_group", name, asdict(created)
        )
        await self._groups_changed()
        return created

    async def list_groups(
        self, tenant_id: str, after: str | None, limit: int
    ) -> builtins.list[SkillGroupRecord]:
        """Return skill groups ordered by name."""
        return await self._groups.list(tenant_id, after=after, limit=limit)

    async def get_group(self, tenant_id: str, name: str) -> SkillGroupRecord:
        """Return one skill group (another tenant's is not found)."""
        group = await self._groups.get(tenant_id, name)
        if group is None:
            raise NotFoundError(f"skill group {name} not found")
        return group

    async def delete_group(self, who: Principal, tenant_id: str, name: str) -> None:
        """Remove a skill group and agents' memberships of it."""
        if not await self._groups.delete(tenant_id, name):
            raise NotFoundError(f"skill group {name} not found")
        await self._audit.record(who, tenant_id, "skill_group.delete", "skill_group", name)
        await self._groups_changed()

    async def _groups_changed(self) -> None:
        """Re-render the PBX's queue file and verify the PBX loaded it; the group is stored
        either way, but a queue the PBX does not report fails the request (502)."""
        if self.pbx_queues is not None:
            await self.pbx_queues.sync()

    async def _own_phone(self, who: Principal, record: AgentRecord) -> AgentRecord:
        """Store the interface of the tenant's endpoint the admin named (id, name or interface)."""
        phone = await self._endpoints.resolve(
            who, record.tenant_id, record.interface, field="body.interface"
        )
        return replace(record, interface=phone.interface)

    async def _check_groups(self, record: AgentRecord) -> None:
        for skill in record.skills:
            if await self._groups.get(record.tenant_id, skill.skill_group) is None:
                raise UnknownSkillGroupError(
                    f"skill group {skill.skill_group} does not exist; create it first"
                )


def _agent_detail(agent: AgentRecord) -> dict[str, object]:
    return {
        "name": agent.name,
        "certified": agent.certified,
        "interface": agent.interface,
        "seat_kind": agent.seat_kind.value,
        "skills": [[s.skill_group, s.level] for s in agent.skills],
        "version": agent.version,
    }
