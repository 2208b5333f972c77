"""B-SEAT: 2,000 agents signing in, changing state and signing out; the reconciler on top.

Usage: .venv/bin/python bench/seats.py [--agents 2000] [--concurrency 50] [--runs 3]

The real stack, wired as ``bootstrap._seats()`` does but standalone: a temp SQLite database
(migrated), the SQL repositories, ``AuditRecorder`` over ``SqlAccessUnitOfWork``, a fake
Asterisk 22 over loopback AMI (same process, same event loop, like the other benches) with
``AmiClient`` + ``AmiQueueControl``, and ``SeatService``. 20 tenants (100 agents each), each
with a 100-seat inbound lease and 3 skill groups; every agent is in all 3 groups.

Requests are spread round-robin over the tenants and run ``--concurrency`` at a time; the
service serialises each tenant's requests itself. Latency is per request, lock wait included.

(1) sign-ins over AMI (each: 3 × QueueAdd paused + 3 × unpause);
(2) state changes: 示忙 with a reason (3 × QueuePause), then 示闲 (3 × QueuePause);
(3) sign-outs (3 × QueueRemove);
(4) the same sign-ins with a no-op PBX (DB cost only; the difference to (1) is the AMI cost);
(peer) the bare repository calls a sign-in needs, without the service: get agent, get_open,
    count_open_by_kind, active_lease, open session, append interval. ratio (4)/peer = what the
    service adds (rules, locks, the device check, pending lease changes);
(5) one Reconciler cycle with the DB-backed desired state (DesiredSeats), in sync
    (target ≤ 3 s), and after a PBX restart that lost every member.

A failed request is counted and printed (FAILED n: {error: count}), not fatal; each phase is
printed as soon as it ends. A request whose PBX action failed leaves drift, which the first
(untimed) reconciler cycle repairs and prints before the timed in-sync cycles. The sign-in's
one-seat-per-softphone check is an index lookup (partial unique index on open sessions'
interface), so run time grows linearly with ``--agents``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import structlog

from ccbridge.api.security import JwtCodec
from ccbridge.asterisk.ami.client import AmiClient, AmiConfig
from ccbridge.asterisk.queue_control import AmiQueueControl
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.repositories.agents import AgentRepository
from ccbridge.db.repositories.leases import LeaseRepository
from ccbridge.db.repositories.seat_sessions import SeatSessionRepository, StateIntervalRepository
from ccbridge.db.repositories.skill_groups import SkillGroupRepository
from ccbridge.domain.access import ROLE_SCOPES, Principal, Role
from ccbridge.domain.acd.membership import DriftKind, QueueMemberSpec, queue_name
from ccbridge.domain.agents.policy import Refused, SeatPolicy
from ccbridge.domain.agents.state import AgentStatus, SetNotReady, SetReady, SignIn, transition
from ccbridge.domain.leases.model import SeatKind, SeatLease, can_sign_in
from ccbridge.domain.time import SystemClock
from ccbridge.services.acd import DriftLog, Reconciler
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.leases import LeaseService
from ccbridge.services.seat_ports import (
    AgentRecord,
    SeatSession,
    SkillGroupRecord,
    SkillLevel,
    StateInterval,
)
from ccbridge.services.seats import DesiredSeats, SeatResult, SeatService
from ccbridge.services.tenants import AccessService
from ccbridge.testing.fake_pbx import FakeAsterisk
from ccbridge.testing.pbx_model import QueueSpec

AGENTS_PER_TENANT = 100
GROUPS = ("sales", "support", "billing")
NOT_READY_REASON = "培训 training"
PLATFORM = Principal(
    actor="system:bench",
    role=Role.PLATFORM_ADMIN,
    tenant_id=None,
    scopes=ROLE_SCOPES[Role.PLATFORM_ADMIN],
)


class NoopQueues:
    """QueueControl that does nothing (a copy of tests' RecordingQueues, minus the recording)."""

    async def add_member(self, spec: QueueMemberSpec) -> None:
        pass

    async def remove_member(self, queue: str, interface: str) -> None:
        pass

    async def set_paused(self, queue: str, interface: str, paused: bool, reason: str) -> None:
        pass

    async def set_penalty(self, queue: str, interface: str, penalty: int) -> None:
        pass

    async def snapshot(self, queues: Collection[str]) -> list[QueueMemberSpec]:  # noqa: ARG002
        return []


@dataclass(frozen=True, slots=True)
class Phase:
    """One timed batch of requests."""

    ops: int
    seconds: float
    latencies: list[float]
    errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    def line(self, label: str) -> str:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] * 1e3
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
        return (
            f"{label:<44} {self.ops:>6,} ops {self.seconds:>7.2f} s {self.rate:>8,.0f} ops/s"
            f"   p50 {p50:>7.1f} ms   p99 {p99:>7.1f} ms"
            + (f"   FAILED {sum(self.errors.values())}: {self.errors}" if self.errors else "")
        )


