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
        self._held: list[TelephonyEvent] | None = None
        """Live events that arrived while a resync ran; applied once it is done."""

    def on_events(self, frames: Sequence[AmiFields]) -> None:
        """Normalise each event once and reduce it, in wire order (a bad one is logged);
        during a resync, hold it for the end of the resync instead."""
        now = self._now
        held = self._held
        handle = self._service.handle
        for frame in frames:
            try:
                if held is not None:
                    held.extend(normalize(frame, now))
                else:
                    handle(normalize(frame, now))
            except Exception:
                self.failures += 1
                log.exception("call_event_failed", ami_event=frame.event)

    async def resync(self, client: AmiClient) -> None:
        """Ask the PBX what is live (channels, then queues), backfill what ended in the gap
        from its records, then attach each live call's agent leg and reconcile.

        Only the calls held when the channel list was asked for can be closed for missing
        from it: the queue log is read after the list, so a call it shows open may have
        begun in between.

        Live events that arrive meanwhile are held and applied after it, in wire order. A
        call that starts during the resync is then not closed by the reconcile (it is not
        in the snapshot), and the stray last events of a call that ended before this login
        (an agent leg's hang-up) do not make a record of the call's end alone, which would
        keep the backfill from rebuilding it whole (a final call keeps what it has).
        """
        if self._held is None:
            self._held = []
        try:
            await self._resync(client)
        finally:
            held, self._held = self._held, None
            self._apply_held(held)

    def hold_until_resync(self) -> None:
        """Hold live events from now until the next resync ends, dropping any held so far
        (ADR 0026: a node about to connect for a new term; the resync rebuilds the rest).
        Without it, events read between the login and the resync's start are applied
        before the resync, the window in which a call's middle arrives without its start."""
        self._held = []

    def _apply_held(self, events: list[TelephonyEvent]) -> None:
        handle = self._service.handle
        for event in events:
            try:
                handle((event,))
            except Exception:
                self.failures += 1
                log.exception("call_event_failed", ami_event=type(event).__name__)

    async def _resync(self, client: AmiClient) -> None:
        held_before = {record.call_id for record in self._service.open_calls()}
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
        closed = self._service.resync([*snapshot, *attached], self._now(), held_before)
        self.resyncs += 1
        log.info(
            "calls_resynced",
            channels=len(channels),
            queue_items=len(queue_items),
            agent_legs=len(attached),
            reconciled=len(closed),
        )
