"""One owner at a time: takeover after the owner stops renewing, self-fencing when cut off,
release at shutdown, and loops that run only during a term."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from ccbridge.domain.ha.ownership import LeaseTiming
from ccbridge.observability.metrics import Metrics
from ccbridge.resilience.held import HeldQueue
from ccbridge.services.pbx_ownership import PbxOwnership
from tests.unit.ha.lease_fakes import GUARD, MemoryLeases, until

TIMING = LeaseTiming(ttl=0.6, renew_every=0.1, margin=0.2)


@contextlib.asynccontextmanager
async def node(store: MemoryLeases, name: str) -> AsyncIterator[PbxOwnership]:
    ownership = PbxOwnership(store, pbx="pbx1", node=name, timing=TIMING)
    task = asyncio.create_task(ownership.run())
    try:
        yield ownership
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ownership.release()  # as Service.run does after its final flush


async def test_exactly_one_of_two_nodes_owns_and_the_other_takes_over_when_it_stops() -> None:
    store = MemoryLeases()
    seen_both = False
    async with node(store, "a") as a:
        await until(a.may_act, "a owns")
        async with node(store, "b") as b:
            for _ in range(20):  # b keeps trying while a renews
                await asyncio.sleep(TIMING.renew_every)
                seen_both |= a.may_act() and b.may_act()
            assert a.may_act()
            assert not b.may_act()
            assert b.terms_won == 0
            epoch_a = a.epoch
    # a left the `async with`: stopped and released its lease; b was stopped too.
    assert not seen_both
    assert store.releases == [("a", epoch_a)]
    async with node(store, "b") as b:
        await until(b.may_act, "b takes over")
        assert b.epoch == (epoch_a or 0) + 1


async def test_an_owner_cut_off_from_the_database_fences_itself_before_the_standby_acts() -> None:
    store = MemoryLeases()
    async with node(store, "a") as a:
        lost: list[int] = []
        a.on_lost(lost.append)
        await until(a.may_act, "a owns")
        async with node(store, "b") as b:
            overlap: list[bool] = []

            def watch() -> bool:
                overlap.append(a.may_act() and b.may_act())
                return b.may_act()

            store.cut_nodes.add("a")
            await until(watch, "b takes over")
            assert not any(overlap)
            assert lost == [1]
            assert a.terms_lost == 1
            store.cut_nodes.discard("a")
            for _ in range(10):  # a is back, but b holds the lease
                await asyncio.sleep(TIMING.renew_every)
                assert not a.may_act()
            assert b.epoch == 2


async def test_a_renewal_that_never_returns_still_closes_the_fence_on_time() -> None:
    """The fence is a timer, not the renewal's outcome: a hung request cannot extend it."""
    store = MemoryLeases()
    async with node(store, "a") as a:
        lost: list[int] = []
        a.on_lost(lost.append)
        await until(a.may_act, "a owns")
        store.stall_nodes.add("a")
        await until(lambda: bool(lost), "a's term ends by timer")
        assert not a.may_act()
        assert a.epoch is None
        store.stall_nodes.discard("a")


async def test_a_failing_takeover_hook_gives_the_term_back() -> None:
    store = MemoryLeases()
    ownership = PbxOwnership(store, pbx="pbx1", node="a", timing=TIMING)
    attempts: list[int] = []

    async def broken(epoch: int) -> None:
        attempts.append(epoch)
        raise ConnectionError("database gone while restoring calls")

    ownership.on_acquired(broken)
    task = asyncio.create_task(ownership.run())
    try:
        await until(lambda: len(attempts) >= 2, "two takeovers tried")
        assert not ownership.may_act()
        assert ownership.terms_won == 0
        assert ("a", attempts[0]) in store.releases
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ownership.release()


