"""In-memory fakes of the seat ports and the PBX queue control, for service tests."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ccbridge.domain.acd.membership import QueueMemberSpec
from ccbridge.domain.endpoints import Endpoint, Technology
from ccbridge.domain.ha.placement import DEFAULT_PBX_ID
from ccbridge.domain.leases.model import SeatKind, SeatLease
from ccbridge.services.endpoint_ports import EndpointClaimedError
from ccbridge.services.seat_ports import (
    AgentRecord,
    AlreadySignedInError,
    DeviceInUseError,
    LeaseChangeRecord,
    SeatSession,
    StaleWriteError,
    StateInterval,
)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai

    def now(self) -> datetime:
        return self.current

    def advance(self, **kw: float) -> None:
        self.current += timedelta(**kw)


class MemoryAgents:
    """AgentRepo over a dict."""

    def __init__(self, *agents: AgentRecord) -> None:
        self.rows = {(a.tenant_id, a.agent_no): a for a in agents}

    async def create(self, record: AgentRecord) -> AgentRecord:
        self.rows[(record.tenant_id, record.agent_no)] = record
        return record

    async def get(self, tenant_id: str, agent_no: str) -> AgentRecord | None:
        return self.rows.get((tenant_id, agent_no))

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> list[AgentRecord]:
        rows = sorted(
            (
                a
                for (t, n), a in self.rows.items()
                if t == tenant_id and (after is None or n > after)
            ),
            key=lambda a: a.agent_no,
        )
        return rows[:limit]

    async def update(self, record: AgentRecord) -> AgentRecord:
        self.rows[(record.tenant_id, record.agent_no)] = record
        return record

    async def delete(self, tenant_id: str, agent_no: str) -> bool:
        return self.rows.pop((tenant_id, agent_no), None) is not None


def _agent_no(agent: AgentRecord) -> str:
    return agent.agent_no


class MemoryLeases:
    """LeaseRepo with one lease per tenant."""

    def __init__(self, *leases: SeatLease) -> None:
        self.by_tenant = {lease.tenant: lease for lease in leases}
        self.changes: list[LeaseChangeRecord] = []

    async def active_lease(self, tenant_id: str, at: datetime) -> SeatLease | None:
        lease = self.by_tenant.get(tenant_id)
        return lease if lease is not None and lease.is_active_at(at) else None

    async def pending_changes(self, tenant_id: str) -> list[LeaseChangeRecord]:
        return [c for c in self.changes if c.change.tenant == tenant_id]


class MemorySessions:
    """SeatSessionRepo with the one-open-session-per-工号 rule and version checks."""

    def __init__(self) -> None:
        self.rows: dict[str, SeatSession] = {}
        self.placements: dict[str, str] = {}
        """tenant → PBX id (ADR 0033); a tenant not listed is on the default PBX."""

    async def open(self, session: SeatSession) -> None:
        if await self.get_open(session.tenant_id, session.agent_no) is not None:
            raise AlreadySignedInError(f"{session.agent_no} already signed in")
        if await self.get_open_on_interface(session.interface) is not None:
            raise DeviceInUseError(f"{session.interface} in use")
        self.rows[session.id] = session

    async def get(self, tenant_id: str, session_id: str) -> SeatSession | None:
        s = self.rows.get(session_id)
        return s if s is not None and s.tenant_id == tenant_id else None

    async def get_open(self, tenant_id: str, agent_no: str) -> SeatSession | None:
        return next(
            (
                s
                for s in self.rows.values()
                if s.tenant_id == tenant_id and s.agent_no == agent_no and s.is_open
            ),
            None,
        )

    async def get_open_on_interface(self, interface: str) -> SeatSession | None:
        return next((s for s in self.rows.values() if s.interface == interface and s.is_open), None)

    async def open_seat_on_interface(self, interface: str) -> tuple[str, str] | None:
        found = await self.get_open_on_interface(interface)
        return None if found is None else (found.tenant_id, found.agent_no)

    async def list_open(
        self, tenant_id: str | None, *, pbx: str | None = None
    ) -> list[SeatSession]:
        return [
            s
            for s in self.rows.values()
            if s.is_open
            and tenant_id in (None, s.tenant_id)
            and pbx in (None, self.placements.get(s.tenant_id, DEFAULT_PBX_ID))
        ]

    async def count_open_by_kind(self, tenant_id: str) -> dict[SeatKind, int]:
        counts = dict.fromkeys(SeatKind, 0)
        for s in await self.list_open(tenant_id):
            counts[s.kind] += 1
        return counts

    async def save_status(self, session: SeatSession) -> SeatSession:
        stored = self.rows.get(session.id)
        if stored is None or stored.version != session.version or not stored.is_open:
            raise StaleWriteError("stale")
        new = replace(session, version=session.version + 1)
        self.rows[session.id] = new
        return new

    async def close(self, session: SeatSession, at: datetime) -> SeatSession:
        new = await self.save_status(session)
        new = replace(new, signed_out_at=at)
        self.rows[session.id] = new
        return new


class MemoryIntervals:
    """StateIntervalRepo as a list."""

    def __init__(self) -> None:
        self.rows: list[StateInterval] = []

    async def append(self, interval: StateInterval) -> None:
        await self.close(interval.tenant_id, interval.agent_no, interval.started_at)
        self.rows.append(interval)

    async def close(self, tenant_id: str, agent_no: str, at: datetime) -> int:
        closed = 0
        for i, row in enumerate(self.rows):
            if row.tenant_id == tenant_id and row.agent_no == agent_no and row.ended_at is None:
                self.rows[i] = replace(row, ended_at=at)
                closed += 1
        return closed


class RecordingQueues:
    """QueueControl that records every call and can be made to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = False

    def _check(self) -> None:
        if self.fail:
            raise ConnectionError("AMI down")

    async def add_member(self, spec: QueueMemberSpec) -> None:
        self._check()
        self.calls.append(("add", spec.queue, spec.interface, str(spec.paused), spec.reason))

    async def remove_member(self, queue: str, interface: str) -> None:
        self._check()
        self.calls.append(("remove", queue, interface))

    async def set_paused(self, queue: str, interface: str, paused: bool, reason: str) -> None:
        self._check()
        self.calls.append(("pause", queue, interface, str(paused), reason))

    async def set_penalty(self, queue: str, interface: str, penalty: int) -> None:
        self._check()
        self.calls.append(("penalty", queue, interface, str(penalty)))

    async def snapshot(self, queues: Collection[str]) -> list[QueueMemberSpec]:
        return []