Op = Callable[[str, str], Awaitable[object]]


async def drive(work: list[tuple[str, str]], op: Op, concurrency: int) -> Phase:
    """Run ``op(tenant, agent_no)`` for every item, ``concurrency`` at a time, in list order."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    items = iter(work)

    async def worker() -> None:
        for tenant, agent_no in items:
            t0 = time.perf_counter()
            try:
                await op(tenant, agent_no)
            except Exception as exc:  # counted and printed: a failed request is a finding
                errors[_error_name(exc)] += 1
            latencies.append(time.perf_counter() - t0)

    gc.collect()
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    return Phase(len(work), time.perf_counter() - t0, latencies, dict(errors))


def _error_name(exc: BaseException) -> str:
    """The exception type, plus the driver's message for SQLAlchemy's wrapped errors."""
    orig = getattr(exc, "orig", None)
    return type(exc).__name__ + (f"({orig})" if orig is not None else "")


def plan(agents: int) -> dict[str, list[str]]:
    """Tenant id → its 工号 (100 per tenant, the last tenant takes the remainder)."""
    tenants = max(1, -(-agents // AGENTS_PER_TENANT))
    out: dict[str, list[str]] = {}
    for t in range(tenants):
        first = t * AGENTS_PER_TENANT
        last = min(agents, first + AGENTS_PER_TENANT)
        out[f"t{t + 1:02d}"] = [f"{10000 + n}" for n in range(first, last)]
    return out


def round_robin(tenants: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Agent 1 of every tenant, then agent 2 of every tenant, ...: requests span all tenants."""
    longest = max(len(a) for a in tenants.values())
    return [(t, a[i]) for i in range(longest) for t, a in tenants.items() if i < len(a)]


def checked(result: object) -> None:
    """Every request of the bench must reach the PBX; a silent failure would flatter it."""
    assert isinstance(result, SeatResult)
    assert result.pbx_synced, result


async def seed(
    tenants: dict[str, list[str]],
    access: AccessService,
    lease_service: LeaseService,
    groups: SkillGroupRepository,
    agents: AgentRepository,
) -> None:
    """Tenants (with audit), 100-seat inbound leases (with audit), groups and agents."""
    today = datetime.now(UTC).date()
    for tenant, numbers in tenants.items():
        await access.create_tenant(PLATFORM, tenant_id=tenant, name=f"租户 {tenant}")
        await lease_service.create(
            PLATFORM,
            SeatLease(
                tenant,
                {SeatKind.INBOUND: AGENTS_PER_TENANT},
                valid_from=today - timedelta(days=30),
                monthly_price={SeatKind.INBOUND: Decimal("800.00")},
            ),
        )
        for g in GROUPS:
            await groups.create(SkillGroupRecord(tenant, g, queue_name(tenant, g)))
        for number in numbers:
            await agents.create(
                AgentRecord(
                    tenant_id=tenant,
                    agent_no=number,
                    name=f"坐席{number}",
                    certified=True,
                    interface=f"PJSIP/{number}",
                    seat_kind=SeatKind.INBOUND,
                    skills=tuple(SkillLevel(g, 3 * (i + 1)) for i, g in enumerate(GROUPS)),
                )
            )


class BareSignIn:
    """The peer: the repository calls of one sign-in, no rules, no lock, no PBX."""

    def __init__(
        self,
        agents: AgentRepository,
        sessions: SeatSessionRepository,
        leases: LeaseRepository,
        intervals: StateIntervalRepository,
    ) -> None:
        self.agents = agents
        self.sessions = sessions
        self.leases = leases
        self.intervals = intervals
        self.opened: list[SeatSession] = []

    async def sign_in(self, tenant: str, agent_no: str) -> None:
        now = datetime.now(UTC)
        agent = await self.agents.get(tenant, agent_no)
        assert agent is not None
        assert await self.sessions.get_open(tenant, agent_no) is None
        counts = await self.sessions.count_open_by_kind(tenant)
        lease = await self.leases.active_lease(tenant, now)
        assert lease is not None
        assert not isinstance(can_sign_in(counts, lease, agent.seat_kind, now), Refused)
        status = transition(AgentStatus(since=now), SignIn(), now, SeatPolicy()).status
        session = SeatSession(
            uuid.uuid4().hex, tenant, agent_no, agent.seat_kind, agent.interface, now, None, status
        )
        await self.sessions.open(session)
        await self.intervals.append(
            StateInterval(tenant, agent_no, status.state, status.reason, now)
        )
        self.opened.append(session)

    async def sign_out_all(self) -> None:
        now = datetime.now(UTC)
        for session in self.opened:
            await self.sessions.close(session, now)
            await self.intervals.close(session.tenant_id, session.agent_no, now)
        self.opened.clear()


