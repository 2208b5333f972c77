"""The PBX lease on the real PostgreSQL: one holder, takeover only after expiry by the
database's clock, a new epoch per term, an old epoch that can never renew again, and call
batches that check the term in their own transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.call_batches import PG_FENCE, PgCallBatches, call_batch_store
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.journal import CommitOrder, SqlJournal
from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.pbx_ownership import PgPbxLeases, SqlPbxOwnerLookup
from ccbridge.db.repositories import CallRepository
from ccbridge.db.writer_thread import ThreadedCallWrites
from ccbridge.domain.ha.forwarding import OwnerAddress
from tests.integration.conftest import pg_execute
from tests.integration.test_call_batches import full_call

pytestmark = pytest.mark.pg

DEADLINE = 5.0


@pytest.fixture
async def pg_url(pg_database_url: str) -> str:
    await pg_execute(pg_database_url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    await run_migrations_async(pg_database_url)
    return pg_database_url


async def test_one_holder_until_expiry_then_a_new_epoch(pg_url: str) -> None:
    a, b = PgPbxLeases(pg_url), PgPbxLeases(pg_url)
    try:
        assert await a.acquire("pbx1", "a", 0.5, deadline=DEADLINE) == 1
        assert await b.acquire("pbx1", "b", 0.5, deadline=DEADLINE) is None
        assert await a.acquire("pbx1", "a", 0.5, deadline=DEADLINE) is None  # no re-entry
        assert await a.renew("pbx1", "a", 1, 0.5, deadline=DEADLINE)
        holder = await b.holder("pbx1")
        assert holder is not None
        assert (holder.node, holder.epoch, holder.live) == ("a", 1, True)
        # a stops renewing; b polls until the database says the lease has expired.
        epoch = None
        while epoch is None:
            await asyncio.sleep(0.1)
            epoch = await b.acquire("pbx1", "b", 5.0, deadline=DEADLINE)
        assert epoch == 2
        # The old term cannot come back, not even by a late renewal.
        assert not await a.renew("pbx1", "a", 1, 5.0, deadline=DEADLINE)
        assert await b.renew("pbx1", "b", 2, 5.0, deadline=DEADLINE)
        # Another PBX is another lease.
        assert await a.acquire("pbx2", "a", 5.0, deadline=DEADLINE) == 1
    finally:
        await a.close()
        await b.close()


async def test_a_released_lease_is_taken_at_once_and_a_stale_release_does_nothing(
    pg_url: str,
) -> None:
    a, b = PgPbxLeases(pg_url), PgPbxLeases(pg_url)
    try:
        assert await a.acquire("pbx1", "a", 60.0, deadline=DEADLINE) == 1
        await a.release("pbx1", "a", 1, deadline=DEADLINE)
        assert await b.acquire("pbx1", "b", 60.0, deadline=DEADLINE) == 2
        await a.release("pbx1", "a", 1, deadline=DEADLINE)  # not a's any more
        assert await a.acquire("pbx1", "a", 60.0, deadline=DEADLINE) is None
        holder = await a.holder("pbx1")
        assert holder is not None
        assert (holder.node, holder.epoch, holder.live) == ("b", 2, True)
    finally:
        await a.close()
        await b.close()


async def test_racing_acquirers_get_one_epoch_between_them(pg_url: str) -> None:
    stores = [PgPbxLeases(pg_url) for _ in range(6)]
    try:
        won = await asyncio.gather(
            *(s.acquire("pbx1", f"n{i}", 60.0, deadline=DEADLINE) for i, s in enumerate(stores))
        )
        assert [e for e in won if e is not None] == [1]
    finally:
        for s in stores:
            await s.close()


async def test_call_batches_outside_the_term_are_refused_and_dropped(pg_url: str) -> None:
    """The write path checks the fencing token in its own transaction: a node whose term
    ended (or never began) writes no PBX state, and does not hold it for later either."""
    engine = create_engine(pg_url)
    leases, rival = PgPbxLeases(pg_url), PgPbxLeases(pg_url)
    try:
        sessions = create_session_factory(engine)
        repo = CallRepository(sessions)
        writes = ThreadedCallWrites.for_engine(engine, SqlJournal(sessions))
        term: list[tuple[str, str, int]] = []
        writes.use_fence(lambda: term[0] if term else None, idle_in_transaction=4.0)
        writer = CallBatchWriter(writes)
        writer.submit(full_call(version=1))  # a standby's stray snapshot
        await writer.flush()
        assert (writer.pending, writer.fenced_total) == (0, 1)
        assert await repo.get(full_call().call_id) is None

        epoch = await leases.acquire("default", "a", 0.3, deadline=DEADLINE)
        assert epoch is not None
        term.append(("default", "a", epoch))
        writer.submit(full_call(version=2))
        await writer.flush()
        stored = await repo.get(full_call().call_id)
        assert stored is not None
        assert stored.version == 2

        taken = None  # a stops renewing; b takes over once the database says it expired
        while taken is None:
            await asyncio.sleep(0.1)
            taken = await rival.acquire("default", "b", 60.0, deadline=DEADLINE)
        writer.submit(full_call(version=3))  # a still believes in its term
        await writer.flush()
        assert (writer.pending, writer.fenced_total) == (0, 2)
        stored = await repo.get(full_call().call_id)
        assert stored is not None
        assert stored.version == 2
    finally:
        await leases.close()
        await rival.close()
        await engine.dispose()


async def test_a_writer_frozen_inside_a_batch_cannot_hold_up_the_takeover(pg_url: str) -> None:
    """A node stopped (SIGSTOP, swapped out) in the middle of a batch holds the lease row
    FOR KEY SHARE; its connection's idle-in-transaction timeout lets the server end it, so the
    next owner's takeover goes through instead of waiting on a process that never resumes."""
    leases, rival = PgPbxLeases(pg_url), PgPbxLeases(pg_url)
    store = call_batch_store(pg_url, CommitOrder(lambda _events: None), lambda: datetime.now(UTC))
    assert isinstance(store, PgCallBatches)
    store.idle_in_transaction_ms = 300
    try:
        epoch = await leases.acquire("default", "a", 0.2, deadline=DEADLINE)
        assert epoch is not None
        conn = await store._connection()  # the writer's own connection, as a batch uses it
        tx = conn.transaction()
        await tx.start()
        held = await conn.fetchval(PG_FENCE, "default", "a", epoch)
        assert held == epoch
        # ...and the writer freezes here. The lease expires; the rival takes it.
        taken = None
        while taken is None:
            await asyncio.sleep(0.1)
            taken = await rival.acquire("default", "b", 60.0, deadline=DEADLINE)
        assert taken == epoch + 1
        assert conn.is_closed() or not await _alive(conn)
    finally:
        await store.close()
        await leases.close()
        await rival.close()


