"""Batch writer: keeps database round-trips off the AMI event path and loses nothing on errors.

While the database is away the snapshots stay held here (one per call: a later snapshot of a
call replaces the earlier one, and journal events are derived from the stored record, so no
step is lost) and are written, oldest held first, when it returns. The hold is bounded by
distinct calls; see :class:`CallBatchWriter` and docs/ops.md, "Failure modes".
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from ccbridge.db.call_batches import FencedWrite
from ccbridge.domain.calls.model import CallRecord
from ccbridge.observability.metrics import HeldBacklogMetrics
from ccbridge.resilience.held import NEAR_BOUND, ErrorReport

log = structlog.get_logger(__name__)


class CallUpserter(Protocol):
    """What the writer needs from storage (``CallRepository`` fits)."""

    async def upsert_many(self, records: Sequence[CallRecord]) -> int:
        """Write one batch atomically."""
        ...


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot of the writer's counters for /metrics and tests."""

    pending: int
    flushed_total: int
    flush_failures: int
    last_flush_ms: float
    overflows: int
    """Snapshots of calls not yet held that were dropped because the hold was full."""


HELD_KIND = "calls"


class CallBatchWriter:
    """Coalesce call snapshots by call_id and write them in batches (implements ``CallSink``).

    Bound: at most ``max_pending`` distinct calls are held. Past it a snapshot of a call
    already held still replaces the held one; a snapshot of any other call is dropped,
    counted (``overflows``, ``ccbridge_held_writes_dropped{kind="calls"}``) and logged. Each
    snapshot is the call's whole state, so a dropped one is lost only if no later snapshot of
    that call reaches the writer once there is room again (a call that ended while full).
    """

    def __init__(
        self,
        repo: CallUpserter,
        *,
        flush_interval: float = 0.2,
        batch_size: int = 1000,
        max_pending: int = 100_000,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        metrics: HeldBacklogMetrics | None = None,
        on_error: ErrorReport | None = None,
    ) -> None:
        """Configure; nothing runs until :meth:`run` is scheduled. *on_error* is told every
        failed flush (the database availability tracker)."""
        if batch_size < 1 or max_pending < 1 or flush_interval <= 0:
            raise ValueError("batch_size, max_pending and flush_interval must be positive")
        self._repo = repo
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._pending: dict[str, CallRecord] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self.flushed_total = 0
        self.flush_failures = 0
        self.fenced_total = 0
        """Snapshots refused because this node no longer owned the PBX (dropped, not held)."""
        self.last_flush_ms = 0.0
        self.overflows = 0
        self._metrics = metrics
        self._on_error = on_error
        self._near_bound = False
        if metrics is not None:
            metrics.capacity.labels(kind=HELD_KIND).set(max_pending)
            metrics.held.labels(kind=HELD_KIND).set(0)

    @property
    def pending(self) -> int:
        """Number of distinct calls waiting to be written."""
        return len(self._pending)

    def stats(self) -> WriterStats:
        """Return the counters as one consistent snapshot."""
        return WriterStats(
            pending=self.pending,
            flushed_total=self.flushed_total,
            flush_failures=self.flush_failures,
            last_flush_ms=self.last_flush_ms,
            overflows=self.overflows,
        )

    def submit(self, record: CallRecord) -> None:
        """Queue *record* without blocking; an older version never replaces a newer one."""
        seen = self._pending.get(record.call_id)
        if seen is not None and seen.version > record.version:
            return
        if seen is None and len(self._pending) >= self._max_pending:
            self._drop(record)
            return
        self._pending[record.call_id] = record
        size = len(self._pending)
        self._held_changed()
        if size >= self._batch_size:
            self._wake.set()

    def _drop(self, record: CallRecord) -> None:
        """The hold is full: count and log the snapshot of a call that is not held."""
        self.overflows += 1
        if self._metrics is not None:
            self._metrics.dropped.labels(kind=HELD_KIND).inc()
        if self.overflows == 1 or self.overflows % 1000 == 0:
            log.error(
                "call_writer_hold_full",
                call_id=record.call_id,
                pending=len(self._pending),
                max_pending=self._max_pending,
                dropped=self.overflows,
            )
        self._wake.set()

    def _held_changed(self) -> None:
        """Publish the hold's size; warn once each time it crosses 80 % of the bound."""
        size = len(self._pending)
        if self._metrics is not None:
            self._metrics.held.labels(kind=HELD_KIND).set(size)
        if size >= NEAR_BOUND * self._max_pending:
            if not self._near_bound:
                self._near_bound = True
                log.warning(
                    "held_writes_near_bound", kind=HELD_KIND, held=size, capacity=self._max_pending
                )
        elif self._near_bound and size < NEAR_BOUND * self._max_pending / 2:
            self._near_bound = False

    def discard(self) -> int:
        """Drop every held snapshot unwritten; return how many. For a node that lost the PBX
        (ADR 0026): the new owner rebuilds those calls from the PBX, and a late write of an
        older state must not land over what it writes."""
        dropped = len(self._pending)
        self._pending = {}
        self._held_changed()
        if dropped:
            log.warning("call_writer_discarded", snapshots=dropped)
        return dropped

    async def flush(self) -> int:
        """Write everything pending now, in ``batch_size`` chunks; raise if a chunk fails.

        Records of a failed chunk (and later ones) go back to the pending set unless a newer
        version arrived meanwhile, so a retry writes them again.
        """
        async with self._lock:
            return await self._flush_locked()

    async def _flush_locked(self) -> int:
        """Drain the pending set; the caller holds the lock."""
        if not self._pending:
            return 0
        taken, self._pending = self._pending, {}
        self._held_changed()
        batch = list(taken.values())
        written = 0
        started = time.perf_counter()
        for start in range(0, len(batch), self._batch_size):
            chunk = batch[start : start + self._batch_size]
            try:
                await self._repo.upsert_many(chunk)
            except FencedWrite:
                # This node lost the PBX (ADR 0026): what it held is the new owner's to rebuild.
                self.fenced_total += len(batch) - start
                log.warning("call_writer_fenced", dropped=len(batch) - start)
                break
            except BaseException as exc:  # cancellation must not lose records either
                self._requeue(batch[start:])
                if isinstance(exc, Exception):
                    self.flush_failures += 1
                raise
            written += len(chunk)
            self.flushed_total += len(chunk)
        self.last_flush_ms = (time.perf_counter() - started) * 1000
        return written

    def _requeue(self, records: Sequence[CallRecord]) -> None:
        """Put unwritten records back ahead of what arrived during the flush (they are older),
        each yielding to a newer version of the same call submitted meanwhile."""
        arrived = self._pending
        held: dict[str, CallRecord] = {}
        for record in records:
            newer = arrived.pop(record.call_id, None)
            held[record.call_id] = newer if newer and newer.version > record.version else record
        held.update(arrived)
        self._pending = held
        self._held_changed()

    async def run(self) -> None:
        """Flush every ``flush_interval`` or on demand until :meth:`stop`; retry with back-off.

        Schedule it in the TaskGroup and call :meth:`stop` on shutdown for the final flush.
        """
        delay = self._retry_initial
        failing = False
        while not self._stop.is_set():
            if not failing:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._flush_interval):
                        await self._wake.wait()
                self._wake.clear()
                if self._stop.is_set():
                    break
            try:
                await self.flush()
            except Exception as exc:  # the loop must survive any storage error
                if self._on_error is not None:
                    self._on_error(exc, "call-writer")
                log.warning(
                    "call_writer_flush_failed",
                    error=repr(exc),
                    pending=self.pending,
                    retry_in_s=round(delay, 3),
                )
                failing = True
                await self._sleep_unless_stopping(delay)
                delay = min(delay * 2, self._retry_max) * random.uniform(0.8, 1.0)
            else:
                if failing:
                    log.info("call_writer_flush_recovered", flushed_total=self.flushed_total)
                failing = False
                delay = self._retry_initial

    async def _sleep_unless_stopping(self, delay: float) -> None:
        """Back off, but wake early when stop() is called."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stop.wait()

    async def stop(self, *, attempts: int = 3) -> None:
        """End the run loop and write what is left; raise if it still cannot be written."""
        self._stop.set()
        self._wake.set()
        delay = self._retry_initial
        for attempt in range(1, attempts + 1):
            try:
                await self.flush()
            except Exception:
                if attempt == attempts:
                    log.error("call_writer_final_flush_failed", pending=self.pending)
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
            else:
                return
