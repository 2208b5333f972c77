"""Demo data for ``ccbridge serve`` with the PBX simulator: tenants, leases, groups, agents.

They match the simulator's queues (``t1-sales``, ``t1-support``, ``t2-service``), so a
newcomer can sign an agent in over HTTP and watch it join a queue and take calls. Each tenant
owns its agents' phones (endpoints ``PJSIP/<工号>``, ADR 0009). Seeding is idempotent: an
existing tenant is left as it is.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

import structlog

from ccbridge.domain.access import ROLE_SCOPES, Principal, Role
from ccbridge.domain.endpoints import DEFAULT_AGENTS_CONTEXT, Endpoint, Technology, interface_for
from ccbridge.domain.inbound_numbers import (
    InboundNumber,
    InvalidNumberError,
    NumberTarget,
    TargetType,
    classify_number,
)
from ccbridge.domain.leases.model import SeatKind, SeatLease
from ccbridge.errors import ConflictError, NotFoundError
from ccbridge.services.endpoint_ports import EndpointRepo
from ccbridge.services.routing_ports import InboundNumberRepo
from ccbridge.services.seat_ports import (
    AgentRecord,
    AgentRepo,
    LeaseRepo,
    SkillGroupRecord,
    SkillGroupRepo,
    SkillLevel,
)
from ccbridge.services.tenants import AccessService

log = structlog.get_logger(__name__)

DEMO_TENANTS: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "t1": (
        "演示客户一 Demo Client One",
        ("sales", "support"),
        (("1101", "赵敏"), ("1102", "钱进")),
    ),
    "t2": ("演示客户二 Demo Two", ("service",), (("2101", "孙丽"),)),
}
"""tenant → (name, skill groups, agents (工号, name)); queues are ``<tenant>-<group>``."""

_SYSTEM = Principal(
    actor="system:demo",
    role=Role.PLATFORM_ADMIN,
    tenant_id=None,
    scopes=ROLE_SCOPES[Role.PLATFORM_ADMIN],
)


async def seed_demo(
    access: AccessService,
    leases: LeaseRepo,
    groups: SkillGroupRepo,
    agents: AgentRepo,
    endpoints: EndpointRepo,
) -> list[str]:
    """Create the demo tenants that do not exist yet; return the ids created."""
    created: list[str] = []
    for tenant_id, (name, group_names, people) in DEMO_TENANTS.items():
        try:
            await access.get_tenant(_SYSTEM, tenant_id)
            continue
        except NotFoundError:
            pass
        await access.create_tenant(_SYSTEM, tenant_id=tenant_id, name=name)
        await leases.create(
            SeatLease(
                tenant_id,
                {SeatKind.INBOUND: 10, SeatKind.INBOUND_OUTBOUND: 2},
                valid_from=date(2026, 1, 1),
                monthly_price={
                    SeatKind.INBOUND: Decimal("800.00"),
                    SeatKind.INBOUND_OUTBOUND: Decimal("1200.00"),
                },
            )
        )
        for group in group_names:
            await groups.create(SkillGroupRecord(tenant_id, group, f"{tenant_id}-{group}"))
        for agent_no, person in people:
            phone = await endpoints.create(
                Endpoint(
                    id=uuid.uuid4().hex,
                    tenant_id=tenant_id,
                    # The shipped topology: queues ring Local/<exten>@ccbridge-agents, which
                    # dials the softphone PJSIP/<exten> (asterisk/extensions-ccbridge.conf), so
                    # hold and transfer find the agent's leg on the simulator as on a real PBX.
                    technology=Technology.LOCAL,
                    name=agent_no,
                    interface=interface_for(Technology.LOCAL, agent_no, DEFAULT_AGENTS_CONTEXT),
                    created_at=datetime.now(UTC),
                    created_by=_SYSTEM.actor,
                    description=f"demo phone of {person}",
                )
            )
            await agents.create(
                AgentRecord(
                    tenant_id=tenant_id,
                    agent_no=agent_no,
                    name=person,
                    certified=True,
                    interface=phone.interface,
                    seat_kind=SeatKind.INBOUND,
                    skills=tuple(SkillLevel(g, 8) for g in group_names),
                )
            )
        created.append(tenant_id)
    if created:
        log.info("demo_tenants_seeded", tenants=created)
    return created


async def seed_numbers(
    numbers: InboundNumberRepo, routes: Mapping[str, tuple[str, str]], at: datetime
) -> list[str]:
    """Assign each seed number (DID → (tenant, queue ``<tenant>-<group>``)) that no tenant
    holds yet and point it at the group; return the numbers assigned.

    The simulator's demo numbers and ``CCBRIDGE_ROUTES`` come in here; a number assigned
    already (over the API, or by an earlier start) is left as it is.
    """
    seeded: list[str] = []
    for did, (tenant_id, queue) in sorted(routes.items()):
        if await numbers.get(did) is not None:
            continue
        group = queue.removeprefix(f"{tenant_id}-")
        try:
            target = NumberTarget(TargetType.GROUP, group)
            record = InboundNumber(
                did,
                tenant_id,
                classify_number(did),
                target,
                "seed",
                at,
                _SYSTEM.actor,
                at,
                _SYSTEM.actor,
            )
            await numbers.add(record)
        except (InvalidNumberError, NotFoundError, ConflictError) as exc:
            log.warning("seed_number_skipped", did=did[:20], tenant=tenant_id, why=str(exc))
            continue
        seeded.append(did)
    if seeded:
        log.info("seed_numbers_assigned", numbers=seeded)
    return seeded
