"""Skill-group membership on the PBX: ports and the desired-state reconciler.

The database is the truth for who is signed in and paused. After every AMI (re)connect (as a
login hook) and every 30 s, :class:`Reconciler` reads the managed queues' members from the PBX,
plans the repairs with :func:`plan_repairs`, executes them and reports each drift to a sink
(``agent.state_drift`` event plus a metric). One failing repair is logged and counted and never
stops the others; the next cycle retries it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import structlog

from ccbridge.domain.acd.membership import (
    AddMember,
    DriftKind,
    QueueMemberSpec,
    RemoveMember,
    Repair,
    SetPaused,
    SetPenalty,
    plan_repairs,
)
from ccbridge.domain.time import Clock

log = structlog.get_logger(__name__)

RECONCILE_INTERVAL = 30.0
"""Seconds between two periodic cycles (a cycle also runs after every AMI login)."""


class QueueControl(Protocol):
    """The PBX side: queue membership actions and a snapshot of the members."""

    async def add_member(self, spec: QueueMemberSpec) -> None:
        """Add ``spec`` paused (reason ``signing-in``), then unpause it if ``spec`` is unpaused.

        A member that is already there counts as added; its pause state is then set to the
        spec's. A paused spec may be added directly with its own reason.
        """
        ...

    async def remove_member(self, queue: str, interface: str) -> None:
        """Remove a member; a member that is not there counts as removed."""
        ...

    async def set_paused(self, queue: str, interface: str, paused: bool, reason: str) -> None:
        """Pause (with ``reason``) or unpause a member in one queue."""
        ...

    async def set_penalty(self, queue: str, interface: str, penalty: int) -> None:
        """Change a member's penalty in one queue."""
        ...

    async def snapshot(self, queues: Collection[str]) -> list[QueueMemberSpec]:
        """Return the dynamic members of ``queues`` as the PBX has them now."""
        ...


class DesiredSeatSource(Protocol):
    """The DB side: who should be a member of which queue, and which queues ccbridge owns."""

    async def desired(self) -> list[QueueMemberSpec]:
        """Every membership that should exist now (signed-in agents × their skill groups)."""
        ...

    def managed_queues(self) -> Collection[str]:
        """The queues ccbridge owns (as of the last ``desired()``); others are never touched."""
        ...