@contextlib.asynccontextmanager
async def owner_standby_writer(
    pg_url: str,
) -> AsyncIterator[tuple[PgPbxLeases, PgPbxLeases, PgCallBatches]]:
    """Two nodes' lease connections and the owner's batch writer, closed afterwards."""
    owner, standby = PgPbxLeases(pg_url), PgPbxLeases(pg_url)
    store = call_batch_store(pg_url, CommitOrder(lambda _events: None), lambda: datetime.now(UTC))
    assert isinstance(store, PgCallBatches)
    try:
        yield owner, standby, store
    finally:
        await store.close()
        await owner.close()
        await standby.close()


async def test_a_batch_in_flight_delays_neither_the_renewal_nor_a_standby_poll(
    pg_url: str,
) -> None:
    """A batch holds the lease row for its whole transaction; under load that can be seconds.
    The owner's renewal and a standby's poll must not queue behind it: with a share lock they
    did, and a slow batch cost its own node the lease (seen in the rolling-restart drill)."""
    async with owner_standby_writer(pg_url) as (owner, standby, store):
        epoch = await owner.acquire("default", "a", 30.0, deadline=DEADLINE)
        assert epoch is not None
        conn = await store._connection()
        async with conn.transaction():
            assert await conn.fetchval(PG_FENCE, "default", "a", epoch) == epoch
            # The batch is still open: both statements answer, they do not wait for it.
            assert await owner.renew("default", "a", epoch, 30.0, deadline=2.0)
            assert await standby.acquire("default", "b", 30.0, deadline=2.0) is None


