"""Close every AMI gap from the PBX's own durable records (ADR 0013).

After each AMI login (so after every reconnect and every ccbridge start) the backfill reads
the queue log from its stored cursor, rebuilds the calls it describes and hands the tracker
only what it lacks. The result equals what the live stream would have produced; the journal
flags the late steps as reconstructed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.pbx_records import (
    PbxCall,
    QueueLogEntry,
    assemble_calls,
    reconstruct_events,
)
from ccbridge.services.calls import CallTrackingService

log = structlog.get_logger(__name__)


class PbxRecordSource(Protocol):
    """Where the PBX's queue log is read from (a file on a shared volume, a realtime table)."""

    name: str

    async def read_since(self, since: datetime) -> Sequence[QueueLogEntry]:
        """Every line written at or after *since*, in file order."""
        ...


class RecordCursorStore(Protocol):
    """Keeps how far each record source has been read (survives restarts)."""

    async def load(self, source: str) -> datetime | None:
        """The position saved for *source*, or ``None`` before the first backfill."""
        ...

    async def save(self, source: str, position: datetime) -> None:
        """Remember *position* for *source*."""
        ...


class StoredCalls(Protocol):
    """Call records already written (the tracker may have forgotten or never held them)."""

    async def stored(self, call_ids: Sequence[str]) -> dict[str, CallRecord]:
        """The stored records of *call_ids*, with their legs and history."""
        ...


class GapRecordings(Protocol):
    """Indexes the recording of a call answered in the gap: its file, or a flag that none
    exists although the policy records the call (``RecordingService``)."""

    async def register_gap_recording(self, call: CallRecord) -> object:
        """Find and index *call*'s recording, or flag it missing; a second call is a no-op."""
        ...


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What one backfill read and changed."""

    lines: int
    calls: int
    changed: int
    since: datetime


class CallBackfill:
    """Read the gap's records and complete or create the calls they describe."""

    def __init__(
        self,
        source: PbxRecordSource,
        cursors: RecordCursorStore,
        stored: StoredCalls,
        calls: CallTrackingService,
        now: Callable[[], datetime],
        *,
        lookback: timedelta,
    ) -> None:
        self._source = source
        self._cursors = cursors
        self._stored = stored
        self._calls = calls
        self._now = now
        self._lookback = lookback
        self.runs = 0
        self.changed_total = 0
        self._recordings: GapRecordings | None = None

    def use_recordings(self, recordings: GapRecordings) -> None:
        """Index the recordings of calls the backfill learned were answered (wired late: the
        recording service is built after the call feed)."""
        self._recordings = recordings

    async def run(self, member_interfaces: Mapping[str, str] | None = None) -> BackfillResult:
        """Backfill from the cursor (less the lookback, so calls that began before it are
        whole); *member_interfaces* maps queue member names to interfaces."""
        learned_at = self._now()
        cursor = await self._cursors.load(self._source.name)
        since = (cursor or learned_at) - self._lookback
        entries = await self._source.read_since(since)
        pbx_calls = [c for c in assemble_calls(entries) if c.tenant]
        changed = await self._apply(pbx_calls, member_interfaces or {}, learned_at)
        if entries:
            newest = max(e.at for e in entries)
            if cursor is None or newest > cursor:
                await self._cursors.save(self._source.name, newest)
        self.runs += 1
        self.changed_total += changed
        result = BackfillResult(len(entries), len(pbx_calls), changed, since)
        log.info(
            "calls_backfilled",
            source=self._source.name,
            lines=result.lines,
            calls=result.calls,
            changed=result.changed,
            since=since.isoformat(),
        )
        return result

    async def _apply(
        self, pbx_calls: list[PbxCall], members: Mapping[str, str], learned_at: datetime
    ) -> int:
        unknown = [c.linkedid for c in pbx_calls if self._calls.get(c.linkedid) is None]
        if unknown:
            self._calls.adopt((await self._stored.stored(unknown)).values())
        events = [e for call in pbx_calls for e in reconstruct_events(call, members)]
        changed = self._calls.reconstruct(events, learned_at)
        await self._register_recordings(pbx_calls)
        return changed

    async def _register_recordings(self, pbx_calls: list[PbxCall]) -> None:
        """Every answered call learned late (now or by an earlier run) gets its recording
        indexed or flagged; a failure is logged and retried by the next backfill."""
        if self._recordings is None:
            return
        for pbx_call in pbx_calls:
            record = self._calls.get(pbx_call.linkedid)
            if record is None or record.learned_at is None or record.answered_at is None:
                continue
            try:
                await self._recordings.register_gap_recording(record)
            except Exception as exc:
                log.warning("gap_recording_failed", call_id=record.call_id, error=repr(exc))
