"""Keep the PBX's queues equal to ccbridge's skill groups, and say so when they are not.

Writing ``queues.conf`` and asking for a reload proves nothing: a PBX that includes another
folder answers the reload with success and still has no such queue (issue 18). So after each
reload, after each AMI login and every 30 s, :class:`PbxConfigMonitor` reads ``QueueStatus``
and compares it with what ccbridge expects (:mod:`ccbridge.domain.acd.pbx_config`). The last
comparison feeds ``/readyz`` (check ``pbx_config``), and a skill-group change whose queue the
PBX does not report fails with :class:`~ccbridge.errors.PbxConfigMismatchError` (502).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from ccbridge.domain.acd.pbx_config import (
    Member,
    PbxConfigReport,
    PbxInventory,
    absent_members,
    compare,
)
from ccbridge.errors import AsteriskUnavailableError, PbxConfigMismatchError

log = structlog.get_logger(__name__)

VERIFY_INTERVAL = 30.0
"""Seconds between re-checks (a manual ``queue reload`` on the PBX can drop queues too)."""


class QueueFilePublisher(Protocol):
    """Writes the generated queue file and asks the PBX to reload it."""

    async def publish(self, *, force_reload: bool = False) -> bool:
        """Write; reload when changed (or forced); False when the PBX refused or was away."""
        ...


class PbxInventoryReader(Protocol):
    """Reads which queues and members the PBX has (``QueueStatus``)."""

    async def inventory(self) -> PbxInventory:
        """One snapshot; raises :class:`AsteriskUnavailableError` when the PBX cannot answer."""
        ...


class PbxQueueSync(Protocol):
    """The port skill-group administration uses after a change."""

    async def sync(self) -> None:
        """Publish and verify; raise :class:`PbxConfigMismatchError` when a queue is missing."""
        ...


@dataclass(frozen=True, slots=True)
class PbxConfigState:
    """What ``/readyz`` reports: the last comparison, or why there is none."""

    report: PbxConfigReport | None
    error: str | None

    @property
    def ok(self) -> bool:
        """Ready only after a comparison that found nothing missing."""
        return self.report is not None and self.report.ok and self.error is None


class PbxConfigMonitor:
    """Publish the queue file, verify the PBX has what ccbridge expects, remember the outcome."""

    def __init__(
        self,
        config: QueueFilePublisher,
        inventory: PbxInventoryReader,
        expected_queues: Callable[[], Awaitable[Collection[str]]],
        expected_members: Callable[[], Awaitable[Collection[Member]]],
        *,
        hint: str = "",
    ) -> None:
        self._config = config
        self._inventory = inventory
        self._expected_queues = expected_queues
        self._expected_members = expected_members
        self._hint = hint
        self._lock = asyncio.Lock()
        self._absent: frozenset[Member] = frozenset()
        self.state = PbxConfigState(None, "not verified yet")

    async def apply(self, *, force_reload: bool = False) -> PbxConfigReport | None:
        """Publish (reload when needed), then verify; None when the PBX could not be asked."""
        async with self._lock:
            if not await self._config.publish(force_reload=force_reload):
                self.state = PbxConfigState(self.state.report, "queue reload failed")
                return None
            return await self._verify()

    async def sync(self) -> None:
        """After a skill-group change: raise when the PBX lacks a queue ccbridge owns.

        An unreachable PBX raises nothing here: the group is stored, ``/readyz`` already
        fails on ``ami``, and the next login publishes and verifies again.
        """
        report = await self.apply()
        if report is not None and report.missing_queues:
            raise PbxConfigMismatchError(f"{report.summary()}. {self._hint}".strip())

    async def recheck(self) -> PbxConfigReport | None:
        """Periodic job: verify; after a failed comparison reload first (the admin may have
        fixed the include meanwhile)."""
        if self.state.ok:
            async with self._lock:
                return await self._verify()
        return await self.apply(force_reload=True)

    async def on_login(self, _client: object) -> None:
        """AMI login hook (after the queue file and the seats are restored): verify."""
        async with self._lock:
            await self._verify()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """``/readyz`` detail: what is missing, by name, and where the file is written."""
        st = self.state
        detail: dict[str, Any] = {}
        if st.report is not None:
            detail["expected_queues"] = st.report.expected_queues
            detail["missing_queues"] = list(st.report.missing_queues)
            detail["missing_members"] = [f"{q}/{i}" for q, i in st.report.missing_members]
        if st.error is not None:
            detail["error"] = st.error
        if not st.ok and st.report is not None and not st.report.ok:
            detail["detail"] = st.report.summary()
            if self._hint:
                detail["hint"] = self._hint
        return st.ok, detail

    async def _verify(self) -> PbxConfigReport | None:
        queues = await self._expected_queues()
        members = await self._expected_members()
        try:
            seen = await self._inventory.inventory()
        except AsteriskUnavailableError as exc:
            self.state = PbxConfigState(self.state.report, f"QueueStatus failed: {exc}")
            return None
        report = compare(queues, members, seen, previously_missing=self._absent)
        self._absent = absent_members(members, seen)
        was_ok = self.state.ok
        self.state = PbxConfigState(report, None)
        if not report.ok:
            log.warning("pbx_config_mismatch", detail=report.summary(), hint=self._hint)
        elif not was_ok:
            log.info("pbx_config_verified", queues=report.expected_queues)
        return report
