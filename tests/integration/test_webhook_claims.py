"""Claimed webhook deliveries (ADR 0030), on both databases where the path exists.

- A stop (the dispatcher cancelled while a request is in flight) finishes and marks the
  delivery in hand: nothing is sent twice after the restart.
- With several nodes (PostgreSQL): a node whose term ended can neither claim nor mark, its
  late mark moves no cursor, and the next owner's claim names the delivery in doubt.
- A claim skips an endpoint row another transaction holds (``SKIP LOCKED``) instead of
  waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.db.engine import create_session_factory
from ccbridge.db.webhooks import SqlWebhookStore
from ccbridge.domain.journal.types import EventType, NewEvent, StoredEvent
from ccbridge.services.event_ports import DeliveryAttempt, DeliveryFenced, WebhookEndpoint
from tests.support.event_rig import (
    ADMIN,
    EventWorld,
    Receiver,
    allow_loopback,
    build_world,
    eventually,
    running,
    serve,
)


async def _events(world: EventWorld, n: int) -> list[StoredEvent]:
    stored: list[StoredEvent] = []
    for i in range(n):
        stored += await world.journal.write(
            [
                NewEvent(
                    tenant="t1",
                    type=EventType.CALL_QUEUED,
                    occurred_at=world.clock.now(),
                    key=f"call:c{i}:queued",
                    call_id=f"c{i}",
                    data={"call_id": f"c{i}", "params": {}, "extras": {}},
                )
            ]
        )
    return stored


async def _subscribe(world: EventWorld, url: str) -> WebhookEndpoint:
    endpoint, _secret = await world.webhooks.create(ADMIN, "t1", url, [], from_now=False)
    return endpoint


async def test_a_stop_finishes_and_marks_the_delivery_in_hand(engine: AsyncEngine) -> None:
    world = await build_world(engine)
    await allow_loopback(world, "t1")
    held, go = asyncio.Event(), asyncio.Event()
    receiver = Receiver()

    async def hold_the_third(got: Any) -> None:
        if len(receiver.received) == 3 and not held.is_set():
            held.set()
            await go.wait()  # answered only once the stop has begun

    receiver.before_answer = hold_the_third
    async with serve(receiver) as url:
        endpoint = await _subscribe(world, url)
        stored = await _events(world, 5)
        first = world.dispatcher(idle_wait=0.05, refresh=0.05)
        task = asyncio.ensure_future(first.run())
        await asyncio.wait_for(held.wait(), 5)
        task.cancel()  # SIGTERM: the delivery in hand goes on
        await asyncio.sleep(0.05)
        assert not task.done()
        go.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        after_stop = await world.store.get("t1", endpoint.id)
        assert after_stop is not None
        assert after_stop.cursor == stored[2].seq  # marked before the process ended
        second = world.dispatcher(idle_wait=0.05, refresh=0.05)
        async with running(second.run()):
            await eventually(lambda: len(receiver.delivered()) >= len(stored), within=5)
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids == [e.id for e in stored]  # each once, in order: no repeat after a stop
    assert (first.in_doubt, second.in_doubt) == (0, 0)


def _pg_only(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several nodes run on PostgreSQL only (ADR 0026)")


async def _lease(engine: AsyncEngine, node: str, epoch: int) -> None:
    """Put the PBX's lease in *node*'s hands at *epoch* (a takeover, as the database sees it)."""
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM pbx_owners"))
        await conn.execute(
            text(
                "INSERT INTO pbx_owners (pbx, node, epoch, acquired_at, expires_at) "
                "VALUES ('default', :node, :epoch, :now, :until)"
            ),
            {
                "node": node,
                "epoch": epoch,
                "now": datetime.now(UTC),
                "until": datetime.now(UTC) + timedelta(hours=1),
            },
        )


def _node_store(engine: AsyncEngine, node: str, epoch: int | None) -> SqlWebhookStore:
    store = SqlWebhookStore(create_session_factory(engine))
    store.fence = lambda: None if epoch is None else ("default", node, epoch)
    store.idle_in_transaction_ms = 2000
    return store


def _ok(endpoint: WebhookEndpoint, event: StoredEvent) -> DeliveryAttempt:
    return DeliveryAttempt(
        id=0,
        endpoint_id=endpoint.id,
        event_seq=event.seq,
        event_id=event.id,
        status="succeeded",
        manual=False,
        attempt=1,
        at=datetime.now(UTC),
        http_status=204,
    )


async def test_a_node_that_lost_its_term_can_neither_claim_nor_mark(engine: AsyncEngine) -> None:
    _pg_only(engine)
    world = await build_world(engine)
    await allow_loopback(world, "t1")
    endpoint = await _subscribe(world, "http://127.0.0.1:9/hook")
    stored = await _events(world, 2)
    await _lease(engine, "node-a", 1)
    a = _node_store(engine, "node-a", 1)
    claim = await a.claim(endpoint.id, stored[0].seq)
    assert claim is not None
    assert (claim.node, claim.epoch, claim.in_doubt_from) == ("node-a", 1, None)

    await _lease(engine, "node-b", 2)  # node-a's POST is out; node-b takes the PBX over
    with pytest.raises(DeliveryFenced):  # node-a's late mark: refused, nothing written
        await a.advance(replace(endpoint, cursor=stored[0].seq), _ok(endpoint, stored[0]), claim)
    with pytest.raises(DeliveryFenced):
        await a.claim(endpoint.id, stored[1].seq)
    with pytest.raises(DeliveryFenced):  # its own fence closed: not even asked
        await _node_store(engine, "node-a", None).claim(endpoint.id, stored[0].seq)
    kept = await world.store.get("t1", endpoint.id)
    assert kept is not None
    assert kept.cursor == endpoint.cursor
    assert await world.store.deliveries(endpoint.id) == []

    b = _node_store(engine, "node-b", 2)
    again = await b.claim(endpoint.id, stored[0].seq)
    assert again is not None
    assert again.in_doubt_from == ("node-a", 1)  # the one delivery that may repeat
    await b.advance(replace(endpoint, cursor=stored[0].seq), _ok(endpoint, stored[0]), again)
    done = await world.store.get("t1", endpoint.id)
    assert done is not None
    assert done.cursor == stored[0].seq
    # The mark cleared the claim: the next event starts clean, and the first is not resent.
    assert await b.claim(endpoint.id, stored[0].seq) is None
    nxt = await b.claim(endpoint.id, stored[1].seq)
    assert nxt is not None
    assert nxt.in_doubt_from is None


async def test_a_claim_skips_an_endpoint_row_held_by_another_transaction(
    engine: AsyncEngine,
) -> None:
    _pg_only(engine)
    world = await build_world(engine)
    await allow_loopback(world, "t1")
    endpoint = await _subscribe(world, "http://127.0.0.1:9/hook")
    stored = await _events(world, 1)
    await _lease(engine, "node-a", 1)
    a = _node_store(engine, "node-a", 1)
    async with engine.connect() as other, other.begin():
        await other.execute(
            text("SELECT id FROM webhook_endpoints WHERE id = :id FOR UPDATE"),
            {"id": endpoint.id},
        )
        # Held (a mark or an admin's edit in flight): skipped, not waited for.
        assert await asyncio.wait_for(a.claim(endpoint.id, stored[0].seq), 5) is None
    claim = await a.claim(endpoint.id, stored[0].seq)
    assert claim is not None
    assert claim.in_doubt_from is None


async def test_a_term_that_ends_before_the_post_sends_nothing(engine: AsyncEngine) -> None:
    """The worker asks its term right before the POST: a node whose fence closed while it
    prepared the request (busy, or frozen) sends nothing; the next owner finds the claim."""
    world = await build_world(engine)
    await allow_loopback(world, "t1")
    receiver = Receiver()
    async with serve(receiver) as url:
        endpoint = await _subscribe(world, url)
        await _events(world, 1)
        fenced = world.dispatcher(idle_wait=0.05, refresh=0.05, may_act_for=lambda: 0.0)
        async with running(fenced.run()):
            await eventually(lambda: fenced.fenced >= 1, within=5)
        assert receiver.received == []
        after = world.dispatcher(idle_wait=0.05, refresh=0.05)
        async with running(after.run()):
            await eventually(lambda: len(receiver.delivered()) == 1, within=5)
    assert after.in_doubt == 1  # claimed, never sent: in doubt, yet received once
    done = await world.store.get("t1", endpoint.id)
    assert done is not None
    assert done.cursor > endpoint.cursor
