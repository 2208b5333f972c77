"""CallBatchWriter: coalescing, size-triggered flush, retry without loss, final flush."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

import pytest

from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.repositories import CallRepository
from ccbridge.domain.calls.model import CallRecord, CallState

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def call(call_id: str, version: int = 0, **kw: object) -> CallRecord:
    """Build a minimal record."""
    return CallRecord(call_id=call_id, started_at=T0, version=version, tenant="acme", **kw)  # type: ignore[arg-type]


class FlakyRepo:
    """Wraps a repository and fails the first *failures* writes (a DB outage)."""

    def __init__(
        self,
        inner: CallRepository,
        failures: int = 1,
        during_failure: Callable[[], None] | None = None,
    ) -> None:
        self.inner = inner
        self.failures = failures
        self.during_failure = during_failure
        self.calls = 0

    async def upsert_many(self, records: Sequence[CallRecord]) -> int:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            if self.during_failure is not None:
                self.during_failure()
            raise ConnectionError("database went away")
        return await self.inner.upsert_many(records)


class MemoryRepo:
    """Records the batches it is given."""

    def __init__(self) -> None:
        self.batches: list[list[CallRecord]] = []

    async def upsert_many(self, records: Sequence[CallRecord]) -> int:
        self.batches.append(list(records))
        return len(records)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    """Poll *check* until it holds, failing the test after *within* seconds."""
    async with asyncio.timeout(within):
        # Polling is the point: the state lives in the database, no event signals it.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(writer: CallBatchWriter) -> AsyncIterator[asyncio.Task[None]]:
    """Run the writer's loop for the block, then stop it (final flush) and reap the task."""
    task = asyncio.create_task(writer.run())
    try:
        yield task
    finally:
        await writer.stop()
        await asyncio.wait_for(task, 2)


async def test_hundred_updates_of_one_call_become_one_row(call_repo: CallRepository) -> None:
    writer = CallBatchWriter(call_repo)
    for version in range(100):
        writer.submit(
            call("c1", version, state=CallState.QUEUED if version < 99 else CallState.ENDED)
        )
    assert writer.pending == 1
    assert await writer.flush() == 1
    stored = await call_repo.get("c1")
    assert stored is not None
    assert (stored.version, stored.state) == (99, CallState.ENDED)
    assert await call_repo.count() == 1
    assert writer.stats().flushed_total == 1


async def test_older_submit_does_not_replace_pending_newer() -> None:
    repo = MemoryRepo()
    writer = CallBatchWriter(repo)
    writer.submit(call("c1", 5))
    writer.submit(call("c1", 3))
    await writer.flush()
    assert [r.version for r in repo.batches[0]] == [5]


async def test_reaching_batch_size_flushes_before_the_interval(call_repo: CallRepository) -> None:
    writer = CallBatchWriter(call_repo, batch_size=10, flush_interval=60)
    async with running(writer):
        await asyncio.sleep(0)  # let run() start waiting
        for i in range(10):
            writer.submit(call(f"c{i}"))

        async def all_written() -> bool:
            return await call_repo.count() == 10

        await eventually(all_written)
        assert writer.pending == 0


async def test_interval_flushes_a_small_batch(call_repo: CallRepository) -> None:
    writer = CallBatchWriter(call_repo, flush_interval=0.05)
    async with running(writer):
        writer.submit(call("c1"))

        async def written() -> bool:
            return await call_repo.get("c1") is not None

        await eventually(written)


async def test_failed_flush_is_retried_and_nothing_is_lost(call_repo: CallRepository) -> None:
    flaky = FlakyRepo(call_repo, failures=2)
    writer = CallBatchWriter(flaky, flush_interval=0.02, retry_initial=0.01)
    async with running(writer):
        for i in range(25):
            writer.submit(call(f"c{i}", 1))

        async def all_written() -> bool:
            return await call_repo.count() == 25

        await eventually(all_written)
    stats = writer.stats()
    assert (stats.flush_failures, stats.flushed_total, stats.pending) == (2, 25, 0)
    assert flaky.calls == 3


async def test_direct_flush_failure_keeps_records_and_newer_versions_win(
    call_repo: CallRepository,
) -> None:
    writer: CallBatchWriter

    def newer_arrives() -> None:
        writer.submit(call("c1", 9, state=CallState.CONNECTED))

    writer = CallBatchWriter(FlakyRepo(call_repo, failures=1, during_failure=newer_arrives))
    writer.submit(call("c1", 1))
    writer.submit(call("c2", 1))
    with pytest.raises(ConnectionError):
        await writer.flush()
    assert writer.pending == 2
    assert await writer.flush() == 2
    stored = await call_repo.get("c1")
    assert stored is not None
    assert (stored.version, stored.state) == (9, CallState.CONNECTED)


async def test_stop_writes_what_is_pending(call_repo: CallRepository) -> None:
    writer = CallBatchWriter(call_repo, flush_interval=60)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0)
    for i in range(7):
        writer.submit(call(f"c{i}"))
    await writer.stop()
    await asyncio.wait_for(task, 2)
    assert task.done()
    assert await call_repo.count() == 7


async def test_stop_raises_when_final_flush_keeps_failing() -> None:
    class DownRepo:
        async def upsert_many(self, records: Sequence[CallRecord]) -> int:
            raise ConnectionError("down")

    writer = CallBatchWriter(DownRepo(), retry_initial=0.001)
    writer.submit(call("c1"))
    with pytest.raises(ConnectionError):
        await writer.stop(attempts=2)
    assert writer.pending == 1


async def test_overflow_never_drops_and_asks_for_a_flush() -> None:
    repo = MemoryRepo()
    writer = CallBatchWriter(repo, max_pending=5, batch_size=1000)
    for i in range(10):
        writer.submit(call(f"c{i}"))
    assert (writer.pending, writer.overflows) == (10, 5)
    assert await writer.flush() == 10


async def test_large_backlog_is_written_in_batch_size_chunks() -> None:
    repo = MemoryRepo()
    writer = CallBatchWriter(repo, batch_size=4)
    for i in range(10):
        writer.submit(call(f"c{i}"))
    assert await writer.flush() == 10
    assert [len(b) for b in repo.batches] == [4, 4, 2]
