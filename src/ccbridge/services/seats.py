"""Seat use cases: sign in/out and state changes, carried out on the DB and the PBX queues.

The database is the truth (ADR 0005): a transition is stored first, then its queue effects are
sent to Asterisk. If the PBX is unreachable the stored state stands and the reconciler repairs
the queues on the next cycle, so nothing the agent did is lost.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from ccbridge.domain.access import Principal
from ccbridge.domain.acd.membership import QueueMemberSpec, penalty_for_level, queue_name
from ccbridge.domain.agents.policy import (
    Queued,
    RefusalCode,
    Refused,
    SeatPolicy,
    check_agent_sign_in,
)
from ccbridge.domain.agents.state import (
    AgentState,
    AgentStatus,
    BreakGranted,
    CallEnded,
    CallStarted,
    FloorContext,
    Input,
    Outcome,
    QueueAddEffect,
    QueuePauseEffect,
    QueueRemoveEffect,
    SignIn,
    SignOut,
    Tick,
    transition,
)
from ccbridge.domain.calendar import local_date
from ccbridge.domain.leases.model import SeatLease, can_sign_in, lease_on
from ccbridge.domain.time import Clock
from ccbridge.errors import ConflictError, NotFoundError
from ccbridge.services.acd import QueueControl
from ccbridge.services.endpoints import SYSTEM, EndpointGuard
from ccbridge.services.seat_ports import (
    AgentRecord,
    AgentRepo,
    DeviceInUseError,
    LeaseRepo,
    SeatSession,
    SeatSessionRepo,
    StateInterval,
    StateIntervalRepo,
)

log = structlog.get_logger(__name__)

AGENT_PAGE = 1000


class SeatRefusedError(ConflictError):
    """Raised when a seat rule refuses a request; ``reason`` is the stable domain code."""

    def __init__(self, refusal: Refused) -> None:
        super().__init__(refusal.message)
        self.reason: RefusalCode = refusal.code


class AgentNotFoundError(NotFoundError):
    """Raised when the 工号 does not exist in the caller's tenant."""


@dataclass(frozen=True, slots=True)
class SeatResult:
    """The session after a request, and what the request became."""

    session: SeatSession
    queued: str | None = None
    """Set when the request waits (a break with the floor cap reached)."""
    pbx_synced: bool = True
    """False when the PBX could not be told; the reconciler repairs it."""


