"""Ports for agents, skill groups, seat leases and seat sessions (implemented in ccbridge.db).

Plain frozen records and Protocols only. Every tenant-scoped method takes ``tenant_id`` and
filters by it: another tenant's row is invisible (reported as missing, never as forbidden).
Each method is atomic on its own; there is no unit of work spanning calls.

Writes of versioned records (``AgentRecord``, ``SeatSession``) are optimistic: the caller passes
the record as it read it, the store writes only if the stored version still equals
``record.version`` and returns the record with ``version + 1``; otherwise ``StaleWriteError``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ccbridge.domain.agents.state import AgentState, AgentStatus
from ccbridge.domain.dialing import DialPolicy
from ccbridge.domain.leases.model import LeaseChange, SeatKind, SeatLease
from ccbridge.domain.leases.utilisation import SignInInterval
from ccbridge.errors import ConflictError, NotFoundError

MIN_SKILL_LEVEL = 1
MAX_SKILL_LEVEL = 10
MAX_PAGE = 1000
"""Largest ``limit`` a keyset listing accepts."""


# --- errors ----------------------------------------------------------------------------------


class StaleWriteError(ConflictError):
    """The record changed (or vanished) since it was read; re-read and retry."""


class AlreadyExistsError(ConflictError):
    """A record with the same natural key exists in the tenant (e.g. the same 工号)."""


class AlreadySignedInError(ConflictError):
    """The 工号 already has an open seat session (SEAT-06: one active sign-in per 工号)."""


class DeviceInUseError(ConflictError):
    """The softphone already carries another open seat session (one device, one seat)."""


class RecordNotFoundError(NotFoundError):
    """The record does not exist, or belongs to another tenant."""


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SkillLevel:
    """An agent's membership of a skill group with a level 1 (lowest) .. 10 (highest)."""

    skill_group: str
    level: int = MIN_SKILL_LEVEL

    def __post_init__(self) -> None:
        """Reject a level outside 1..10."""
        if not MIN_SKILL_LEVEL <= self.level <= MAX_SKILL_LEVEL:
            raise ValueError(
                f"skill level must be {MIN_SKILL_LEVEL}..{MAX_SKILL_LEVEL}, got {self.level}"
            )


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent (坐席人员) of a tenant, identified by its 工号 ``agent_no`` within the tenant."""

    tenant_id: str
    agent_no: str
    name: str
    certified: bool
    interface: str
    """Dial string of the agent's phone, e.g. ``PJSIP/1001`` or ``Local/1001@ccbridge-agents``."""
    seat_kind: SeatKind
    skills: tuple[SkillLevel, ...] = ()
    version: int = 1


@dataclass(frozen=True, slots=True)
class SkillGroupRecord:
    """A tenant's skill group (技能组) and the Asterisk queue that serves it."""

    tenant_id: str
    name: str
    queue: str
    strategy: str = "rrmemory"
    description: str = ""


