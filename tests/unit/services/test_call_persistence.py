"""CallPersistence: events derived against what it last wrote, the store read only on a miss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.services.call_persistence import CallPersistence
from ccbridge.services.ports import CallWrite, WrittenCalls

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def queued(call_id: str, version: int = 1) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        started_at=T0,
        state=CallState.QUEUED,
        tenant="t1",
        caller="13800138000",
        callee="4008001234",
        skill_group="t1-sales",
        queued_at=T0,
        version=version,
    )


def ended(rec: CallRecord) -> CallRecord:
    return replace(
        rec,
        state=CallState.ABANDONED,
        ended_at=T0 + timedelta(seconds=30),
        version=rec.version + 1,
    )


class MemoryStore:
    """Keeps rows by call_id with the version guard; counts reads."""

    def __init__(self) -> None:
        self.rows: dict[str, CallRecord] = {}
        self.reads: list[list[str]] = []
        self.batches: list[list[CallWrite]] = []

    async def write(self, batch: Sequence[CallWrite]) -> WrittenCalls:
        self.batches.append(list(batch))
        written = set()
        for item in batch:
            old = self.rows.get(item.record.call_id)
            if old is None or old.version <= item.record.version:
                self.rows[item.record.call_id] = item.record
                written.add(item.record.call_id)
        return WrittenCalls(frozenset(written), ())

    async def stored(self, call_ids: Sequence[str]) -> dict[str, CallRecord]:
        self.reads.append(list(call_ids))
        return {c: self.rows[c] for c in call_ids if c in self.rows}


def event_types(batch: list[CallWrite]) -> list[list[str]]:
    return [[e.type.value for e in item.events] for item in batch]


async def test_a_call_it_wrote_is_not_read_back_for_its_next_snapshot() -> None:
    store = MemoryStore()
    persistence = CallPersistence(store)
    first = queued("c1")
    assert await persistence.upsert_many([first]) == 1
    assert await persistence.upsert_many([ended(first)]) == 1
    assert store.reads == [["c1"]]  # only the first sight of the call asked the store
    assert event_types(store.batches[0]) == [["call.queued"]]
    assert event_types(store.batches[1]) == [["call.abandoned"]]


async def test_a_call_written_by_an_earlier_process_is_derived_against_the_stored_row() -> None:
    store = MemoryStore()
    first = queued("c1")
    store.rows["c1"] = first  # persisted before this process started
    persistence = CallPersistence(store)
    await persistence.upsert_many([ended(first)])
    assert event_types(store.batches[0]) == [["call.abandoned"]]  # no second call.queued


async def test_a_replayed_snapshot_adds_no_event() -> None:
    store = MemoryStore()
    persistence = CallPersistence(store)
    first = queued("c1")
    await persistence.upsert_many([first])
    await persistence.upsert_many([first])
    assert event_types(store.batches[1]) == [[]]


async def test_a_stale_snapshot_is_not_remembered_as_written() -> None:
    store = MemoryStore()
    persistence = CallPersistence(store)
    first = queued("c1")
    later = ended(first)
    await persistence.upsert_many([later])
    assert await persistence.upsert_many([first]) == 0  # the store kept the newer row
    await persistence.upsert_many([replace(later, version=later.version + 1)])
    assert event_types(store.batches[2]) == [[]]  # still derived against the ended call


async def test_past_its_bound_the_oldest_written_call_is_read_again() -> None:
    store = MemoryStore()
    persistence = CallPersistence(store, baseline=2)
    calls = [queued(f"c{i}") for i in range(3)]
    for rec in calls:
        await persistence.upsert_many([rec])
    store.reads.clear()
    await persistence.upsert_many([ended(calls[0]), ended(calls[2])])
    assert store.reads == [["c0"]]
    assert event_types(store.batches[-1]) == [["call.abandoned"], ["call.abandoned"]]


async def test_past_the_ended_bound_an_ended_call_is_read_back_if_it_changes_again() -> None:
    store = MemoryStore()
    persistence = CallPersistence(store, ended=1)
    first = queued("c1")
    await persistence.upsert_many([first])
    done = ended(first)
    await persistence.upsert_many([done])
    store.reads.clear()
    late = replace(done, end_reason="16", version=done.version + 1)
    await persistence.upsert_many([late])
    assert store.reads == []  # a recently ended call is still held
    await persistence.upsert_many([ended(queued("c2"))])  # pushes c1 out of the ended bound
    store.reads.clear()
    done = late
    merged = replace(done, merged_into="c9", version=done.version + 1)
    await persistence.upsert_many([merged])
    assert store.reads == [["c1"]]
    assert event_types(store.batches[-1]) == [[]]  # derived against the stored ended call


async def test_snapshots_of_one_call_in_a_batch_become_its_newest() -> None:
    store = MemoryStore()
    persistence = CallPersistence(store)
    first = queued("c1")
    assert await persistence.upsert_many([first, ended(first), queued("c2")]) == 2
    assert [i.record.version for i in store.batches[0]] == [2, 1]
    assert event_types(store.batches[0]) == [["call.queued", "call.abandoned"], ["call.queued"]]