class DriftSink(Protocol):
    """Where each drift goes: an ``agent.state_drift`` event and a metric per repair."""

    def record(self, kind: DriftKind, repair: Repair, at: datetime) -> None:
        """Record one drift and the repair planned for it."""
        ...


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What one cycle saw and did."""

    repairs: tuple[Repair, ...]
    drift: Mapping[DriftKind, int]
    failed: tuple[Repair, ...]
    duration: float
    """Seconds from the start of the snapshot to the last repair."""
    desired: int
    actual: int
    snapshot_seconds: float = 0.0
    plan_seconds: float = 0.0

    @property
    def in_sync(self) -> bool:
        """True when the PBX already matched the desired state."""
        return not self.repairs


@dataclass(slots=True)
class ReconcilerStats:
    """Totals since start, for metrics and /health."""

    cycles: int = 0
    cycles_failed: int = 0
    repairs: int = 0
    repairs_failed: int = 0
    drift: Counter[DriftKind] = field(default_factory=Counter)
    last_duration: float | None = None


class Reconciler:
    """Converge the PBX's managed queues to the DB's desired membership."""

    def __init__(
        self,
        control: QueueControl,
        source: DesiredSeatSource,
        drift_sink: DriftSink,
        clock: Clock,
        *,
        concurrency: int = 32,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._control = control
        self._source = source
        self._sink = drift_sink
        self._clock = clock
        self._concurrency = concurrency
        self._timer = timer
        self._lock = asyncio.Lock()
        self.stats = ReconcilerStats()

    async def run_once(self) -> ReconcileReport:
        """Run one full cycle: desired, snapshot, plan, repair. Cycles never overlap.

        Errors reading the desired state or the snapshot propagate (nothing was changed); errors
        of single repairs are logged, counted and reported in ``failed``.
        """
        async with self._lock:
            try:
                return await self._cycle()
            except Exception:
                self.stats.cycles_failed += 1
                raise

    async def on_login(self, _client: object) -> None:
        """AMI login hook: reconcile before the client reports itself synced."""
        await self.run_once()

    async def run(
        self,
        interval: float = RECONCILE_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Reconcile every ``interval`` seconds until cancelled; a failed cycle is logged."""
        while True:
            await sleep(interval)
            try:
                await self.run_once()
            except Exception as exc:
                log.warning("acd_reconcile_failed", error=f"{type(exc).__name__}: {exc}")

    async def _cycle(self) -> ReconcileReport:
        started = self._timer()
        # desired() first: a source may refresh its set of managed queues while reading.
        desired = await self._source.desired()
        managed = frozenset(self._source.managed_queues())
        actual = await self._control.snapshot(managed)
        snapshot_done = self._timer()
        repairs = plan_repairs(desired, actual, managed)
        plan_done = self._timer()
        unmanaged = sum(1 for m in desired if m.queue not in managed)
        if unmanaged:
            log.warning("acd_desired_outside_managed_queues", members=unmanaged)
        at = self._clock.now()
        drift: Counter[DriftKind] = Counter()
        for repair in repairs:
            drift[repair.kind] += 1
            self._sink.record(repair.kind, repair, at)
        failed = await self._execute(repairs)
        duration = self._timer() - started
        stats = self.stats
        stats.cycles += 1
        stats.repairs += len(repairs)
        stats.repairs_failed += len(failed)
        stats.drift.update(drift)
        stats.last_duration = duration
        if repairs:
            log.info(
                "acd_reconciled",
                repairs=len(repairs),
                failed=len(failed),
                drift={k.value: v for k, v in drift.items()},
                duration=round(duration, 4),
            )
        return ReconcileReport(
            repairs=tuple(repairs),
            drift=dict(drift),
            failed=tuple(failed),
            duration=duration,
            desired=len(desired),
            actual=len(actual),
            snapshot_seconds=snapshot_done - started,
            plan_seconds=plan_done - snapshot_done,
        )

    async def _execute(self, repairs: list[Repair]) -> list[Repair]:
        """Run repairs: one member's in plan order, different members concurrently."""
        if not repairs:
            return []
        groups: dict[tuple[str, str], list[Repair]] = {}
        for repair in repairs:
            groups.setdefault((repair.queue, repair.interface), []).append(repair)
        failed: list[Repair] = []
        gate = asyncio.Semaphore(self._concurrency)

        async def run_group(items: list[Repair]) -> None:
            async with gate:
                for repair in items:
                    if not await self._apply(repair):
                        failed.append(repair)

        async with asyncio.TaskGroup() as tg:
            for items in groups.values():
                tg.create_task(run_group(items))
        order = {id(r): i for i, r in enumerate(repairs)}
        failed.sort(key=lambda r: order[id(r)])
        return failed

    async def _apply(self, repair: Repair) -> bool:
        """Execute one repair; return False (after logging) when it failed."""
        control = self._control
        try:
            match repair:
                case AddMember(spec=spec):
                    await control.add_member(spec)
                case RemoveMember(queue=queue, interface=iface):
                    await control.remove_member(queue, iface)
                case SetPaused(queue=queue, interface=iface, paused=paused, reason=reason):
                    await control.set_paused(queue, iface, paused, reason)
                case SetPenalty(queue=queue, interface=iface, penalty=penalty):
                    await control.set_penalty(queue, iface, penalty)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "acd_repair_failed",
                kind=repair.kind.value,
                queue=repair.queue,
                interface=repair.interface,
                error=f"{type(exc).__name__}: {exc}",
            )
            return False
        return True


@dataclass(frozen=True, slots=True)
class DriftRecord:
    """One repair the reconciler had to make: the ``agent.state_drift`` event's content."""

    kind: DriftKind
    queue: str
    interface: str
    at: datetime


class DriftLog:
    """Keep recent drift records and totals per kind, and log each as ``agent_state_drift``."""

    def __init__(self, keep: int = 1000) -> None:
        self.recent: deque[DriftRecord] = deque(maxlen=keep)
        self.totals: Counter[DriftKind] = Counter()

    def record(self, kind: DriftKind, repair: Repair, at: datetime) -> None:
        """Record one drift (the metric is ``totals``)."""
        match repair:
            case AddMember(spec=spec):
                queue, interface = spec.queue, spec.interface
            case RemoveMember() | SetPaused() | SetPenalty():
                queue, interface = repair.queue, repair.interface
        self.recent.append(DriftRecord(kind, queue, interface, at))
        self.totals[kind] += 1
        log.warning("agent_state_drift", kind=kind.value, queue=queue, interface=interface)
