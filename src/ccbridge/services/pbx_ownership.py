"""Active/standby ownership of one PBX among several ``ccbridge serve`` nodes (ADR 0026).

Every node runs :meth:`PbxOwnership.run`. A standby tries to take the lease every
``renew_every`` seconds; the owner renews it as often. The owner's fence (``may_act``) closes
``margin`` before the database can let anyone else in, whether its renewals fail (database
away, network cut) or the loop itself is stuck: a timer ends the term at the fence, so the
hooks that drop the AMI session run even then. The AMI client asks :meth:`may_act` before
every action it writes: a node that lost ownership can send none.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from ccbridge.domain.ha.ownership import LeaseTiming, OwnershipTerm
from ccbridge.resilience.held import ErrorReport

log = structlog.get_logger(__name__)

AcquiredHook = Callable[[int], Awaitable[None]]
"""Runs once a term is won, before the node acts (restore the calls the last owner left)."""
LostHook = Callable[[int], object]
"""Runs as a term ends, synchronously (drop the AMI session, forget held PBX state)."""

RELEASE_DEADLINE = 1.0


class LeaseStore(Protocol):
    """Where the lease lives (PostgreSQL: ``db.pbx_ownership.PgPbxLeases``)."""

    async def acquire(self, pbx: str, node: str, ttl: float, *, deadline: float) -> int | None:
        """Take a free or expired lease; the new epoch, or ``None`` while another holds it."""
        ...

    async def renew(self, pbx: str, node: str, epoch: int, ttl: float, *, deadline: float) -> bool:
        """Extend our unexpired lease; ``False`` when it is not ours any more."""
        ...

    async def release(self, pbx: str, node: str, epoch: int, *, deadline: float) -> None:
        """Expire our lease now."""
        ...

    async def close(self) -> None:
        """Close the store's connection."""
        ...


def while_set(
    begin: asyncio.Event, end: asyncio.Event, work: Callable[[], Awaitable[object]]
) -> Callable[[], Awaitable[None]]:
    """A loop that runs ``work`` whenever *begin* is set, and cancels it when *end* is."""

    async def loop() -> None:
        while True:
            await begin.wait()
            task = asyncio.ensure_future(work())
            ended = asyncio.ensure_future(end.wait())
            try:
                await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if task.done() and not task.cancelled():
                task.result()  # a loop that ended or raised by itself: supervise decides

    return loop


