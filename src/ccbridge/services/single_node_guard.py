"""A node without HA never drives a PBX that another node drives (ADRs 0030, 0032).

``ccbridge serve`` without ``CCBRIDGE_HA__ENABLED`` on PostgreSQL marks the PBX's lease row
as its own (``single:<node>``, renewed every few seconds, ``PRESENCE_TTL`` long) before its
AMI client first connects. An HA node started beside it finds the row held and stands by;
it takes over once this node stops (its row is let go) or dies (the row expires). When the
row is already held by another node (an HA owner, or a second node without HA), this node
sends no AMI action (the guard is the client's gate), drops its AMI session, runs no owner
job and delivers no webhook, and ``/readyz`` fails with the reason. That stays so until the
node is restarted: the other node is the configuration in force, and a lease that lapses
during the HA nodes' rolling restart must not hand the PBX to this node. A failed look
before the first answer lets the node act (the single-node start during a database outage
is unchanged) and is tried again; a node without HA keeps acting through a database outage,
so it does not fence itself as an HA owner does (docs/ha.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from ccbridge.services.pbx_ownership import while_set

log = structlog.get_logger(__name__)

LiveHolder = Callable[[str], Awaitable[tuple[str, int] | None]]
"""Mark the PBX as this node's; ``(node, epoch)`` of another node's live hold on it, or
``None`` when this node holds it now (or the row could not be read)."""

CHECK_SECONDS = 5.0
PRESENCE_TTL = 3 * CHECK_SECONDS
"""How long this node's mark outlives its last renewal: HA nodes wait this long after it
dies before they take the PBX."""
SINGLE_PREFIX = "single:"
"""The lease-row node name of a node without HA."""
HINT = (
    "this node runs without CCBRIDGE_HA__ENABLED against a PBX another node drives, and will "
    "not drive it: run one node, or enable HA on every node (docs/ha.md), then restart it"
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
        """*close* lets this node's mark go and closes the connection (:meth:`release`)."""
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
        if node.startswith(SINGLE_PREFIX):
            other = f"node {node.removeprefix(SINGLE_PREFIX)!r}, also without HA, drives"
        else:
            other = f"HA node {node!r} owns"
        return f"{other} PBX {self.pbx!r} (epoch {epoch}): {HINT}"

    def while_allowed(self, work: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """A loop that runs ``work`` while this node may act (the webhook dispatcher)."""
        return while_set(self._allowed, self._blocked, work)

    async def run(self) -> None:
        """Look at the lease now and every few seconds, until cancelled."""
        while True:
            await self.look()
            await asyncio.sleep(self._every)

    async def release(self) -> None:
        """Let the PBX go and close the connection: after the final flush, so a node that
        takes over finds every call this node tracked written."""
        if self._close is not None:
            close, self._close = self._close, None
            await close()

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