class SeatService:
    """Carry out agents' and supervisors' seat requests under the tenant's rules."""

    def __init__(
        self,
        *,
        agents: AgentRepo,
        leases: LeaseRepo,
        sessions: SeatSessionRepo,
        intervals: StateIntervalRepo,
        queues: QueueControl,
        endpoints: EndpointGuard,
        clock: Clock,
        policy_for: Callable[[str], SeatPolicy] = lambda _tenant: SeatPolicy(),
        pbx: str | None = None,
    ) -> None:
        """*pbx*: the periodic tick covers the seats of the tenants placed on it (ADR 0033)."""
        self._pbx = pbx
        self._agents = agents
        self._leases = leases
        self._sessions = sessions
        self._intervals = intervals
        self._queues = queues
        self._endpoints = endpoints
        self._clock = clock
        self._policy_for = policy_for
        # One process owns the seats (ADR 0001): a per-tenant lock makes "count, then open"
        # atomic, so the 11th sign-in on a 10-seat lease cannot slip through concurrently.
        self._tenant_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.pbx_failures = 0

    async def sign_in(
        self,
        tenant_id: str,
        agent_no: str,
        *,
        ready: bool = True,
        reason: str = "",
        endpoint: str | None = None,
        endpoint_field: str = "body.endpoint",
        who: Principal = SYSTEM,
    ) -> SeatResult:
        """签入: check certification, one sign-in per 工号 and the lease, then join the queues.

        Seats are not bound to a PC: ``endpoint`` (id, name or interface) picks the tenant's
        phone the agent sits at today (default: the agent's own). Either way the phone must be
        one of the tenant's endpoints (422 naming ``endpoint_field`` otherwise, audited).
        """
        agent = await self._agent(tenant_id, agent_no)
        selector, field = (
            (agent.interface, "agent.interface") if endpoint is None else (endpoint, endpoint_field)
        )
        phone = await self._endpoints.resolve(who, tenant_id, selector, field=field)
        agent = replace(agent, interface=phone.interface)
        now = self._clock.now()
        async with self._tenant_locks[tenant_id]:
            existing = await self._sessions.get_open(tenant_id, agent_no)
            _raise_if_refused(check_agent_sign_in(agent_no, agent.certified, existing is not None))
            await self._check_device_free(agent.interface)
            lease = await lease_in_force(self._leases, tenant_id, now)
            counts = await self._sessions.count_open_by_kind(tenant_id)
            _raise_if_refused(can_sign_in(counts, lease, agent.seat_kind, now))
            outcome = transition(
                AgentStatus(since=now), SignIn(ready, reason), now, self._policy_for(tenant_id)
            )
            _raise_if_refused(outcome.decision)
            session = SeatSession(
                id=uuid.uuid4().hex,
                tenant_id=tenant_id,
                agent_no=agent_no,
                kind=agent.seat_kind,
                interface=agent.interface,
                signed_in_at=now,
                signed_out_at=None,
                status=outcome.status,
            )
            try:
                await self._sessions.open(session)
            except DeviceInUseError as exc:  # lost a race for the same softphone
                raise _device_in_use(agent.interface) from exc
        await self._record_interval(session, now)
        synced = await self._apply(agent, outcome)
        log.info("seat_signed_in", tenant=tenant_id, agent_no=agent_no, kind=agent.seat_kind)
        return SeatResult(session, pbx_synced=synced)

    async def request(self, tenant_id: str, agent_no: str, command: Input) -> SeatResult:
        """Apply a command (ready, not-ready, break, deferred actions, sign-out) to a seat."""
        with structlog.contextvars.bound_contextvars(tenant=tenant_id, agent_no=agent_no):
            return await self._request(tenant_id, agent_no, command)

    async def _request(self, tenant_id: str, agent_no: str, command: Input) -> SeatResult:
        """:meth:`request` with the seat bound to every log line it emits."""
        agent = await self._agent(tenant_id, agent_no)
        async with self._tenant_locks[tenant_id]:
            session = await self._open_session(tenant_id, agent_no)
            agent = replace(agent, interface=session.interface)
            now = self._clock.now()
            ctx = FloorContext(agents_on_break=await self._on_break(tenant_id, agent_no))
            outcome = transition(session.status, command, now, self._policy_for(tenant_id), ctx)
            _raise_if_refused(outcome.decision)
            session = await self._store(session, outcome, now)
        synced = await self._apply(agent, outcome)
        if outcome.status.state is not AgentState.BREAK:
            await self._grant_waiting_breaks(tenant_id)
        queued = outcome.decision.message if isinstance(outcome.decision, Queued) else None
        return SeatResult(session, queued=queued, pbx_synced=synced)

    async def sign_out(self, tenant_id: str, agent_no: str) -> SeatResult:
        """签出 now (refused while on a call: use "sign out after this call")."""
        return await self.request(tenant_id, agent_no, SignOut())

    async def call_event(self, interface: str, started: bool) -> None:
        """Feed an answered or finished queue call of a member interface into its seat (a
        softphone has at most one open seat; most queue calls reach no seat at all)."""
        seat = await self._sessions.open_seat_on_interface(interface)
        if seat is None:
            return
        tenant_id, agent_no = seat
        event = CallStarted() if started else CallEnded()
        try:
            await self.request(tenant_id, agent_no, event)
        except SeatRefusedError as exc:
            log.info("seat_call_event_ignored", agent_no=agent_no, why=str(exc))

    async def tick(self) -> int:
        """Let time pass for every open seat (the end of wrap-up); return the seats ticked.

        Floor alerts (示忙 or 小休 too long…) are the floor rules' (``FloorAlertService``)."""
        ticked = 0
        for session in await self._sessions.list_open(None, pbx=self._pbx):
            try:
                await self.request(session.tenant_id, session.agent_no, Tick())
            except (SeatRefusedError, NotFoundError):
                continue
            ticked += 1
        return ticked

    def breaks_today(self, session: SeatSession, now: datetime) -> int:
        """Breaks the seat has taken on the tenant-local day of *now* (its rules' day)."""
        zone = self._policy_for(session.tenant_id).timezone
        return session.status.breaks.on(local_date(now, zone))

    async def retire_tenant(self, tenant_id: str) -> int:
        """A terminated tenant: close every open seat, even mid-call, and take its members out
        of the queues; return how many seats closed. A PBX failure is counted and logged."""
        closed = 0
        async with self._tenant_locks[tenant_id]:
            for session in await self._sessions.list_open(tenant_id):
                now = self._clock.now()
                outcome = Outcome(AgentStatus(since=now), (QueueRemoveEffect(),))
                await self._store(session, outcome, now)
                agent = await self._agents.get(tenant_id, session.agent_no)
                if agent is not None:
                    await self._apply(replace(agent, interface=session.interface), outcome)
                closed += 1
        log.info("seats_retired", tenant=tenant_id, closed=closed)
        return closed

    async def live(self, tenant_id: str) -> list[SeatSession]:
        """Return every signed-in seat of the tenant (the wallboard)."""
        return await self._sessions.list_open(tenant_id)

    async def census(self) -> list[tuple[str, str, str, int]]:
        """Signed-in agents as ``(tenant, skill group, state, count)`` rows (the floor metric).

        An agent counts once in each of its skill groups, as Asterisk counts queue members;
        with several PBXs, each PBX's nodes count its tenants' seats (summed once per PBX).
        """
        counts: Counter[tuple[str, str, str]] = Counter()
        by_tenant: defaultdict[str, list[SeatSession]] = defaultdict(list)
        for session in await self._sessions.list_open(None, pbx=self._pbx):
            by_tenant[session.tenant_id].append(session)
        for tenant_id, sessions in by_tenant.items():
            agents = await all_agents(self._agents, tenant_id)
            for session in sessions:
                agent = agents.get(session.agent_no)
                for skill in agent.skills if agent is not None else ():
                    counts[(tenant_id, skill.skill_group, session.status.state.value)] += 1
        return [(t, g, s, n) for (t, g, s), n in sorted(counts.items())]

    async def _agent(self, tenant_id: str, agent_no: str) -> AgentRecord:
        agent = await self._agents.get(tenant_id, agent_no)
        if agent is None:
            raise AgentNotFoundError(f"agent {agent_no} not found")
        return agent

    async def _check_device_free(self, interface: str) -> None:
        """One softphone carries one seat: two agents on one device would share its calls."""
        if await self._sessions.get_open_on_interface(interface) is not None:
            raise _device_in_use(interface)

    async def _open_session(self, tenant_id: str, agent_no: str) -> SeatSession:
        session = await self._sessions.get_open(tenant_id, agent_no)
        if session is None:
            raise SeatRefusedError(
                Refused(RefusalCode.INVALID_TRANSITION, f"Agent {agent_no} is not signed in.")
            )
        return session

    async def _on_break(self, tenant_id: str, agent_no: str) -> int:
        return sum(
            1
            for s in await self._sessions.list_open(tenant_id)
            if s.status.state is AgentState.BREAK and s.agent_no != agent_no
        )

    async def _store(self, session: SeatSession, outcome: Outcome, now: datetime) -> SeatSession:
        old_state = session.status.state
        updated = replace(session, status=outcome.status)
        if outcome.status.state is AgentState.SIGNED_OUT:
            stored = await self._sessions.close(updated, now)
            await self._intervals.close(session.tenant_id, session.agent_no, now)
            log.info("seat_signed_out", tenant=session.tenant_id, agent_no=session.agent_no)
            return stored
        stored = await self._sessions.save_status(updated)
        if outcome.status.state is not old_state or outcome.status.reason != session.status.reason:
            await self._record_interval(stored, now)
            log.info(
                "agent_state_changed",
                tenant=session.tenant_id,
                agent_no=session.agent_no,
                old=old_state.value,
                new=outcome.status.state.value,
                reason=outcome.status.reason,
            )
        return stored

    async def _record_interval(self, session: SeatSession, now: datetime) -> None:
        status = session.status
        await self._intervals.append(
            StateInterval(session.tenant_id, session.agent_no, status.state, status.reason, now)
        )

    async def _apply(self, agent: AgentRecord, outcome: Outcome) -> bool:
        """Send the outcome's queue effects to the PBX, one queue at a time.

        One queue failing does not stop the others. Returns False if any failed.
        """
        synced = True
        for effect in outcome.effects:
            for operation in self._operations(agent, effect):
                try:
                    await operation()
                except Exception as exc:  # the PBX is not the truth: the reconciler repairs it
                    synced = False
                    self.pbx_failures += 1
                    log.warning(
                        "seat_pbx_sync_failed",
                        agent_no=agent.agent_no,
                        effect=type(effect).__name__,
                        error=f"{type(exc).__name__}: {exc}",
                    )
        return synced

    def _operations(
        self, agent: AgentRecord, effect: object
    ) -> list[Callable[[], Awaitable[None]]]:
        """The PBX calls one effect needs: one per skill-group queue."""
        q = self._queues
        match effect:
            case QueueAddEffect(paused=paused, reason=reason):
                specs = memberships(agent, paused, reason)
                return [functools.partial(q.add_member, spec) for spec in specs]
            case QueueRemoveEffect():
                specs = memberships(agent, False, "")
                return [functools.partial(q.remove_member, s.queue, s.interface) for s in specs]
            case QueuePauseEffect(paused=paused, reason=reason):
                specs = memberships(agent, paused, reason)
                return [
                    functools.partial(q.set_paused, s.queue, s.interface, paused, s.reason)
                    for s in specs
                ]
            case _:
                return []  # deferred-action markers carry no PBX work

    async def _grant_waiting_breaks(self, tenant_id: str) -> None:
        """Start the oldest queued break when the floor has room again."""
        waiting = [s for s in await self._sessions.list_open(tenant_id) if s.status.break_requested]
        for session in sorted(waiting, key=lambda s: s.status.since):
            try:
                result = await self.request(tenant_id, session.agent_no, BreakGranted())
            except SeatRefusedError:
                return
            if result.session.status.state is not AgentState.BREAK:
                return