async def test_a_takeover_waits_for_the_old_terms_batch_to_commit(pg_url: str) -> None:
    """The new term begins only after a batch already past its term check has committed, so
    no batch of the old term commits inside the new one."""
    async with owner_standby_writer(pg_url) as (owner, standby, store):
        epoch = await owner.acquire("default", "a", 0.2, deadline=DEADLINE)
        assert epoch is not None
        conn = await store._connection()
        tx = conn.transaction()
        await tx.start()
        assert await conn.fetchval(PG_FENCE, "default", "a", epoch) == epoch
        holder = await standby.holder("default")
        while holder is not None and holder.live:
            await asyncio.sleep(0.05)
            holder = await standby.holder("default")
        # Expired, but the batch is still open: the takeover waits for it.
        takeover = asyncio.create_task(standby.acquire("default", "b", 30.0, deadline=60.0))
        await asyncio.sleep(0.5)
        assert not takeover.done()
        await tx.commit()
        assert await takeover == epoch + 1


async def _alive(conn: Any) -> bool:
    try:
        await conn.fetchval("SELECT 1", timeout=2)
    except Exception:
        return False
    return True


async def test_the_owner_publishes_its_api_address_with_each_term(pg_url: str) -> None:
    """A standby finds where to forward owner-only requests in the live lease row, and
    nowhere once the term has ended (ADR 0031)."""
    a = PgPbxLeases(pg_url, advertise_url="http://node-a:8000")
    b = PgPbxLeases(pg_url, advertise_url="http://node-b:8000")
    engine = create_engine(pg_url)
    lookup = SqlPbxOwnerLookup(create_session_factory(engine))
    try:
        assert await lookup("pbx1") is None  # nobody ever held it
        assert await a.acquire("pbx1", "node-a", 5.0, deadline=DEADLINE) == 1
        assert await lookup("pbx1") == OwnerAddress("node-a", 1, "http://node-a:8000")
        await a.release("pbx1", "node-a", 1, deadline=DEADLINE)
        assert await lookup("pbx1") is None  # released: a takeover is due, no address
        assert await b.acquire("pbx1", "node-b", 5.0, deadline=DEADLINE) == 2
        assert await lookup("pbx1") == OwnerAddress("node-b", 2, "http://node-b:8000")
        assert await lookup("pbx2") is None
    finally:
        await a.close()
        await b.close()
        await engine.dispose()


async def test_a_node_without_ha_holds_the_row_so_ha_nodes_stand_by(pg_url: str) -> None:
    """A node without HA marks the PBX as its own (ADR 0032): an HA node finds it held and
    stands by; a second node without HA is told who drives it; when the first lets go, the
    HA node takes over in a new epoch, and the node without HA is then told it is held."""
    single, other = PgPbxLeases(pg_url, advertise_url="http://solo:8000"), PgPbxLeases(pg_url)
    ha = PgPbxLeases(pg_url, advertise_url="http://node-a:8000")
    engine = create_engine(pg_url)
    lookup = SqlPbxOwnerLookup(create_session_factory(engine))
    try:
        assert await single.hold_single("pbx1", "single:solo", 15.0) is None  # ours now
        assert await single.hold_single("pbx1", "single:solo", 15.0) is None  # renewed
        assert await lookup("pbx1") == OwnerAddress("single:solo", 1, "http://solo:8000")
        assert await ha.acquire("pbx1", "node-a", 5.0, deadline=DEADLINE) is None
        held = await other.hold_single("pbx1", "single:twin", 15.0)
        assert held is not None
        assert (held.node, held.epoch, held.live) == ("single:solo", 1, True)
        await single.let_go("pbx1", "single:solo")
        assert await ha.acquire("pbx1", "node-a", 5.0, deadline=DEADLINE) == 2
        held = await single.hold_single("pbx1", "single:solo", 15.0)
        assert held is not None
        assert (held.node, held.epoch) == ("node-a", 2)
    finally:
        for leases in (single, other, ha):
            await leases.close()
        await engine.dispose()


async def test_an_expired_mark_of_a_node_without_ha_is_taken_over(pg_url: str) -> None:
    """A node without HA that died leaves its mark to expire; then an HA node takes it."""
    single, ha = PgPbxLeases(pg_url), PgPbxLeases(pg_url)
    try:
        assert await single.hold_single("pbx1", "single:solo", 0.3) is None
        epoch = None
        while epoch is None:
            await asyncio.sleep(0.1)
            epoch = await ha.acquire("pbx1", "node-a", 5.0, deadline=DEADLINE)
        assert epoch == 2
    finally:
        await single.close()
        await ha.close()
