"""The journal on both databases: cursor order under concurrent writers (no reader ever
skips a late-committing event), idempotent ids, retention, outbox atomicity."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import PgReadPool, create_session_factory
from ccbridge.db.event_listener import PgEventListener
from ccbridge.db.journal import SqlEventSettings, SqlJournal, event_id
from ccbridge.db.repositories import CallRepository
from ccbridge.db.sqlite_reads import SqliteReadPool, read_pool_for
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.journal.types import EventType, NewEvent
from ccbridge.services.event_hub import EventHub
from ccbridge.services.events import EventService
from tests.support.call_writes import JournalledCalls

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _event(tenant: str, key: str, at: datetime = T0) -> NewEvent:
    return NewEvent(
        tenant=tenant,
        type=EventType.CALL_QUEUED,
        occurred_at=at,
        key=key,
        call_id=key,
        data={"call_id": key, "params": {}, "extras": {}},
    )


async def test_a_poller_never_skips_a_late_committing_event(engine: AsyncEngine) -> None:
    """Writers hold their transaction open for a random time after taking numbers; a poller
    reading by cursor all along must still see every event, in order, exactly once."""
    sessions = create_session_factory(engine)
    published: list[int] = []
    journal = SqlJournal(sessions, on_commit=lambda evs: published.extend(e.seq for e in evs))
    rng = random.Random(7)
    writers_done = asyncio.Event()
    seen: list[int] = []

    async def writer(n: int) -> None:
        for i in range(5):
            async with sessions() as db:
                stored = await journal.append(db, [_event("t1", f"w{n}-{i}")])
                await asyncio.sleep(rng.uniform(0, 0.01))  # commit late
                await journal.commit(db, stored)

    async def poller() -> None:
        cursor = 0
        while True:
            done = writers_done.is_set()
            page = await journal.list_after("t1", cursor, 100)
            for event in page:
                seen.append(event.seq)
                cursor = event.seq
            if done and not page:
                return
            await asyncio.sleep(0.001)

    reader = asyncio.create_task(poller())
    await asyncio.gather(*(writer(n) for n in range(12)))
    writers_done.set()
    await reader
    everything = [e.seq for e in await journal.list_after("t1", 0, 1000)]
    assert len(everything) == 60
    assert seen == everything == sorted(everything)
    assert published == everything  # the hub hears commits in cursor order too


async def test_tenants_have_their_own_cursors_and_ids_are_idempotent(engine: AsyncEngine) -> None:
    journal = SqlJournal(create_session_factory(engine))
    a = await journal.write([_event("t1", "k1"), _event("t1", "k2")])
    b = await journal.write([_event("t2", "k1")])
    again = await journal.write([_event("t1", "k1")])  # the same transition re-derived
    assert [e.seq for e in a] == [1, 2]
    assert [e.seq for e in b] == [1]
    assert again == []
    assert a[0].id == event_id("t1", "k1") != b[0].id
    assert [e.seq for e in await journal.list_after("t1", 0, 10)] == [1, 2]
    assert await journal.last_seq("t1") == 3  # a skipped number: monotonic, not dense
    later = await journal.write([_event("t1", "k3")])
    assert later[0].seq == 4


async def test_a_batch_of_many_tenants_is_a_fixed_number_of_statements(
    engine: AsyncEngine,
) -> None:
    """SQLite: counters bumped, read back and events inserted in three statements whatever
    the batch (each statement step a GIL hand-off that waits behind a busy loop); a retried
    batch mixing old and new ids across tenants keeps only the new ones."""
    journal = SqlJournal(create_session_factory(engine))
    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_rest: object) -> None:
        statements.append(sql)

    listen_to = engine.sync_engine
    sa_event.listen(listen_to, "before_cursor_execute", count)
    try:
        batch = [_event(f"t{i % 3}", f"k{i}") for i in range(60)]
        stored = await journal.write(batch)
        writes = [s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))]
        if engine.dialect.name == "sqlite":
            assert len(writes) == 3, writes
    finally:
        sa_event.remove(listen_to, "before_cursor_execute", count)
    assert len(stored) == 60
    assert [e.seq for e in stored if e.tenant == "t1"] == list(range(1, 21))
    retried = await journal.write([_event("t0", "k0"), _event("t1", "new"), _event("t2", "k2")])
    assert [(e.tenant, e.seq) for e in retried] == [("t1", 21)]
    assert [e.id for e in await journal.list_after("t1", 20, 10)] == [event_id("t1", "new")]


async def test_retention_drops_only_old_events(engine: AsyncEngine) -> None:
    now = [T0]
    journal = SqlJournal(create_session_factory(engine), now=lambda: now[0])
    await journal.write([_event("t1", "old")])
    now[0] = T0 + timedelta(days=31)
    await journal.write([_event("t1", "new")])
    assert await journal.delete_before(now[0] - timedelta(days=30)) == 1
    left = await journal.list_after("t1", 0, 10)
    assert [e.call_id for e in left] == ["new"]
    assert (await journal.write([_event("t1", "newer")]))[0].seq == 3  # cursors never reused


async def test_call_events_are_written_with_the_call_or_not_at_all(engine: AsyncEngine) -> None:
    sessions = create_session_factory(engine)
    hub = EventHub()
    journal = SqlJournal(sessions, on_commit=hub.publish)
    repo = JournalledCalls(engine, journal)
    rec = CallRecord(
        call_id="c1",
        started_at=T0,
        tenant="t1",
        caller="13800138000",
        callee="4008001234",
        skill_group="t1-sales",
        queued_at=T0,
        state=CallState.QUEUED,
        version=1,
    )
    # A failing event insert (simulated by a broken journal table) rolls the call back too.
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE events RENAME TO events_gone"))
    with pytest.raises(Exception):  # noqa: B017, PT011  (driver-specific error class)
        await repo.upsert_many([rec])
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE events_gone RENAME TO events"))
    assert await repo.get("c1") is None
    assert await repo.upsert_many([rec]) == 1
    stored = await journal.list_after("t1", 0, 10)
    assert [e.type for e in stored] == ["call.queued"]
    assert stored[0].data["params"]["caller"] == "+8613800138000"
    assert hub.read_after("t1", 0, 10) == stored
    # Replaying the same snapshot (after a restart) adds nothing.
    assert await repo.upsert_many([rec]) == 1
    assert await journal.list_after("t1", 0, 10) == stored


async def as_rows_from_before_0011(engine: AsyncEngine) -> None:
    """Turn every event into a row as written before migration 0011: ``data`` only, no
    envelope. Since 0023 new rows keep the JSON only in the envelope, so ``data`` is copied
    back out of it first (as the 0023 downgrade does)."""
    data = (
        "json_extract(CAST(envelope AS TEXT), '$.data')"
        if engine.dialect.name == "sqlite"
        else "(convert_from(envelope, 'UTF8')::json -> 'data')"
    )
    async with engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE events SET data = {data}, envelope = NULL, has_extras = NULL")
        )


async def test_encoded_pages_are_the_envelopes_bytes_and_old_rows_still_read(
    engine: AsyncEngine,
) -> None:
    """The fast read path serves the envelope stored at append, byte for byte what encoding
    the decoded event gives; a row from before migration 0010 (no stored envelope) is
    encoded on read; the type filter is keyset too."""
    journal = SqlJournal(create_session_factory(engine))
    stored = await journal.write(
        [
            _event("t1", "a"),
            NewEvent(
                tenant="t1",
                type=EventType.CALL_ANSWERED,
                occurred_at=T0 + timedelta(seconds=1),
                key="b",
                call_id="b",
                data={"call_id": "b", "params": {"caller": "主叫"}, "extras": {"ivr_choice": "2"}},
            ),
            _event("t1", "c"),
        ]
    )
    decoded = await journal.list_after("t1", 0, 10)
    page = await journal.list_encoded("t1", 0, 10)
    assert [e.seq for e in page] == [1, 2, 3]
    assert [e.envelope for e in page] == [orjson.dumps(e.envelope()) for e in decoded]
    assert [e.envelope for e in page] == [e.encoded for e in stored]
    assert [e.has_extras for e in page] == [False, True, False]
    assert orjson.loads(page[1].envelope)["data"]["params"]["caller"] == "主叫"
    typed = await journal.list_encoded("t1", 0, 10, types=["call.answered"])
    assert [e.seq for e in typed] == [2]
    assert [e.seq for e in await journal.list_encoded("t1", 1, 1)] == [2]

    await as_rows_from_before_0011(engine)
    assert await journal.list_encoded("t1", 0, 10) == page


async def test_a_stream_writes_every_available_frame_in_one_chunk(engine: AsyncEngine) -> None:
    """SSE coalescing: what is available at a wake-up goes out as one chunk of frames, each
    frame carrying the stored envelope; later commits come as the next chunk."""
    sessions = create_session_factory(engine)
    hub = EventHub()
    journal = SqlJournal(sessions, on_commit=hub.publish)
    events = EventService(
        journal, hub, SqlEventSettings(sessions), CallRepository(sessions), None, lambda: T0
    )
    stored = await journal.write([_event("t1", f"k{i}") for i in range(3)])
    stream = events.stream("t1", 0, ping_every=5.0)
    first = await anext(stream)
    assert first == b"".join(
        b"id: %d\nevent: call.queued\ndata: %s\n\n" % (e.seq, e.encoded) for e in stored
    )
    more = await journal.write([_event("t1", "k3"), _event("t1", "k4")])
    second = await anext(stream)
    assert second is not None
    assert second.count(b"\n\n") == 2
    assert second.startswith(b"id: %d\n" % more[0].seq)
    await stream.aclose()
    # Two streams at the same cursor share one chunk (encoded once per tenant, not per stream).
    a, b = events.stream("t1", stored[-1].seq), events.stream("t1", stored[-1].seq)
    assert await anext(a) is await anext(b)
    await a.aclose()
    await b.aclose()


async def test_appended_events_roll_back_with_their_transaction(engine: AsyncEngine) -> None:
    """Outbox: the fast PostgreSQL insert runs inside the caller's transaction, so a rollback
    takes the events and the counter bump with it."""
    sessions = create_session_factory(engine)
    journal = SqlJournal(sessions)
    async with sessions() as db:
        stored = await journal.append(db, [_event("t1", "a"), _event("t2", "b")])
        assert len(stored) == 2
        await db.rollback()
    assert await journal.list_after("t1", 0, 10) == []
    assert await journal.list_encoded("t2", 0, 10) == []
    assert await journal.last_seq("t1") == 0
    again = await journal.write([_event("t2", "b"), _event("t1", "a"), _event("t1", "c")])
    assert [(e.tenant, e.seq) for e in again] == [("t1", 1), ("t1", 2), ("t2", 1)]


async def test_the_read_pool_serves_the_same_pages(engine: AsyncEngine) -> None:
    """PostgreSQL pages through the dedicated asyncpg pool equal the session path's; SQLite
    has no such pool and keeps the session path."""
    sessions = create_session_factory(engine)
    pool = PgReadPool.for_engine(engine)
    if engine.dialect.name != "postgresql":
        assert pool is None
        return
    assert pool is not None
    try:
        plain = SqlJournal(sessions)
        pooled = SqlJournal(sessions, read_pool=pool)
        await plain.write([_event("t1", f"p{i}") for i in range(5)])
        assert await pooled.list_encoded("t1", 1, 3) == await plain.list_encoded("t1", 1, 3)
        typed = await pooled.list_encoded("t1", 0, 10, types=["call.answered"])
        assert typed == []
        await plain.write([_event("t2", "q")])
        many = await pooled.list_encoded_many({"t1": 3, "t2": 0, "t9": 0}, 10)
        assert many == {
            "t1": await plain.list_encoded("t1", 3, 10),
            "t2": await plain.list_encoded("t2", 0, 10),
            "t9": [],
        }
    finally:
        await pool.close()


async def test_an_api_process_hub_follows_another_process_commits(engine: AsyncEngine) -> None:
    """PostgreSQL: a writer without a hub (the PBX owner) NOTIFYs at commit; a listener feeds
    another hub (an API process), which wakes a long-poll and a stream; a rolled-back batch
    announces nothing."""
    if engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    sessions = create_session_factory(engine)
    writer = SqlJournal(sessions)
    await writer.write([_event("t1", "before")])  # committed before the API process started
    hub = EventHub()
    reader = SqlJournal(sessions)
    listener = PgEventListener(engine.url.render_as_string(hide_password=False), reader, hub)
    events = EventService(reader, hub, SqlEventSettings(sessions), CallRepository(sessions),
                          None, lambda: T0)  # fmt: skip
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        poll = asyncio.create_task(events.poll("t1", 1, 100, wait=10))
        stream = events.stream("t2", 0, ping_every=10)
        await asyncio.sleep(0.1)
        async with sessions() as db:
            await writer.append(db, [_event("t1", "lost")])
            await db.rollback()
        await writer.write([_event("t1", "a"), _event("t1", "b"), _event("t2", "c")])
        page = await asyncio.wait_for(poll, 5)
        assert [orjson.loads(e.envelope)["call_id"] for e in page] == ["a", "b"]
        chunk = await asyncio.wait_for(anext(stream), 5)
        assert chunk is not None
        assert b'"call_id":"c"' in chunk
        await stream.aclose()
        assert [e.call_id for e in hub.read_after("t1", 1, 10) or []] == ["a", "b"]
        assert hub.read_after("t1", 0, 10) is None  # "before" predates the listener: database

        # The listening connection dies; what commits meanwhile arrives after the reconnect.
        async with engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'ccbridge-listen' AND datname = current_database()"
                )
            )
        await writer.write([_event("t1", "during")])
        for _ in range(100):
            if [e.call_id for e in hub.read_after("t1", 3, 10) or []] == ["during"]:
                break
            await asyncio.sleep(0.05)
        assert [e.call_id for e in hub.read_after("t1", 3, 10) or []] == ["during"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_sqlite_read_pool_serves_the_same_pages_and_every_commit(
    engine: AsyncEngine,
) -> None:
    """On a SQLite file the hot pages come from the read pool's own connections: the same
    bytes as the session path, a commit visible to the very next page, the pre-0011 rows
    still encoded on read, several tenants per call; PostgreSQL keeps its asyncpg pool."""
    sessions = create_session_factory(engine)
    pool = read_pool_for(engine)
    if engine.dialect.name == "postgresql":
        assert isinstance(pool, PgReadPool)
        await pool.close()
        return
    assert isinstance(pool, SqliteReadPool)
    try:
        plain = SqlJournal(sessions)
        pooled = SqlJournal(sessions, read_pool=pool)
        assert await pooled.list_encoded("t1", 0, 10) == []
        await plain.write([_event("t1", f"s{i}") for i in range(5)])
        assert await pooled.list_encoded("t1", 1, 3) == await plain.list_encoded("t1", 1, 3)
        await plain.write([_event("t1", "s5"), _event("t2", "u")])
        page = await pooled.list_encoded("t1", 4, 10)
        assert [e.seq for e in page] == [5, 6]
        many = await pooled.list_encoded_many({"t1": 5, "t2": 0, "t9": 0}, 10)
        assert many == {
            "t1": await plain.list_encoded("t1", 5, 10),
            "t2": await plain.list_encoded("t2", 0, 10),
            "t9": [],
        }
        assert await pooled.list_encoded("t1", 0, 10, types=["call.queued"]) == (
            await plain.list_encoded("t1", 0, 10)
        )
        answered = NewEvent(
            tenant="t1",
            type=EventType.CALL_ANSWERED,
            occurred_at=T0,
            key="x",
            call_id="x",
            data={"call_id": "x", "params": {"caller": "主叫 ,'"}, "extras": {"ivr_choice": "2"}},
        )
        await plain.write([answered, _event("t1", "s7")])
        for types in (None, ["call.answered"], ["call.answered", "call.queued"], ["call.ended"]):
            mixed = await pooled.list_encoded("t1", 3, 10, types=types)
            assert mixed == await plain.list_encoded("t1", 3, 10, types=types)
        assert [e.has_extras for e in await pooled.list_encoded("t1", 6, 10)] == [True, False]
        await as_rows_from_before_0011(engine)
        assert await pooled.list_encoded("t1", 0, 10) == await plain.list_encoded("t1", 0, 10)
    finally:
        await pool.close()
