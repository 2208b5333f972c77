"""Webhook delivery under faults, on both databases, with real HTTP receivers.

- A receiver down for 10 minutes of simulated time: every event arrives exactly once after
  dedupe by ``webhook-id``, in order per call, with exponential back-off (few attempts).
- A receiver that sleeps 30 s does not delay another endpoint, nor journal writes.
- The process killed mid-delivery (worker cancelled while the request is in flight): a new
  dispatcher over the same database resumes without loss.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ccbridge.domain.journal.types import EventType, NewEvent, StoredEvent
from ccbridge.services.event_ports import WebhookEndpoint
from tests.fakes.seats import FakeClock
from tests.support.event_rig import (
    ADMIN,
    EventWorld,
    Receiver,
    allow_loopback,
    build_world,
    cursor_reaches,
    eventually,
    running,
    serve,
)

CALL_STEPS = (
    EventType.CALL_QUEUED,
    EventType.CALL_RINGING,
    EventType.CALL_ANSWERED,
    EventType.CALL_ENDED,
)


async def _write_calls(world: EventWorld, calls: range, tenant: str = "t1") -> list[StoredEvent]:
    """Interleave the steps of several calls, one transaction per step (like the writer)."""
    stored: list[StoredEvent] = []
    for step in CALL_STEPS:
        for n in calls:
            stored += await world.journal.write(
                [
                    NewEvent(
                        tenant=tenant,
                        type=step,
                        occurred_at=world.clock.now(),
                        key=f"call:c{n}:{step.value}",
                        call_id=f"c{n}",
                        data={"call_id": f"c{n}", "params": {}, "extras": {}},
                    )
                ]
            )
    return stored


def _in_order_per_call(ids: list[str], stored: list[StoredEvent]) -> bool:
    seq_of = {e.id: e.seq for e in stored}
    call_of = {e.id: e.call_id for e in stored}
    last: dict[str | None, int] = {}
    for i in ids:
        call = call_of[i]
        if seq_of[i] < last.get(call, 0):
            return False
        last[call] = seq_of[i]
    return True


async def _subscribe(world: EventWorld, url: str) -> WebhookEndpoint:
    endpoint, _secret = await world.webhooks.create(ADMIN, "t1", url, [])
    return endpoint


async def test_receiver_down_ten_simulated_minutes_then_back(engine: AsyncEngine) -> None:
    clock = FakeClock()
    world = await build_world(engine, clock=clock)
    await allow_loopback(world, "t1")
    start = clock.now()
    back_at = start + timedelta(minutes=10)
    receiver = Receiver(status=lambda: 503 if clock.now() < back_at else 204)

    async def simulated_sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)
        await asyncio.sleep(0)

    async with serve(receiver) as url:
        await _subscribe(world, url)
        stored = await _write_calls(world, range(5))
        dispatcher = world.dispatcher(sleep=simulated_sleep, idle_wait=0.05, refresh=0.05)
        async with running(dispatcher.run()):
            # A hang guard: ten minutes of back-off pass on the simulated clock only.
            await eventually(lambda: len(receiver.delivered()) >= len(stored), within=30)
            more = await _write_calls(world, range(5, 7))  # after recovery: on time
            await eventually(lambda: len(receiver.delivered()) >= len(stored) + len(more))
            await cursor_reaches(world, "t1", more[-1].seq)

    delivered = [r.headers["webhook-id"] for r in receiver.delivered()]
    everything = stored + more
    assert sorted(set(delivered)) == sorted(e.id for e in everything)  # none lost
    assert len(delivered) == len(set(delivered))  # and, here, none twice
    assert _in_order_per_call(delivered, everything)
    failures = [r for r in receiver.received if r.answered == 503]
    assert clock.now() >= back_at  # ten minutes passed, all of them through the injected sleep
    # Exponential back-off: 5 s · 2ⁿ with jitter reaches 10 min in about 8 attempts, not 120.
    assert 4 <= len(failures) <= 12, len(failures)
    log = await world.store.deliveries((await world.store.list("t1"))[0].id, limit=500)
    assert {a.status for a in log} == {"failed", "succeeded"}
    assert sum(a.status == "succeeded" for a in log) == len(everything)


async def test_slow_receiver_does_not_delay_other_endpoints_or_the_journal(
    engine: AsyncEngine,
) -> None:
    world = await build_world(engine)
    await allow_loopback(world, "t1")
    crm_hangs = asyncio.Event()  # the slow CRM answers nothing until the test is over

    async def hang(_request: object) -> None:
        await crm_hangs.wait()

    slow, fast = Receiver(before_answer=hang), Receiver()
    async with serve(slow) as slow_url, serve(fast) as fast_url:
        await _subscribe(world, slow_url)
        await _subscribe(world, fast_url)
        dispatcher = world.dispatcher(idle_wait=0.05, refresh=0.05)
        try:
            async with running(dispatcher.run()):
                stored = await _write_calls(world, range(10))
                # A hang guard only: were the fast endpoint queued behind the slow one, it
                # would wait for an answer that never comes.
                await eventually(lambda: len(fast.delivered()) >= len(stored), within=30)
                assert len(slow.received) == 1  # stuck on its first event
                assert slow.delivered() == []
                # Journal writes (the AMI path's transactions) complete while the CRM hangs.
                await _write_calls(world, range(10, 11))
                assert slow.delivered() == []
        finally:
            crm_hangs.set()
    assert [r.headers["webhook-id"] for r in fast.delivered()][: len(stored)] == [
        e.id for e in stored
    ]


async def test_killed_mid_delivery_resumes_without_loss(engine: AsyncEngine) -> None:
    world = await build_world(engine)
    await allow_loopback(world, "t1")
    hang_on = asyncio.Event()
    forever = asyncio.Event()
    receiver = Receiver()
    stored: list[StoredEvent] = []

    async def hang_on_the_sixth(got: Any) -> None:
        if len(receiver.received) == 6 and not hang_on.is_set():
            hang_on.set()
            await forever.wait()  # the process dies before this answer arrives

    receiver.before_answer = hang_on_the_sixth
    async with serve(receiver) as url:
        await _subscribe(world, url)
        stored = await _write_calls(world, range(3))
        # A kill leaves no grace to finish the delivery in hand (a stop would: ADR 0030).
        alive = True
        first = world.dispatcher(
            idle_wait=0.05, refresh=0.05, may_act_for=lambda: 12.0 if alive else 0.0
        )
        async with running(first.run()):
            await asyncio.wait_for(hang_on.wait(), 5)
            alive = False
        # "Killed": the worker was cancelled mid-request; nothing was committed for event 6.
        endpoint = (await world.store.list("t1"))[0]
        assert endpoint.cursor == stored[4].seq
        second = world.dispatcher(idle_wait=0.05, refresh=0.05)
        async with running(second.run()):
            await eventually(lambda: len(receiver.delivered()) >= len(stored) - 1, within=5)
            await eventually(
                lambda: (
                    {r.headers["webhook-id"] for r in receiver.delivered()}
                    >= {e.id for e in stored}
                )
            )
        forever.set()

    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids.count(stored[5].id) == 2  # sent, killed, sent again (at-least-once)
    # The restart found the killed delivery's claim: that one, and only it, was in doubt.
    assert (first.in_doubt, second.in_doubt) == (0, 1)
    deduped = list(dict.fromkeys(ids))
    assert deduped == [e.id for e in stored]  # after dedupe: each once, in order
    assert _in_order_per_call(deduped, stored)


async def test_admin_edits_and_the_worker_never_overwrite_each_other(engine: AsyncEngine) -> None:
    """An admin works from a copy read before the worker moved on, and the worker from a copy
    read before the admin's edit: neither may rewind the other's fields (a rewound cursor
    re-sends delivered events; a worker's stale ``enabled`` would undo a disable)."""
    world = await build_world(engine)
    await allow_loopback(world, "t1")
    stale = await _subscribe(world, "http://127.0.0.1:9/hook")  # no dispatcher runs here
    stored = await _write_calls(world, range(1))
    delivered = replace(stale, cursor=stored[-1].seq)
    await world.store.advance(delivered, None)  # the worker delivered everything

    await world.webhooks.rotate_secret(ADMIN, "t1", stale.id)  # reads the endpoint afresh
    await world.store.update(replace(stale, url="http://127.0.0.1:9/v2"), {"url"})  # stale copy
    now = await world.store.get("t1", stale.id)
    assert now is not None
    assert now.cursor == stored[-1].seq
    assert now.url == "http://127.0.0.1:9/v2"
    assert len(now.secrets) == 2

    await world.webhooks.update(ADMIN, "t1", stale.id, enabled=False)
    await world.store.advance(replace(delivered, attempts=2), None)  # worker's stale copy
    now = await world.store.get("t1", stale.id)
    assert now is not None
    assert (now.enabled, now.disabled_reason) == (False, "disabled by a tenant admin")
    assert now.attempts == 2


async def test_store_update_refuses_delivery_state_fields(engine: AsyncEngine) -> None:
    world = await build_world(engine)
    await allow_loopback(world, "t1")
    endpoint = await _subscribe(world, "http://127.0.0.1:9/hook")
    with pytest.raises(ValueError, match="cursor"):
        await world.store.update(replace(endpoint, cursor=99), {"cursor"})
