"""The coordinator's calls handler: AMI call events into the call tracker; resync on login."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from ccbridge.asterisk.ami.actions import core_show_channels, queue_status
from ccbridge.asterisk.ami.codec import AmiFields
from ccbridge.asterisk.ami.normalize import TRACKED_EVENTS, normalize
from ccbridge.asterisk.resync_snapshot import agent_legs, member_interfaces, members_of
from ccbridge.domain.calls.events import TelephonyEvent
from ccbridge.services.call_backfill import CallBackfill
from ccbridge.services.calls import CallTrackingService

if TYPE_CHECKING:
    from ccbridge.asterisk.ami.client import AmiClient

log = structlog.get_logger(__name__)

LIVE_EVENTS = frozenset(e for e in TRACKED_EVENTS if e not in ("CoreShowChannel", "QueueEntry"))
"""Events read on the live stream; the two snapshot items come from the resync."""


class AmiCallFeed:
    """The calls handler of :class:`~ccbridge.asterisk.coordinator.PbxCoordinator`: reduce
    live events in the tracker; on login close the gap from the PBX's records (when a
    backfill is configured) and rebuild live calls whole from a PBX snapshot."""

    events = LIVE_EVENTS

    def __init__(
        self,
        service: CallTrackingService,
        now: Callable[[], datetime],
        backfill: CallBackfill | None = None,
    ) -> None:
        self._service = service
        self._now = now
        self._backfill = backfill
        self.resyncs = 0
        self.backfill_failures = 0
        self.failures = 0

    def on_events(self, frames: Sequence[AmiFields]) -> None:
        """Normalise each event once and reduce it, in wire order (a bad one is logged)."""
        now = self._now
        handle = self._service.handle
        for frame in frames:
            try:
                handle(normalize(frame, now))
            except Exception:
                self.failures += 1
                log.exception("call_event_failed", ami_event=frame.event)

    async def resync(self, client: AmiClient) -> None:
        """Ask the PBX what is live (channels, then queues), backfill what ended in the gap
        from its records, then attach each live call's agent leg and reconcile."""
        _, channels = await client.send_list_action(core_show_channels())
        _, queue_items = await client.send_list_action(queue_status())
        members = members_of(queue_items)
        if self._backfill is not None:
            try:
                await self._backfill.run(member_interfaces(members))
            except Exception as exc:  # the records may be unreachable; the resync still runs
                self.backfill_failures += 1
                log.warning("calls_backfill_failed", error=repr(exc))
        linkedid_of = {
            uid: msg.get("Linkedid") or uid
            for msg in channels
            if (uid := msg.get("Uniqueid")) is not None
        }
        snapshot: list[TelephonyEvent] = []
        for msg in channels:
            snapshot.extend(normalize(msg, self._now))
        for msg in queue_items:
            if msg.event == "QueueEntry":
                snapshot.extend(normalize(msg, self._now, linkedid_of))
        attached = agent_legs(channels, members, self._now)
        closed = self._service.resync([*snapshot, *attached], self._now())
        self.resyncs += 1
        log.info(
            "calls_resynced",
            channels=len(channels),
            queue_items=len(queue_items),
            agent_legs=len(attached),
            reconciled=len(closed),
        )