class MemoryEndpoints:
    """EndpointRepo over a dict, with the claimed-once rule on name and interface."""

    def __init__(self, *endpoints: Endpoint) -> None:
        self.rows = {e.id: e for e in endpoints}

    def claim(self, tenant_id: str, *interfaces: str) -> None:
        """Claim ``PJSIP/<name>`` style interfaces for a tenant, as its admin would."""
        for interface in interfaces:
            tech, _, rest = interface.partition("/")
            name = rest.partition("@")[0]
            ep = Endpoint(
                id=f"ep-{len(self.rows)}",
                tenant_id=tenant_id,
                technology=Technology(tech),
                name=name,
                interface=interface,
                created_at=datetime(2026, 11, 1, tzinfo=UTC),
                created_by="test",
            )
            self.rows[ep.id] = ep

    async def create(self, endpoint: Endpoint) -> Endpoint:
        if any(
            e.name == endpoint.name or e.interface == endpoint.interface for e in self.rows.values()
        ):
            raise EndpointClaimedError("claimed")
        self.rows[endpoint.id] = endpoint
        return endpoint

    async def find(self, tenant_id: str, selector: str) -> Endpoint | None:
        return next(
            (e for e in self.rows.values() if e.tenant_id == tenant_id and e.matches(selector)),
            None,
        )

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> list[Endpoint]:
        rows = sorted(
            (e for e in self.rows.values() if e.tenant_id == tenant_id), key=lambda e: e.name
        )
        return [e for e in rows if after is None or e.name > after][:limit]

    async def delete(self, tenant_id: str, endpoint_id: str) -> bool:
        found = self.rows.get(endpoint_id)
        if found is None or found.tenant_id != tenant_id:
            return False
        del self.rows[endpoint_id]
        return True

    async def owners(self, interfaces: Collection[str]) -> dict[str, str]:
        return {e.interface: e.tenant_id for e in self.rows.values() if e.interface in interfaces}