async def all_agents(repo: AgentRepo, tenant_id: str) -> dict[str, AgentRecord]:
    """Every agent of a tenant by 工号, read in pages."""
    agents: dict[str, AgentRecord] = {}
    after: str | None = None
    while True:
        page = await repo.list(tenant_id, after=after, limit=AGENT_PAGE)
        agents.update((a.agent_no, a) for a in page)
        if len(page) < AGENT_PAGE:
            return agents
        after = page[-1].agent_no


async def lease_in_force(leases: LeaseRepo, tenant_id: str, at: datetime) -> SeatLease | None:
    """The lease at ``at``: the active lease with seat changes that are due applied."""
    lease = await leases.active_lease(tenant_id, at)
    if lease is None:
        return None
    changes = [c.change for c in await leases.pending_changes(tenant_id)]
    return lease_on(lease, changes, local_date(at, lease.timezone))


def memberships(agent: AgentRecord, paused: bool, reason: str) -> list[QueueMemberSpec]:
    """The queue memberships of a signed-in agent: one per skill group, penalty from level."""
    return [
        QueueMemberSpec(
            queue=queue_name(agent.tenant_id, skill.skill_group),
            interface=agent.interface,
            member_name=f"{agent.agent_no} {agent.name}",
            penalty=penalty_for_level(skill.level),
            paused=paused,
            reason=reason if paused else "",
        )
        for skill in agent.skills
    ]


