"""CallBatchWriter: coalescing, size-triggered flush, retry without loss, final flush."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from ccbridge.db.batch_writer import CallBatchWriter
from ccbridge.db.journal import SqlJournal
from ccbridge.db.repositories import CallRepository
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.observability.metrics import Metrics
from tests.support.call_writes import JournalledCalls

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


async def test_past_the_bound_new_calls_are_dropped_and_held_calls_still_coalesce() -> None:
    repo = MemoryRepo()
    metrics = Metrics()
    writer = CallBatchWriter(repo, max_pending=5, batch_size=1000, metrics=metrics.held)
    for i in range(10):
        writer.submit(call(f"c{i}"))
    assert (writer.pending, writer.overflows) == (5, 5)
    writer.submit(call("c0", version=2))  # a held call's newer snapshot still replaces it
    assert writer.pending == 5
    assert (
        metrics.registry.get_sample_value("ccbridge_held_writes_dropped_total", {"kind": "calls"})
        == 5
    )
    assert metrics.registry.get_sample_value("ccbridge_held_writes", {"kind": "calls"}) == 5
    assert await writer.flush() == 5
    assert metrics.registry.get_sample_value("ccbridge_held_writes", {"kind": "calls"}) == 0
    writer.submit(call("c7", version=3))  # room again: a later snapshot of a dropped call
    assert await writer.flush() == 1


async def test_large_backlog_is_written_in_batch_size_chunks() -> None:
    repo = MemoryRepo()
    writer = CallBatchWriter(repo, batch_size=4)
    for i in range(10):
        writer.submit(call(f"c{i}"))
    assert await writer.flush() == 10
    assert [len(b) for b in repo.batches] == [4, 4, 2]


async def test_held_records_go_back_ahead_of_later_ones_in_their_order() -> None:
    class FailOnce(MemoryRepo):
        failed = False

        async def upsert_many(self, records: Sequence[CallRecord]) -> int:
            if not self.failed:
                self.failed = True
                writer.submit(call("late", 1))  # arrives while the failing flush runs
                raise ConnectionError("database went away")
            return await super().upsert_many(records)

    writer = CallBatchWriter(FailOnce())
    for i in range(3):
        writer.submit(call(f"c{i}", 1))
    with pytest.raises(ConnectionError):
        await writer.flush()
    await writer.flush()
    repo = writer._repo
    assert isinstance(repo, MemoryRepo)
    assert [r.call_id for r in repo.batches[0]] == ["c0", "c1", "c2", "late"]


async def test_failed_flush_is_reported_to_the_availability_tracker() -> None:
    reported: list[tuple[str, str]] = []

    def on_error(exc: BaseException, component: str) -> bool:
        reported.append((type(exc).__name__, component))
        return True

    class DownOnce(MemoryRepo):
        down = True

        async def upsert_many(self, records: Sequence[CallRecord]) -> int:
            if self.down:
                self.down = False
                raise ConnectionError("database went away")
            return await super().upsert_many(records)

    repo = DownOnce()
    writer = CallBatchWriter(repo, flush_interval=0.01, retry_initial=0.01, on_error=on_error)
    async with running(writer):
        writer.submit(call("c1"))
        async with asyncio.timeout(5):
            while not repo.batches:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    assert reported == [("ConnectionError", "call-writer")]


async def test_near_the_bound_a_warning_is_logged_once() -> None:
    writer = CallBatchWriter(MemoryRepo(), max_pending=10)
    with capture_logs() as captured:
        for i in range(10):
            writer.submit(call(f"c{i}"))
    near = [e for e in captured if e["event"] == "held_writes_near_bound"]
    assert [(e["held"], e["capacity"]) for e in near] == [(8, 10)]


async def test_a_retry_after_an_ambiguous_commit_writes_no_event_twice(
    engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    """The commit reached the database but its answer was lost: the whole batch is retried,
    and neither the call rows nor the journal get anything twice."""
    journal = SqlJournal(session_factory)
    inner = JournalledCalls(engine, journal)

    class LostAnswer:
        lost = True

        async def upsert_many(self, records: Sequence[CallRecord]) -> int:
            written = await inner.upsert_many(records)
            if self.lost:
                self.lost = False
                raise ConnectionResetError("connection lost after COMMIT")
            return written

    writer = CallBatchWriter(LostAnswer())
    writer.submit(call("c1", 1, state=CallState.QUEUED, queued_at=T0))
    with pytest.raises(ConnectionResetError):
        await writer.flush()
    assert writer.pending == 1
    await writer.flush()
    events = await journal.list_after("acme", 0, 100)
    assert [(e.type, e.call_id) for e in events] == [("call.queued", "c1")]
    assert await inner.count() == 1
