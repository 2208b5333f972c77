"""A node without HA never drives a PBX that an HA node owns (ADR 0030).

``ccbridge serve`` without ``CCBRIDGE_HA__ENABLED`` takes no lease, so the HA nodes cannot see
it. It can see them: on PostgreSQL it reads the PBX's lease row before its AMI client first
connects, and again every few seconds. Once an HA node is seen holding a live lease this
node sends no AMI action (the guard is the client's gate), drops its AMI session, runs no
owner job and delivers no webhook, and ``/readyz`` fails with the reason. That stays so
until the node is restarted: the HA nodes are the configuration in force, and a lease that
lapses during their rolling restart must not hand the PBX to this node. A failed look before
the first answer lets the node act (the single-node start during a database outage is
unchanged) and is tried again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from ccbridge.services.pbx_ownership import while_set

log = structlog.get_logger(__name__)

LiveHolder = Callable[[str], Awaitable[tuple[str, int] | None]]
"""``(node, epoch)`` of the live lease on a PBX, or ``None`` when nobody holds one."""

CHECK_SECONDS = 5.0
HINT = (
    "this node runs without CCBRIDGE_HA__ENABLED against a PBX an HA node owns, and will not "
    "drive it: enable HA on every node (docs/ha.md), or stop the HA nodes, then restart it"
)


class SingleNodeGuard:
    """The AMI gate of a node without HA on PostgreSQL (``asterisk.ami.client.ActionGate``)."""

    def __init__(
        self,
        live_holder: LiveHolder,
        pbx: str,
        *,
        every: float = CHECK_SECONDS,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """*close* releases the reader's connection when :meth:`run` ends."""
        self._live_holder = live_holder
        self.pbx = pbx
        self._every = every
        self._close = close
        self._looked = asyncio.Event()
        self._allowed = asyncio.Event()
        self._blocked = asyncio.Event()
        self._on_blocked: list[Callable[[str], object]] = []
        self.blocked_by: tuple[str, int] | None = None

    def on_blocked(self, hook: Callable[[str], object]) -> None:
        """Run ``hook(reason)`` once, when an HA owner is first seen (drop the AMI session)."""
        self._on_blocked.append(hook)

    def may_act(self) -> bool:
        """True once the lease was looked at and no HA node was ever seen owning the PBX."""
        return self._allowed.is_set()

    async def wait_owner(self) -> None:
        """Return once this node may act (never, once blocked: the AMI client's stop ends it)."""
        await self._allowed.wait()

    @property
    def reason(self) -> str | None:
        """Why this node does not act, or ``None``."""
        if self.blocked_by is None:
            return None
        node, epoch = self.blocked_by
        return f"HA node {node!r} owns PBX {self.pbx!r} (epoch {epoch}): {HINT}"

    def while_allowed(self, work: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """A loop that runs ``work`` while this node may act (the webhook dispatcher)."""
        return while_set(self._allowed, self._blocked, work)

    async def run(self) -> None:
        """Look at the lease now and every few seconds, until cancelled."""
        try:
            while True:
                await self.look()
                await asyncio.sleep(self._every)
        finally:
            if self._close is not None:
                await self._close()

    async def look(self) -> None:
        """One look at the lease row."""
        if self.blocked_by is not None:
            return
        try:
            holder = await self._live_holder(self.pbx)
        except Exception as exc:
            log.warning("ha_lease_check_failed", pbx=self.pbx, error=repr(exc))
            holder = None
        if holder is None:
            if not self._looked.is_set():
                self._looked.set()
                self._allowed.set()
            return
        self.blocked_by = holder
        self._looked.set()
        self._allowed.clear()
        self._blocked.set()
        reason = self.reason or ""
        log.error("ha_owner_present", pbx=self.pbx, node=holder[0], epoch=holder[1], hint=HINT)
        for hook in self._on_blocked:
            try:
                hook(reason)
            except Exception:
                log.exception("ha_owner_present_hook_failed")