def _device_in_use(interface: str) -> SeatRefusedError:
    return SeatRefusedError(
        Refused(
            RefusalCode.DEVICE_IN_USE,
            f"The softphone {interface} already carries a signed-in seat.",
        )
    )


def _raise_if_refused(decision: object) -> None:
    if isinstance(decision, Refused):
        raise SeatRefusedError(decision)


class DesiredSeats:
    """The reconciler's source: open sessions × agents' skill groups, paused as the DB says.

    Only a seat on a phone its tenant has claimed is re-added: a session row that names any
    other interface (edited in the database, or older than endpoints) never reaches the PBX.
    """

    def __init__(
        self,
        sessions: SeatSessionRepo,
        agents: AgentRepo,
        owned_queues: Callable[[], Awaitable[Collection[str]]],
        endpoints: EndpointGuard,
        *,
        pbx: str | None = None,
    ) -> None:
        """*pbx*: only the seats of the tenants placed on it reach its queues (ADR 0033)."""
        self._pbx = pbx
        self._sessions = sessions
        self._agents = agents
        self._owned_queues = owned_queues
        self._endpoints = endpoints
        self._managed: frozenset[str] = frozenset()

    async def desired(self) -> list[QueueMemberSpec]:
        """Every membership that should exist now (agents are read per tenant, in pages).

        Also refreshes the managed queues: every skill group's queue, of every tenant.
        """
        self._managed = frozenset(await self._owned_queues())
        by_tenant: defaultdict[str, list[SeatSession]] = defaultdict(list)
        open_sessions = await self._sessions.list_open(None, pbx=self._pbx)
        owners = await self._endpoints.owners({s.interface for s in open_sessions})
        for session in open_sessions:
            if owners.get(session.interface) != session.tenant_id:
                log.warning(
                    "seat_on_unclaimed_phone",
                    tenant=session.tenant_id,
                    agent_no=session.agent_no,
                    interface=session.interface,
                )
                continue
            by_tenant[session.tenant_id].append(session)
        out: list[QueueMemberSpec] = []
        for tenant_id, sessions in by_tenant.items():
            agents = await self._all_agents(tenant_id)
            for session in sessions:
                agent = agents.get(session.agent_no)
                if agent is not None:
                    status = session.status
                    seated = replace(agent, interface=session.interface)
                    out.extend(memberships(seated, status.paused, status.pause_reason))
        return out

    async def _all_agents(self, tenant_id: str) -> dict[str, AgentRecord]:
        return await all_agents(self._agents, tenant_id)

    def managed_queues(self) -> frozenset[str]:
        """The queues ccbridge owns, as of the last :meth:`desired`."""
        return self._managed
