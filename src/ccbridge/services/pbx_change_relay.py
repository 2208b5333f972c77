"""PBX configuration changed through any node's API reaches the PBX owner at once (ADR 0030).

With several nodes every node serves the API, but only the owner may talk to the PBX. A
skill-group or recording-policy change stored through a standby used to reach the PBX at
the owner's next AMI login or periodic recheck. Now the standby tells the owner (PostgreSQL
``NOTIFY``, delivered at commit), and the owner re-renders the queue file from the database,
reloads the queues, verifies them and reconciles the seats. On the owner itself a change is
applied in the request, as with a single node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

SKILL_GROUPS = "skill_groups"
RECORDING_POLICY = "recording_policy"
CAUGHT_UP = "listening"
"""What the owner is told when its listener (re)connects: changes may have been missed."""


class PbxConfigApplier(Protocol):
    """The owner's side (``services.pbx_config.PbxConfigMonitor``)."""

    async def apply(self, *, force_reload: bool = False) -> object:
        """Re-render the queue file, reload if it changed, verify."""
        ...

    async def sync(self) -> None:
        """Like ``apply``; raise when the PBX lacks a queue ccbridge owns."""
        ...


class PbxChangeRelay:
    """Apply a PBX config change here when this node owns the PBX, else ask the owner."""

    def __init__(
        self,
        local: PbxConfigApplier,
        reconcile: Callable[[], Awaitable[object]],
        may_act: Callable[[], bool],
        notify: Callable[[str], Awaitable[None]],
    ) -> None:
        """*notify* reaches every node (the owner among them) with what changed."""
        self._local = local
        self._reconcile = reconcile
        self._may_act = may_act
        self._notify = notify
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.relayed = 0
        """Changes this node passed to the owner."""
        self.applied = 0
        """Rounds this node applied for changes made elsewhere."""

    async def sync(self) -> None:
        """After a skill-group change (``PbxQueueSync``)."""
        if self._may_act():
            await self._local.sync()
        else:
            await self._tell_owner(SKILL_GROUPS)

    async def apply(self) -> None:
        """After a recording-policy change."""
        if self._may_act():
            await self._local.apply()
        else:
            await self._tell_owner(RECORDING_POLICY)

    async def _tell_owner(self, what: str) -> None:
        await self._notify(what)
        self.relayed += 1
        log.info("pbx_change_relayed", what=what)

    def on_notice(self, what: str) -> None:
        """A node announced a change (called from the listener). The owner applies it, once
        for any number of notices that arrive while a round runs; a standby ignores it."""
        if not self._may_act():
            return
        self._pending.add(what)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._apply_pending(), name="pbx-change-relay")

    async def _apply_pending(self) -> None:
        while self._pending and self._may_act():
            what, self._pending = sorted(self._pending), set()
            try:
                await self._local.apply()
                await self._reconcile()
            except Exception as exc:  # the periodic recheck and reconcile try again
                log.warning("pbx_change_apply_failed", what=what, error=repr(exc))
                continue
            self.applied += 1
            log.info("pbx_change_applied", what=what)
