"""The in-process hub: serves the tail from memory, refuses cursors it cannot answer, wakes
waiters on publish and never busy-waits."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime

from ccbridge.domain.journal.types import StoredEvent
from ccbridge.services.event_hub import EventHub

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def ev(tenant: str, seq: int) -> StoredEvent:
    return StoredEvent(tenant, seq, f"{tenant}-{seq}", "call.queued", T0, T0, {})


def test_reads_after_the_first_published_cursor_only() -> None:
    hub = EventHub(buffer=3)
    assert hub.read_after("t1", 0, 10) is None  # nothing known: ask the database
    hub.publish([ev("t1", 5), ev("t1", 6)])
    assert hub.read_after("t1", 3, 10) is None  # 4 was committed before this process knew
    assert [e.seq for e in hub.read_after("t1", 4, 10) or []] == [5, 6]
    assert [e.seq for e in hub.read_after("t1", 5, 1) or []] == [6]
    hub.publish([ev("t1", 7), ev("t1", 8)])  # 5 falls out of the 3-slot buffer
    assert hub.read_after("t1", 4, 10) is None
    assert [e.seq for e in hub.read_after("t1", 5, 10) or []] == [6, 7, 8]
    assert hub.read_after("t2", 0, 10) is None
    hub.publish([ev("t1", 8)])  # a repeat is ignored
    assert hub.last_seq("t1") == 8


async def _settle() -> None:
    """Let every ready task run (ordering, not time)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_wait_wakes_on_publish_and_times_out_otherwise() -> None:
    hub = EventHub()
    assert await hub.wait("t1", 0, 0.01) is False  # nothing came: timed out

    waiter = asyncio.create_task(hub.wait("t1", 0, 60))
    await _settle()
    assert hub.watched("t1")
    hub.publish([ev("t2", 1)])  # another tenant does not wake t1
    await _settle()
    assert not waiter.done()
    hub.publish([ev("t1", 1)])
    await _settle()
    assert waiter.done()
    assert waiter.result() is True
    assert not hub.watched("t1")
    assert await hub.wait("t1", 0, 60) is True  # already past the cursor: at once


async def test_close_wakes_every_waiter_and_says_closed() -> None:
    hub = EventHub()
    hub.publish([ev("t1", 1), ev("t2", 1)])
    waiters = [asyncio.create_task(hub.wait(t, 1, 60)) for t in ("t1", "t2", "t1")]
    await _settle()
    assert not any(w.done() for w in waiters)
    assert not hub.closed
    hub.close()
    await _settle()
    assert all(w.done() for w in waiters)
    assert hub.closed


def test_reads_find_the_cursor_by_bisection_across_gaps_and_both_halves() -> None:
    """Cursors are not dense: a read after a skipped number starts at the next event, from
    the front or the back half of the buffer alike."""
    hub = EventHub(buffer=100)
    hub.publish([ev("t1", s) for s in range(1, 200, 2)])  # 1, 3, … 199; buffer keeps 1…199
    assert [e.seq for e in hub.read_after("t1", 4, 3) or []] == [5, 7, 9]
    assert [e.seq for e in hub.read_after("t1", 190, 10) or []] == [191, 193, 195, 197, 199]
    assert hub.read_after("t1", 199, 10) == []
    hub.publish([ev("t1", s) for s in range(200, 260)])
    assert hub.read_after("t1", 100, 10) is None  # fell out of the buffer
    assert [e.seq for e in hub.read_after("t1", 258, 10) or []] == [259]


def test_a_full_buffer_leaves_the_garbage_collector_nothing_to_walk() -> None:
    """Buffered events are plain tuples of atoms, which the collector untracks: a full hub
    must not lengthen the stop-the-world pause of a full collection."""
    hub = EventHub(buffer=2000)
    events = [
        StoredEvent("t1", s, f"t1-{s}", "call.queued", T0, T0, {"params": {"a": "b"}, "x": [1]})
        for s in range(1, 2001)
    ]
    gc.collect()
    before = len(gc.get_objects())
    hub.publish(events)
    del events
    gc.collect()
    assert len(gc.get_objects()) - before < 50
    page = hub.read_after("t1", 1990, 3) or []
    assert [e.data for e in page] == [{"params": {"a": "b"}, "x": [1]}] * 3
    assert page[0].occurred_at == T0


async def test_skip_to_notes_progress_without_holding_events() -> None:
    """A tenant nobody waits on is not buffered: readers go to the database, and a waiter
    behind the noted cursor returns at once."""
    hub = EventHub()
    hub.publish([ev("t1", 1), ev("t1", 2)])
    assert not hub.watched("t1")
    hub.skip_to("t1", 9)
    assert hub.last_seq("t1") == 9
    assert hub.read_after("t1", 2, 10) is None  # ask the database
    assert await hub.wait("t1", 5, 5) is True
    waiting = asyncio.create_task(hub.wait("t1", 9, 5))
    await asyncio.sleep(0.01)
    assert hub.watched("t1")
    hub.publish([ev("t1", 10)])
    assert await waiting is True
    assert not hub.watched("t1")
    assert [e.seq for e in hub.read_after("t1", 9, 10) or []] == [10]