async def test_a_loop_run_while_owner_starts_at_takeover_and_is_cancelled_at_loss() -> None:
    store = MemoryLeases()
    runs: list[str] = []

    async with node(store, "a") as a:

        async def dispatcher() -> None:
            runs.append("started")
            try:
                await asyncio.Event().wait()
            finally:
                runs.append("cancelled")

        loop = asyncio.ensure_future(a.while_owner(dispatcher)())
        try:
            await until(lambda: runs == ["started"], "the loop starts with the term")
            store.cut_nodes.add("a")
            await until(lambda: runs == ["started", "cancelled"], "the loop ends with the term")
            store.cut_nodes.discard("a")
            await until(lambda: runs.count("started") == 2, "the next term starts it again")
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop


async def test_a_loop_that_raises_during_a_term_raises_to_its_supervisor() -> None:
    store = MemoryLeases()
    async with node(store, "a") as a:

        async def broken() -> None:
            raise RuntimeError("bug")

        with pytest.raises(RuntimeError, match="bug"):
            async with asyncio.timeout(GUARD):
                await a.while_owner(broken)()


async def test_a_term_knows_its_age_and_a_standby_has_none() -> None:
    store = MemoryLeases()
    async with node(store, "a") as a:
        assert a.owned_for() == 0.0
        await until(a.may_act, "a owns")
        await until(lambda: a.owned_for() > 0.0, "the term ages")
        store.cut_nodes.add("a")
        await until(lambda: not a.may_act(), "a fenced")
        assert a.owned_for() == 0.0


async def test_a_stopped_node_keeps_its_term_for_the_final_flush_then_releases() -> None:
    """Stopping the renewals does not end the term at once: the final flush still writes
    under it; the release afterwards hands the lease over without waiting for the TTL."""
    store = MemoryLeases()
    ownership = PbxOwnership(store, pbx="pbx1", node="a", timing=TIMING)
    task = asyncio.create_task(ownership.run())
    await until(ownership.may_act, "a owns")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert ownership.may_act()  # the final flush happens here
    token = ownership.fencing_token()
    assert token == ("pbx1", "a", 1)
    await ownership.release()
    assert not ownership.may_act()
    assert ownership.fencing_token() is None
    assert store.releases == [("a", 1)]
    assert (ownership.terms_won, ownership.terms_lost) == (1, 0)  # a release is no loss
    assert await store.acquire("pbx1", "b", 1.0, deadline=1.0) == 2


async def test_a_node_reports_its_role_and_terms_at_each_scrape() -> None:
    store = MemoryLeases()
    metrics = Metrics()
    async with node(store, "a") as a:
        metrics.ha.watch(a.may_act, lambda: a.terms_won, lambda: a.terms_lost)
        assert metrics.registry.get_sample_value("ccbridge_pbx_owner") == 0
        await until(a.may_act, "a owns")
        assert metrics.registry.get_sample_value("ccbridge_pbx_owner") == 1
        store.cut_nodes.add("a")
        await until(lambda: not a.may_act(), "a fenced")
        assert metrics.registry.get_sample_value("ccbridge_pbx_owner") == 0
        assert metrics.registry.get_sample_value("ccbridge_pbx_terms_won_total") == 1
        assert metrics.registry.get_sample_value("ccbridge_pbx_terms_lost_total") == 1
        store.cut_nodes.discard("a")


async def test_held_work_is_discarded_at_once_and_the_item_in_flight_finishes() -> None:
    """A node that lost the PBX drops its held seat and recording work (HeldQueue.discard)."""
    applied: list[int] = []
    gate = asyncio.Event()

    async def apply(item: int) -> None:
        await gate.wait()
        applied.append(item)

    held: HeldQueue[int] = HeldQueue("seats", apply, capacity=100)
    for item in range(5):
        held.put(item)
    task = asyncio.create_task(held.run())
    try:
        await asyncio.sleep(0)  # item 0 is being applied
        assert held.discard() == 5
        gate.set()
        await until(lambda: applied == [0], "the item in flight finishes")
        held.put(9)
        await until(lambda: applied == [0, 9], "the queue goes on")
        assert len(held) == 0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
