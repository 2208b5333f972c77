"""Persist call snapshots with their journal events, derived here against the state this
service last wrote (ADR 0021): no repository re-reads a row the process already holds.

The batch writer hands coalesced snapshots to :meth:`CallPersistence.upsert_many`. For each
call the service keeps the record it last wrote (the *baseline*); the journal events are the
difference between that and the new snapshot (``domain.journal.derive.call_events``). A call
not in the baseline (first seen, restored from an earlier process, or evicted) is looked up in
the store once, so the events are exactly those of a derivation against the stored row.
"""

from __future__ import annotations

from collections.abc import Sequence

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.journal.derive import call_events
from ccbridge.services.ports import CallBatchStore, CallWrite

DEFAULT_BASELINE = 100_000
"""Open calls whose last written record is kept; beyond it the oldest written is forgotten
(its next snapshot then costs one indexed read, nothing else)."""
RECENTLY_ENDED = 10_000
"""Ended calls whose final record is kept too (a late hang-up or merge may still change one),
as many as the tracker keeps; memory stays bounded by the calls in progress plus these."""


def newest_per_call(records: Sequence[CallRecord]) -> list[CallRecord]:
    """Keep one record per call_id, the highest version (the later one on a tie), in order of
    each call's first appearance.

    PostgreSQL rejects an ON CONFLICT DO UPDATE statement that touches one row twice.
    """
    newest: dict[str, CallRecord] = {}
    for record in records:
        seen = newest.get(record.call_id)
        if seen is None or record.version >= seen.version:
            newest[record.call_id] = record
    return list(newest.values())


class CallPersistence:
    """Write call batches with their journal events (implements the batch writer's port).

    Not thread-safe: one writer (the batch writer, on the database writer thread) owns it.
    """

    def __init__(
        self,
        store: CallBatchStore,
        *,
        baseline: int = DEFAULT_BASELINE,
        ended: int = RECENTLY_ENDED,
    ) -> None:
        """Write through *store*; remember the last written record of up to *baseline* open
        calls and *ended* ended ones."""
        if baseline < 1 or ended < 0:
            raise ValueError("baseline must be positive and ended not negative")
        self._store = store
        self._limit = baseline
        self._ended_limit = ended
        self._written: dict[str, CallRecord] = {}
        self._ended: dict[str, CallRecord] = {}
        self.lookups = 0
        """Calls read back from the store because the baseline did not hold them."""

    async def upsert_many(self, records: Sequence[CallRecord]) -> int:
        """Write a batch in one transaction; return how many calls were written.

        A row is only overwritten by a snapshot whose version is not lower, so a stale or
        replayed batch can never roll a call back; only written calls add events.
        """
        if not records:
            return 0
        newest = newest_per_call(records)
        previous = await self._previous(newest)
        batch = [CallWrite(r, call_events(previous.get(r.call_id), r)) for r in newest]
        written = await self._store.write(batch)
        for record in newest:
            if record.call_id in written.call_ids:
                self._remember(record)
        return len(written.call_ids)

    async def _previous(self, records: Sequence[CallRecord]) -> dict[str, CallRecord]:
        """The last written record of each call: from the baseline, else from the store."""
        known, ended = self._written, self._ended
        previous: dict[str, CallRecord] = {}
        missing: list[str] = []
        for record in records:
            held = known.get(record.call_id) or ended.get(record.call_id)
            if held is None:
                missing.append(record.call_id)
            else:
                previous[record.call_id] = held
        if missing:
            self.lookups += len(missing)
            previous.update(await self._store.stored(missing))
        return previous

    def _remember(self, record: CallRecord) -> None:
        """Make *record* the call's baseline; past either bound forget the least recently
        written of its kind (open or ended)."""
        written = self._ended if record.state.is_final else self._written
        self._written.pop(record.call_id, None)
        self._ended.pop(record.call_id, None)
        limit = self._ended_limit if record.state.is_final else self._limit
        if limit == 0:
            return
        written[record.call_id] = record
        if len(written) > limit:
            del written[next(iter(written))]