def pin_to_one_core() -> str:
    """Pin the process (and the aiosqlite threads it starts later) to one CPU."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


async def run(n_agents: int, concurrency: int, runs: int, db_dir: Path) -> None:
    tenants = plan(n_agents)
    work = round_robin(tenants)
    url = f"sqlite+aiosqlite:///{db_dir / 'seats.db'}"
    await run_migrations_async(url)
    engine = create_engine(url)
    db = create_session_factory(engine)
    clock = SystemClock()

    # --- the stack, as bootstrap._seats() wires it -------------------------------------------
    agents = AgentRepository(db)
    groups = SkillGroupRepository(db)
    leases = LeaseRepository(db)
    seat_sessions = SeatSessionRepository(db)
    intervals = StateIntervalRepository(db)
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(db), clock.now)
    access = AccessService(
        lambda: SqlAccessUnitOfWork(db),
        JwtCodec("bench-secret-not-used-for-anything"),
        now=clock.now,
        token_ttl_seconds=3600,
    )
    queues = [queue_name(t, g) for t in tenants for g in GROUPS]
    pbx = FakeAsterisk(
        queues=[QueueSpec(q) for q in queues], agi_url=None, seed=1, auth_fail_delay=0
    )
    pbx.ami.write_timeout = 30.0  # a 6,000-member QueueStatus is one big burst
    await pbx.start()
    client = AmiClient(
        AmiConfig(
            host="127.0.0.1",
            port=pbx.ami_port,
            username="ccbridge",
            secret="secret",
            action_timeout=30.0,
            ping_interval=60,
            backoff_initial=0.01,
            backoff_max=0.05,
        )
    )
    control = AmiQueueControl(client, status_timeout=60)

    def seat_service(q: AmiQueueControl | NoopQueues) -> SeatService:
        return SeatService(
            agents=agents,
            leases=leases,
            sessions=seat_sessions,
            intervals=intervals,
            queues=q,
            clock=clock,
        )

    seats = seat_service(control)
    noop_seats = seat_service(NoopQueues())

    async def owned_queues() -> list[str]:
        return [g.queue for g in await groups.all_groups()]

    desired = DesiredSeats(seat_sessions, agents, owned_queues)
    reconciler = Reconciler(control, desired, DriftLog(), clock)
    peer = BareSignIn(agents, seat_sessions, leases, intervals)
    task = asyncio.create_task(client.run())
    try:
        await client.wait_synced(5)
        t0 = time.perf_counter()
        await seed(
            tenants, access, LeaseService(leases, seat_sessions, audit, clock.now), groups, agents
        )
        print(
            f"{n_agents:,} agents in {len(tenants)} tenants × {len(GROUPS)} skill groups "
            f"({n_agents * len(GROUPS):,} memberships, {len(queues)} queues), "
            f"concurrency {concurrency}; seeded in {time.perf_counter() - t0:.1f} s"
        )

        # Warm-up (untimed): compile every statement once on both paths.
        warm = work[: min(len(work), 2 * len(tenants))]
        for s in (noop_seats, seats):
            await drive(warm, s.sign_in, concurrency)
            await drive(warm, lambda t, a, s=s: s.request(t, a, SetNotReady("x")), concurrency)
            await drive(warm, lambda t, a, s=s: s.request(t, a, SetReady()), concurrency)
            await drive(warm, s.sign_out, concurrency)
        await drive(warm, peer.sign_in, concurrency)
        await peer.sign_out_all()

        # Peer, then (4): same requests, same order, same database size (sessions closed
        # between them through the bare repositories, untimed).
        bare = await drive(work, peer.sign_in, concurrency)
        print(bare.line("(peer) bare repository sign-in"), flush=True)
        await peer.sign_out_all()
        noop_in = await drive(work, noop_seats.sign_in, concurrency)
        print(noop_in.line("(4) sign-in, no-op PBX"), flush=True)
        peer.opened = await seat_sessions.list_open(None)
        await peer.sign_out_all()

        # (1)-(3) over AMI; the reconciler runs while everyone is signed in.
        async def sign_in(t: str, a: str) -> None:
            checked(await seats.sign_in(t, a))

        async def not_ready(t: str, a: str) -> None:
            checked(await seats.request(t, a, SetNotReady(NOT_READY_REASON)))

        async def ready(t: str, a: str) -> None:
            checked(await seats.request(t, a, SetReady()))

        async def sign_out(t: str, a: str) -> None:
            checked(await seats.sign_out(t, a))

        ami_in = await drive(work, sign_in, concurrency)
        print(ami_in.line("(1) sign-in, AMI (6 actions)"), flush=True)
        ami_busy = await drive(work, not_ready, concurrency)
        print(ami_busy.line("(2) 示忙 not-ready + reason, AMI (3 actions)"), flush=True)
        ami_ready = await drive(work, ready, concurrency)
        print(ami_ready.line("    示闲 ready, AMI (3 actions)"), flush=True)
        # Half the floor 示忙 again, so the reconciler compares paused members and reasons too.
        await drive(work[::2], not_ready, concurrency)

        # What the sign-in's device check costs with everyone signed in: one index lookup.
        open_now = await seat_sessions.list_open(None)
        signed_in = len(open_now)
        probes = [s.interface for s in open_now[:200]]
        t0 = time.perf_counter()
        for interface in probes:
            assert await seat_sessions.get_open_on_interface(interface) is not None
        device_check = (time.perf_counter() - t0) / max(1, len(probes))

        # Requests whose PBX action failed under load left drift: the reconciler's job.
        settle = await reconciler.run_once()
        print(
            f"    settle cycle: repaired {dict(settle.drift) or 'nothing'} "
            f"({len(settle.failed)} repairs failed)",
            flush=True,
        )

        sync: list[float] = []
        snap: list[float] = []
        read: list[float] = []
        for _ in range(runs):
            gc.collect()
            t0 = time.perf_counter()
            members = len(await desired.desired())
            read.append(time.perf_counter() - t0)
            report = await reconciler.run_once()
            assert report.in_sync, report.drift
            assert report.actual == report.desired == members
            sync.append(report.duration)
            snap.append(report.snapshot_seconds)

        restart: list[float] = []
        for _ in range(runs):
            await pbx.ami.restart(lose_members=True)
            async with asyncio.timeout(10):
                while client.status.synced:  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
            await client.wait_synced(10)
            gc.collect()
            report = await reconciler.run_once()
            assert not report.failed, report.failed[:3]
            assert report.drift == {DriftKind.MISSING: members}, report.drift
            restart.append(report.duration)
            assert (await reconciler.run_once()).in_sync

        ami_out = await drive(work, sign_out, concurrency)
        left_open = len(await seat_sessions.list_open(None))

        # --- report ------------------------------------------------------------------------
        print(ami_out.line("(3) sign-out, AMI (3 actions)"))
        print(
            f"    ratios: service/peer sign-in time {bare.rate / noop_in.rate:.2f}×; "
            f"AMI/no-op sign-in time {noop_in.rate / ami_in.rate:.2f}× "
            f"(AMI share {1 - ami_in.rate / noop_in.rate:.0%} ≈ "
            f"{(1 / ami_in.rate - 1 / noop_in.rate) * 1e3:.2f} ms per sign-in)"
        )
        print(
            f"    device check (open session on a softphone) with {signed_in:,} seats open: "
            f"{device_check * 1e3:.2f} ms"
        )
        if left_open or seats.pbx_failures:
            print(f"    left signed in: {left_open}; PBX sync failures: {seats.pbx_failures}")
        best_sync, best_restart = min(sync), min(restart)
        print(
            f"(5) reconciler in sync, {members:,} members: best {best_sync:.3f} s, median "
            f"{statistics.median(sync):.3f} s ({members / best_sync:,.0f} members/s; "
            f"desired+QueueStatus {min(snap):.3f} s, of which the DB read alone {min(read):.3f} s)"
            f" — target ≤ 3 s: "
            f"{'PASS' if best_sync <= 3.0 else 'FAIL'}"
        )
        actions = round(members * 1.5)  # all re-added paused, the ready half unpaused
        print(
            f"    after restart (all {members:,} lost):    best {best_restart:.3f} s, median "
            f"{statistics.median(restart):.3f} s (~{actions:,} actions, "
            f"{actions / best_restart:,.0f} actions/s); ratio to in-sync "
            f"{best_restart / best_sync:.1f}×"
        )
    finally:
        await client.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await task
        await pbx.stop()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight")
    parser.add_argument("--runs", type=int, default=3, help="reconciler cycles of each kind (5)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    print(pin_to_one_core())
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.agents, args.concurrency, args.runs, Path(tmp)))


if __name__ == "__main__":
    main()
