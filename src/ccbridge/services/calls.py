"""Call tracking use case: reduce telephony events, persist what changed, resync after loss."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

import structlog

from ccbridge.domain.calls.events import TelephonyEvent
from ccbridge.domain.calls.model import CallControl, CallRecord, CallTransfer
from ccbridge.domain.calls.tracker import CallTracker
from ccbridge.services.ports import CallSink

log = structlog.get_logger(__name__)


class CallTrackingService:
    """Own the live call state; every change goes to the sink exactly as reduced."""

    def __init__(self, sink: CallSink, tracker: CallTracker | None = None) -> None:
        self._sink = sink
        self._tracker = tracker or CallTracker()
        self.events_applied = 0
        self.reconciled_total = 0

    def handle(self, events: Iterable[TelephonyEvent]) -> None:
        """Apply live events in arrival order."""
        for event in events:
            self.events_applied += 1
            for record in self._tracker.apply_event(event):
                self._sink.submit(record)

    def resync(
        self,
        snapshot: Iterable[TelephonyEvent],
        at: datetime,
        held_before: Collection[str] | None = None,
    ) -> list[CallRecord]:
        """Merge a PBX snapshot and close calls the PBX no longer has.

        Called after every (re)connect: events may have been lost while disconnected, so
        silence is never taken to mean "ended"; only the snapshot's absence is. What the
        snapshot adds to a call (its agent leg, its queue) was learned late and says so.
        With *held_before* (the open calls when the snapshot was asked for), a call learned
        since, e.g. from the queue log read after it, is not closed for its absence.
        """
        events = list(snapshot)
        live = {event.linkedid for event in events}
        for record in self._tracker.reconstruct(events, at):
            self._sink.submit(record)
        closed = self._tracker.reconcile(live, at, held_before)
        for record in closed:
            self._sink.submit(record)
        self.reconciled_total += len(closed)
        if closed:
            log.info("calls_reconciled", closed=len(closed), live=len(live))
        return closed

    def reconstruct(self, events: Iterable[TelephonyEvent], learned_at: datetime) -> int:
        """Apply events rebuilt from the PBX's records; return how many calls they changed."""
        changed = self._tracker.reconstruct(events, learned_at)
        for record in changed:
            self._sink.submit(record)
        return len(changed)

    def adopt(self, records: Iterable[CallRecord]) -> int:
        """Take stored records (ended ones too) the tracker no longer holds, so a backfill
        compares against what was already written instead of starting the call afresh."""
        return self._tracker.restore(records, include_final=True)

    def restore(self, records: Iterable[CallRecord]) -> int:
        """Take over the open calls an earlier process left; the first resync settles them."""
        restored = self._tracker.restore(records)
        if restored:
            log.info("calls_restored", open_calls=restored)
        return restored

    def forget_all(self) -> None:
        """Drop the live state: this node lost the PBX, and what it held may be outdated by the
        time it owns the PBX again (it then restores from the database and resyncs)."""
        self._tracker.clear()

    def open_calls(self) -> list[CallRecord]:
        """Return the calls in progress."""
        return self._tracker.open_calls()

    def current_call_of(self, interface: str) -> str | None:
        """The call a queue member (by interface) is connected to now, for the seat wallboard."""
        for record in self._tracker.open_calls():
            if record.agent_interface == interface and record.answered_at is not None:
                return record.call_id
        return None

    def get(self, call_id: str) -> CallRecord | None:
        """Return a call still held in memory."""
        return self._tracker.get(call_id)

    def live_channels(self, call_id: str) -> list[str]:
        """Names of the call's channels still up (call control acts on them)."""
        return self._tracker.live_channels(call_id)

    def note(self, call_id: str, step: CallControl) -> CallRecord | None:
        """Record a call-control step on the call; it goes to the sink (and the journal)."""
        return self._submit(self._tracker.note(call_id, step))

    def expect_transfer(self, call_id: str, intent: CallTransfer | None) -> CallRecord | None:
        """Remember the agent, group or number a transfer ccbridge starts is meant for."""
        return self._submit(self._tracker.expect_transfer(call_id, intent))

    def start_call(self, record: CallRecord) -> CallRecord:
        """Register a call ccbridge originates, with its four variables, before the PBX
        reports it."""
        rec = self._tracker.start_call(record)
        self._sink.submit(rec)
        return rec

    def _submit(self, record: CallRecord | None) -> CallRecord | None:
        if record is not None:
            self._sink.submit(record)
        return record
