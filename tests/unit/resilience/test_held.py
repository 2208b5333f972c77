"""Held work: applied in order, retried through an outage, skipped on a bug, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from structlog.testing import capture_logs

from ccbridge.observability.metrics import Metrics
from ccbridge.resilience.backoff import Backoff
from ccbridge.resilience.held import HeldQueue

FAST = Backoff(initial=0.001, maximum=0.002)


def is_outage(exc: BaseException, _component: str) -> bool:
    return isinstance(exc, ConnectionError)


class Store:
    """Applies items; raises ``ConnectionResetError`` while ``down``, ``KeyError`` for "bug"."""

    def __init__(self) -> None:
        self.down = False
        self.applied: list[str] = []
        self.attempts = 0

    async def apply(self, item: str) -> None:
        self.attempts += 1
        if self.down:
            raise ConnectionResetError("database went away")
        if item == "bug":
            raise KeyError(item)
        self.applied.append(item)


async def until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not cond():  # noqa: ASYNC110 (state of another task)
            await asyncio.sleep(0.001)


async def test_items_wait_through_an_outage_and_are_applied_once_in_order() -> None:
    store = Store()
    held: HeldQueue[str] = HeldQueue(
        "seats", store.apply, capacity=100, on_error=is_outage, backoff=FAST
    )
    store.down = True
    for item in ("a", "b", "c"):
        held.put(item)
    task = asyncio.create_task(held.run())
    try:
        await until(lambda: store.attempts >= 5)
        assert store.applied == []
        assert len(held) == 3  # still held, none lost
        store.down = False
        await until(lambda: len(held) == 0)
        assert store.applied == ["a", "b", "c"]
        assert held.retries >= 4
    finally:
        task.cancel()


async def test_a_bug_skips_that_item_and_the_rest_go_on() -> None:
    store = Store()
    held: HeldQueue[str] = HeldQueue("seats", store.apply, capacity=100, on_error=is_outage)
    for item in ("a", "bug", "b"):
        held.put(item)
    task = asyncio.create_task(held.run())
    try:
        with capture_logs() as logs:
            await until(lambda: len(held) == 0)
        assert store.applied == ["a", "b"]
        assert held.failed == 1
        assert [e["event"] for e in logs] == ["held_write_failed"]
    finally:
        task.cancel()


async def test_the_bound_drops_and_counts_and_warns_before_it_is_reached() -> None:
    metrics = Metrics()
    held: HeldQueue[str] = HeldQueue("recordings", Store().apply, capacity=10, metrics=metrics.held)
    with capture_logs() as logs:
        accepted = [held.put(str(i)) for i in range(12)]
    assert accepted == [True] * 10 + [False] * 2
    events = [e["event"] for e in logs]
    assert events == ["held_writes_near_bound", "held_writes_dropped"]

    def sample(name: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"kind": "recordings"})

    assert sample("ccbridge_held_writes") == 10
    assert sample("ccbridge_held_writes_capacity") == 10
    assert sample("ccbridge_held_writes_dropped_total") == 2