@dataclass(frozen=True, slots=True)
class DialPolicyRecord:
    """A tenant's dial policy; ``updated_at`` is ``None`` while the default applies."""

    tenant_id: str
    policy: DialPolicy
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A stored seat lease and its id."""

    id: str
    lease: SeatLease


@dataclass(frozen=True, slots=True)
class LeaseChangeRecord:
    """A stored lease change request; ``applied_at`` is set once it has been carried out."""

    id: str
    change: LeaseChange
    applied_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SeatSession:
    """One sign-in (签入 .. 签出) of an agent on a seat; open while ``signed_out_at`` is None."""

    id: str
    tenant_id: str
    agent_no: str
    kind: SeatKind
    interface: str
    signed_in_at: datetime
    signed_out_at: datetime | None
    status: AgentStatus
    version: int = 1

    @property
    def is_open(self) -> bool:
        """Say whether the agent is still signed in on this session."""
        return self.signed_out_at is None


@dataclass(frozen=True, slots=True)
class StateInterval:
    """How long an agent stayed in one state, for reports; open while ``ended_at`` is None."""

    tenant_id: str
    agent_no: str
    state: AgentState
    reason: str
    started_at: datetime
    ended_at: datetime | None = None


# --- ports -----------------------------------------------------------------------------------


class AgentRepo(Protocol):
    """Agents with their skills."""

    async def create(self, record: AgentRecord) -> AgentRecord:
        """Insert the agent (stored with version 1); ``AlreadyExistsError`` for a taken 工号."""
        ...

    async def get(self, tenant_id: str, agent_no: str) -> AgentRecord | None:
        """Return the agent, or None (also when it belongs to another tenant)."""
        ...

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> builtins.list[AgentRecord]:
        """Return agents ordered by 工号, strictly after the keyset cursor ``after``."""
        ...

    async def update(self, record: AgentRecord) -> AgentRecord:
        """Replace the agent and its skills if still at ``record.version``; return version + 1.

        Raises ``StaleWriteError`` when the version moved on or the agent is gone.
        """
        ...

    async def delete(self, tenant_id: str, agent_no: str) -> bool:
        """Delete the agent and its skills; say whether it existed."""
        ...


class SkillGroupRepo(Protocol):
    """Skill groups of a tenant."""

    async def create(self, record: SkillGroupRecord) -> SkillGroupRecord:
        """Insert the group; ``AlreadyExistsError`` when the tenant already has that name."""
        ...

    async def get(self, tenant_id: str, name: str) -> SkillGroupRecord | None:
        """Return the group, or None."""
        ...

    async def list(
        self, tenant_id: str, after: str | None = None, limit: int = 100
    ) -> builtins.list[SkillGroupRecord]:
        """Return groups ordered by name, strictly after the keyset cursor ``after``."""
        ...

    async def delete(self, tenant_id: str, name: str) -> bool:
        """Delete the group (and agents' memberships of it); say whether it existed."""
        ...


class DialPolicyRepo(Protocol):
    """Per-tenant dial policies (outbound prefixes)."""

    async def get(self, tenant_id: str) -> DialPolicyRecord | None:
        """Return the tenant's policy, or ``None`` when it was never set."""
        ...

    async def put(self, record: DialPolicyRecord) -> None:
        """Create or replace the policy (``RecordNotFoundError`` for an unknown tenant)."""
        ...


class LeaseRepo(Protocol):
    """Seat leases and their change requests."""

    async def create(self, lease: SeatLease) -> LeaseRecord:
        """Store a lease for ``lease.tenant`` under a new id."""
        ...

    async def get(self, tenant_id: str, lease_id: str) -> SeatLease | None:
        """Return the lease, or None."""
        ...

    async def list(self, tenant_id: str) -> builtins.list[LeaseRecord]:
        """Return the tenant's leases ordered by ``valid_from``."""
        ...

    async def active_lease(self, tenant_id: str, at: datetime) -> SeatLease | None:
        """Return the lease whose window contains the instant ``at`` (the latest-starting one)."""
        ...

    async def add_change(self, change: LeaseChange) -> LeaseChangeRecord:
        """Store a change request for ``change.tenant``."""
        ...

    async def pending_changes(self, tenant_id: str) -> builtins.list[LeaseChangeRecord]:
        """Return changes not yet applied, by ``(effective_on, requested_at)``."""
        ...

    async def mark_applied(self, tenant_id: str, change_id: str, at: datetime) -> bool:
        """Mark a pending change as carried out at ``at``; say whether one was pending."""
        ...


class SeatSessionRepo(Protocol):
    """Seat sessions: at most one open session per (tenant, 工号), enforced by the database."""

    async def open(self, session: SeatSession) -> None:
        """Insert an open session; ``AlreadySignedInError`` if the 工号 has one already,
        ``DeviceInUseError`` if its softphone carries another open session.

        Two concurrent calls for the same 工号, or the same softphone, cannot both succeed.
        """
        ...

    async def get(self, tenant_id: str, session_id: str) -> SeatSession | None:
        """Return one session (open or closed), or None."""
        ...

    async def get_open(self, tenant_id: str, agent_no: str) -> SeatSession | None:
        """Return the agent's open session, or None."""
        ...

    async def get_open_on_interface(self, interface: str) -> SeatSession | None:
        """Return the open session on a softphone (any tenant), or None; an index lookup."""
        ...

    async def open_seat_on_interface(self, interface: str) -> tuple[str, str] | None:
        """``(tenant, 工号)`` of the open session on a softphone, or None: asked for every
        queue call start and end the PBX reports, so it must be cheap."""
        ...

    async def list_open(
        self, tenant_id: str | None, *, pbx: str | None = None
    ) -> builtins.list[SeatSession]:
        """Return open sessions of a tenant, or of all tenants with None (the reconciler); with
        *pbx*, only those of the tenants placed on it."""
        ...

    async def count_open_by_kind(self, tenant_id: str) -> dict[SeatKind, int]:
        """Count the tenant's open sessions per seat kind (every kind present, 0 if none)."""
        ...

    async def save_status(self, session: SeatSession) -> SeatSession:
        """Store ``session.status`` if still at ``session.version``; return version + 1.

        Raises ``StaleWriteError`` when the version moved on or the session is closed or gone.
        """
        ...

    async def close(self, session: SeatSession, at: datetime) -> SeatSession:
        """Sign the session out at ``at`` (with ``session.status``) under the version check."""
        ...

    async def intervals(
        self, tenant_id: str, start: datetime, end: datetime
    ) -> builtins.list[SignInInterval]:
        """Return sign-in intervals overlapping ``[start, end)`` (unclipped), for utilisation."""
        ...


class StateIntervalRepo(Protocol):
    """Agent state history for reports."""

    async def append(self, interval: StateInterval) -> None:
        """Close the agent's open interval at ``interval.started_at`` and open ``interval``."""
        ...

    async def close(self, tenant_id: str, agent_no: str, at: datetime) -> int:
        """End the agent's open interval at ``at`` (sign-out); return how many were closed."""
        ...

    async def list(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        agent_no: str | None = None,
    ) -> Sequence[StateInterval]:
        """Return intervals overlapping ``[start, end)`` ordered by start time."""
        ...