class PbxOwnership:
    """This node's claim on one PBX: acquire, renew, fence, release."""

    def __init__(
        self,
        store: LeaseStore,
        *,
        pbx: str,
        node: str,
        timing: LeaseTiming,
        monotonic: Callable[[], float] = time.monotonic,
        on_error: ErrorReport | None = None,
    ) -> None:
        """``monotonic`` must be the clock the event loop's timers use (the default is)."""
        self.pbx = pbx
        self.node = node
        self.timing = timing
        self.term = OwnershipTerm(timing)
        self._store = store
        self._now = monotonic
        self._on_error = on_error
        self._owner = asyncio.Event()
        self._standby = asyncio.Event()
        self._standby.set()
        self._fence_timer: asyncio.TimerHandle | None = None
        self._acquired: list[AcquiredHook] = []
        self._lost: list[LostHook] = []
        self.terms_won = 0
        self.terms_lost = 0
        self.last_change: float | None = None
        """Monotonic time of the last takeover or loss (for readiness)."""

    def on_acquired(self, hook: AcquiredHook) -> None:
        """Run ``hook(epoch)`` after each takeover, in order, before the node may act."""
        self._acquired.append(hook)

    def on_lost(self, hook: LostHook) -> None:
        """Run ``hook(epoch)`` when a term ends, in order."""
        self._lost.append(hook)

    def may_act(self) -> bool:
        """True while this node owns the PBX (the fence every AMI action passes)."""
        return self._owner.is_set() and self.term.may_act(self._now())

    def remaining(self) -> float:
        """Seconds before this node's fence closes (0 on a standby)."""
        return self.term.remaining(self._now()) if self._owner.is_set() else 0.0

    def owned_for(self) -> float:
        """Seconds since this node's current term began (0 on a standby)."""
        if not self.may_act() or self.last_change is None:
            return 0.0
        return self._now() - self.last_change

    def fencing_token(self) -> tuple[str, str, int] | None:
        """``(pbx, node, epoch)`` while this node may act, for writes that check it in the
        database (read from the writer thread too: a snapshot of plain attributes)."""
        epoch = self.term.epoch
        if epoch is None or not self.may_act():
            return None
        return (self.pbx, self.node, epoch)

    @property
    def epoch(self) -> int | None:
        """The fencing token of the current term (``None`` on a standby)."""
        return self.term.epoch if self._owner.is_set() else None

    async def wait_owner(self) -> None:
        """Return once this node owns the PBX."""
        await self._owner.wait()

    async def wait_standby(self) -> None:
        """Return once this node does not own the PBX."""
        await self._standby.wait()

    async def run(self) -> None:
        """Hold or chase the lease until cancelled. Cancelling only stops the renewals: the
        term lasts until its fence (so the final flush can still write) or :meth:`release`."""
        while True:
            if self.term.epoch is None:
                await self._try_acquire()
            else:
                await self._renew()
            await asyncio.sleep(self.timing.renew_every)

    def while_owner(self, work: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """A loop that runs ``work`` only during terms: started on takeover, cancelled on loss."""
        return while_set(self._owner, self._standby, work)

    async def _try_acquire(self) -> None:
        asked = self._now()
        try:
            epoch = await self._store.acquire(
                self.pbx, self.node, self.timing.ttl, deadline=self._deadline()
            )
        except Exception as exc:
            self._report(exc, "pbx-ownership")
            return
        if epoch is None:
            return
        self.term.granted(epoch, asked)
        log.info("pbx_ownership_won", pbx=self.pbx, node=self.node, epoch=epoch)
        for hook in self._acquired:
            try:
                await hook(epoch)
            except Exception as exc:
                # The node cannot know the calls it takes over: give the term back.
                self._report(exc, "pbx-ownership-takeover")
                self.term.lost()
                with contextlib.suppress(Exception):
                    await self._store.release(self.pbx, self.node, epoch, deadline=RELEASE_DEADLINE)
                return
        if not self.term.may_act(self._now()):
            self._end_term("the takeover outlasted the lease")
            return
        self.terms_won += 1
        self.last_change = self._now()
        self._standby.clear()
        self._owner.set()
        self._arm_fence()

    async def _renew(self) -> None:
        epoch = self.term.epoch
        if epoch is None:
            return
        asked = self._now()
        left = self.term.remaining(asked)
        if left <= 0:
            self._end_term("the fence closed before the renewal")
            return
        try:
            ours = await self._store.renew(
                self.pbx, self.node, epoch, self.timing.ttl, deadline=left
            )
        except Exception as exc:
            self._report(exc, "pbx-ownership")
            if not self.term.may_act(self._now()):
                self._end_term("renewals failed until the fence closed")
            return
        if not ours:
            self._end_term("the lease is no longer ours")
            return
        if self.term.epoch == epoch:
            self.term.renewed(asked)
            self._arm_fence()

    def _arm_fence(self) -> None:
        """End the term by timer at the fence, even if a renewal never returns."""
        if self._fence_timer is not None:
            self._fence_timer.cancel()
        delay = self.term.remaining(self._now())
        self._fence_timer = asyncio.get_running_loop().call_later(delay, self._fence_check)

    def _fence_check(self) -> None:
        self._fence_timer = None
        if self.term.epoch is None:
            return
        if self.term.may_act(self._now()):
            self._arm_fence()  # renewed meanwhile
        else:
            self._end_term("the fence closed: no renewal confirmed in time")

    def _end_term(self, reason: str, *, released: bool = False) -> None:
        epoch = self.term.lost()
        if self._fence_timer is not None:
            self._fence_timer.cancel()
            self._fence_timer = None
        was_owner = self._owner.is_set()
        self._owner.clear()
        self._standby.set()
        if epoch is None or not was_owner:
            return
        if not released:
            self.terms_lost += 1
        self.last_change = self._now()
        log.warning("pbx_ownership_lost", pbx=self.pbx, node=self.node, epoch=epoch, reason=reason)
        for hook in self._lost:
            try:
                hook(epoch)
            except Exception:
                log.exception("pbx_ownership_lost_hook_failed", epoch=epoch)

    async def release(self) -> None:
        """At shutdown, after the final flush: end the term and give the lease back, so a
        standby takes over at its next poll instead of waiting for the TTL."""
        epoch = self.term.epoch
        self._end_term("stopping", released=True)
        try:
            if epoch is not None:
                async with asyncio.timeout(RELEASE_DEADLINE):
                    await self._store.release(self.pbx, self.node, epoch, deadline=RELEASE_DEADLINE)
                log.info("pbx_ownership_released", pbx=self.pbx, node=self.node, epoch=epoch)
        except Exception as exc:
            log.warning("pbx_ownership_release_failed", error=repr(exc))
        finally:
            with contextlib.suppress(Exception):
                await self._store.close()

    def _deadline(self) -> float:
        return max(0.5, self.timing.ttl - self.timing.margin)

    def _report(self, exc: BaseException, component: str) -> None:
        outage = self._on_error(exc, component) if self._on_error is not None else False
        if outage:
            log.warning("pbx_ownership_database_unavailable", error=repr(exc))
        else:
            log.warning("pbx_ownership_failed", error=repr(exc), component=component)
