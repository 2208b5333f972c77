"""The driver-level call write path on SQLite and PostgreSQL: what it writes reads back through
the repository, the version guard, the writer thread and the commit order of the hub."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_session_factory
from ccbridge.db.journal import (
    EVENT_NAMESPACE,
    CommitOrder,
    SqlJournal,
    data_text,
    envelope_time,
    event_id,
    stored_event,
)
from ccbridge.db.repositories import CallRepository
from ccbridge.db.writer_thread import ThreadedCallWrites
from ccbridge.domain.calls.model import (
    CallControl,
    CallOffer,
    CallRecord,
    CallSegment,
    CallState,
    CallTransfer,
)
from ccbridge.domain.journal.types import EventType, NewEvent, StoredEvent
from ccbridge.services.event_hub import EventHub
from ccbridge.services.ports import CallWrite, WrittenCalls

T0 = datetime(2026, 12, 3, 9, 0, 0, 250000, tzinfo=UTC)
CST = timezone(timedelta(hours=8))


def full_call(version: int = 3) -> CallRecord:
    """A call with every part the write path serialises."""
    at = T0.astimezone(CST)  # not UTC: stored and read back as UTC
    return CallRecord(
        call_id="1795433000.1",
        started_at=at,
        state=CallState.ENDED,
        tenant="t1",
        caller="13800138000",
        caller_name="张" * 300,  # longer than the column: clamped, never rejected
        callee="4008001234",
        skill_group="t1-sales",
        agent_no="1101",
        agent_interface="Local/1101@agents",
        queued_at=at + timedelta(seconds=2),
        answered_at=at + timedelta(seconds=9),
        ended_at=T0 + timedelta(seconds=60),
        end_reason="16",
        legs=("1795433000.1", "1795433000.2"),
        version=version,
        offers=(CallOffer("1101", "Local/1101@agents", "t1-sales", T0),),
        segments=(
            CallSegment(
                seq=1,
                agent_no="1101",
                agent_interface="Local/1101@agents",
                skill_group="t1-sales",
                caller="13800138000",
                callee="4008001234",
                via="queue",
                started_at=T0 + timedelta(seconds=9),
                ended_at=T0 + timedelta(seconds=60),
            ),
        ),
        transfers=(CallTransfer("blind", T0 + timedelta(seconds=30), "1101", "1102"),),
        controls=(CallControl("held", T0 + timedelta(seconds=20), "1101", (("by", "api"),)),),
        extras=(("CCB_X_MENU", "2"),),
        learned_at=T0 + timedelta(seconds=90),
    )


async def test_what_the_batch_writes_reads_back_through_the_repository(
    engine: AsyncEngine,
) -> None:
    sessions = create_session_factory(engine)
    writes = ThreadedCallWrites.for_engine(engine, SqlJournal(sessions))
    rec = full_call()
    assert await writes.upsert_many([rec]) == 1
    stored = await CallRepository(sessions).get_with_params(rec.call_id)
    expected = replace(
        rec,
        caller_name="张" * 255,
        started_at=rec.started_at.astimezone(UTC),
        queued_at=T0 + timedelta(seconds=2),
        answered_at=T0 + timedelta(seconds=9),
    )
    assert stored == expected
    assert stored is not None
    assert stored.started_at.tzinfo is UTC
    # Listing compares the stored times as the repository writes them (keyset order).
    listed = await CallRepository(sessions).list_with_params(
        tenant="t1", start=T0 - timedelta(seconds=1), end=T0 + timedelta(seconds=1)
    )
    assert [c.call_id for c in listed] == [rec.call_id]


async def test_a_stale_snapshot_is_skipped_and_adds_no_event(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    hub = EventHub()
    journal = SqlJournal(sessions, on_commit=hub.publish)
    newer = full_call(version=7)
    await CallRepository(sessions).upsert_many([newer])  # written earlier, without events
    writes = ThreadedCallWrites.for_engine(engine, journal)
    stale = replace(full_call(version=3), state=CallState.QUEUED, ended_at=None)
    fresh = replace(full_call(version=1), call_id="1795433000.9")
    assert await writes.upsert_many([stale, fresh]) == 1
    kept = await CallRepository(sessions).get(newer.call_id)
    assert kept is not None
    assert (kept.version, kept.state) == (7, CallState.ENDED)
    assert {e.call_id for e in await journal.list_after("t1", 0, 100)} == {"1795433000.9"}
    assert hub.published == len(await journal.list_after("t1", 0, 100))


async def test_a_later_snapshot_that_changes_tenant_caller_or_start_is_written_in_full(
    engine: AsyncEngine,
) -> None:
    """The common upsert leaves the indexed identity columns alone; a snapshot that changes
    one of them (the tenant learned late, a new caller id) is still written whole, beside
    an ordinary update and a stale snapshot in the same batch (ADR 0029)."""
    sessions = create_session_factory(engine)
    journal = SqlJournal(sessions)
    writes = ThreadedCallWrites.for_engine(engine, journal)
    early = replace(full_call(version=1), tenant=None, state=CallState.QUEUED, ended_at=None)
    other = replace(full_call(version=1), call_id="1795433000.7", caller="13900000000")
    newer = replace(full_call(version=9), call_id="1795433000.8")
    await CallRepository(sessions).upsert_many([newer])
    assert await writes.upsert_many([early, other]) == 2
    tenant_known = replace(full_call(version=2), state=CallState.QUEUED, ended_at=None)
    moved = replace(
        full_call(version=2),
        call_id="1795433000.7",
        caller="13700000000",
        started_at=T0 - timedelta(seconds=5),
    )
    same = replace(full_call(version=3), call_id="1795433000.7")  # not in this batch
    stale = replace(full_call(version=4), call_id="1795433000.8", state=CallState.QUEUED)
    assert await writes.upsert_many([tenant_known, moved, stale]) == 2
    repo = CallRepository(sessions)
    got = {cid: await repo.get(cid) for cid in (early.call_id, moved.call_id, newer.call_id)}
    assert {cid: (c.tenant, c.caller, c.started_at, c.version) for cid, c in got.items() if c} == {
        early.call_id: ("t1", "13800138000", T0, 2),
        moved.call_id: ("t1", "13700000000", T0 - timedelta(seconds=5), 2),
        newer.call_id: ("t1", "13800138000", T0, 9),
    }
    listed = await repo.list_with_params(
        tenant="t1", start=T0 - timedelta(seconds=10), end=T0 + timedelta(seconds=1)
    )
    assert {c.call_id for c in listed} == {early.call_id, moved.call_id, newer.call_id}
    assert await writes.upsert_many([same]) == 1
    assert (await repo.get(same.call_id)) is not None


async def test_batches_are_encoded_and_written_off_the_callers_thread(
    engine: AsyncEngine,
) -> None:
    sessions = create_session_factory(engine)
    publishers: list[int] = []
    hub = EventHub()

    def on_commit(stored: Sequence[StoredEvent]) -> None:
        publishers.append(threading.get_ident())
        hub.publish(stored)

    journal = SqlJournal(sessions, on_commit=on_commit)
    writes = ThreadedCallWrites.for_engine(engine, journal)
    writers: list[int] = []
    store = writes.persistence._store
    real_write = store.write

    async def spy(batch: Sequence[CallWrite]) -> WrittenCalls:
        writers.append(threading.get_ident())
        return await real_write(batch)

    store.write = spy  # type: ignore[method-assign]
    await writes.upsert_many([full_call()])
    here = threading.get_ident()
    assert writers
    assert writers[0] != here
    assert publishers == [here]  # the hub is told on its own loop
    assert hub.read_after("t1", 0, 100) == await journal.list_after("t1", 0, 100)


def test_commits_reach_the_hub_in_ticket_order_whichever_finishes_first() -> None:
    published: list[list[int]] = []
    order = CommitOrder(lambda events: published.append([e.seq for e in events]))

    def event(seq: int) -> StoredEvent:
        return StoredEvent("t1", seq, f"id{seq}", "call.queued", T0, T0, {})

    first, second, third = order.ticket(), order.ticket(), order.ticket()
    order.finish(second, [event(3)])
    order.finish(third, [])  # a failed commit still gives up its place
    assert published == []
    order.finish(first, [event(1), event(2)])
    assert published == [[1, 2], [3]]
    order.finish(order.ticket(), [event(4)])
    assert published == [[1, 2], [3], [4]]


def test_event_ids_are_the_uuid5_of_tenant_and_key() -> None:
    for tenant, key in [("t1", "call:1795433000.1:queued"), ("租户", "agent:s-1:7"), ("", "")]:
        assert event_id(tenant, key) == str(uuid.uuid5(EVENT_NAMESPACE, f"{tenant}\x00{key}"))


def test_an_envelope_spelt_with_the_batch_time_is_the_same_bytes() -> None:
    event = NewEvent(
        "t1",
        EventType.CALL_QUEUED,
        T0.astimezone(CST),
        "call:c1:queued",
        {"params": {"caller": '+86 "138"'}, "data": {"nested": True}},
        "c1",
    )
    plain = stored_event("t1", 5, event, T0)
    batch = stored_event("t1", 5, event, T0, envelope_time(T0))
    assert plain.encoded == batch.encoded == orjson.dumps(plain.envelope())
    assert batch.encoded is not None
    assert data_text(batch.encoded) == orjson.dumps(event.data).decode()
