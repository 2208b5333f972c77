"""The PBX lease on the real PostgreSQL: one holder, takeover only after expiry by the
database's clock, a new epoch per term, and an old epoch that can never renew again."""

from __future__ import annotations

import asyncio

import pytest

from ccbridge.db.migrate import run_migrations_async
from ccbridge.db.pbx_ownership import PgPbxLeases
from tests.integration.conftest import pg_execute

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
