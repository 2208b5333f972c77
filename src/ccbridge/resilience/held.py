"""An ordered, bounded hold for work that must reach the database even through an outage.

Items are applied one at a time in arrival order. An item whose write fails because the
database is away is kept at the head and tried again (back-off, then wait for the database)
until it is written, so nothing behind it overtakes it. An item that fails for any other
reason is a bug: logged with its traceback and skipped, so it cannot wedge the queue.
Past ``capacity`` new items are dropped and counted (docs/ops.md, "Failure modes").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from ccbridge.observability.metrics import HeldBacklogMetrics
from ccbridge.resilience.backoff import Backoff

log = structlog.get_logger(__name__)

T = TypeVar("T")

NEAR_BOUND = 0.8
"""Share of the capacity at which a warning is logged (once per crossing)."""

ErrorReport = Callable[[BaseException, str], bool]
"""Report a failure; True when it means "the database is away" (retry), False for a bug."""


class HeldQueue(Generic[T]):
    """Work of one ``kind`` (``seats``, ``recordings``) held in order until it is applied."""

    def __init__(
        self,
        kind: str,
        apply: Callable[[T], Awaitable[object]],
        *,
        capacity: int,
        on_error: ErrorReport | None = None,
        wait_ready: Callable[[], Awaitable[None]] | None = None,
        metrics: HeldBacklogMetrics | None = None,
        backoff: Backoff | None = None,
        on_done: Callable[[T], None] | None = None,
        log_context: Callable[[T], dict[str, object]] | None = None,
    ) -> None:
        """Nothing is applied until :meth:`run` is scheduled; *on_done* is told each item
        that left the hold (applied, or skipped as a bug); *log_context* names an item in
        every log line emitted while it is applied (e.g. its interface or call id)."""
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.kind = kind
        self._apply = apply
        self._capacity = capacity
        self._on_error = on_error
        self._wait_ready = wait_ready
        self._metrics = metrics
        self._backoff = backoff or Backoff(initial=0.2, maximum=5.0)
        self._on_done = on_done
        self._log_context = log_context
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        self._warned = False
        self.dropped = 0
        self.applied = 0
        self.retries = 0
        self.failed = 0
        if metrics is not None:
            metrics.capacity.labels(kind=kind).set(capacity)
            metrics.held.labels(kind=kind).set(0)

    def __len__(self) -> int:
        """Items waiting, including one being applied."""
        return len(self._items)

    @property
    def capacity(self) -> int:
        """The bound."""
        return self._capacity

    def put(self, item: T) -> bool:
        """Hold *item* (never blocks); False when the bound is reached and it was dropped."""
        if len(self._items) >= self._capacity:
            self.dropped += 1
            if self._metrics is not None:
                self._metrics.dropped.labels(kind=self.kind).inc()
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error(
                    "held_writes_dropped",
                    kind=self.kind,
                    capacity=self._capacity,
                    dropped=self.dropped,
                )
            return False
        self._items.append(item)
        self._ready.set()
        self._changed()
        return True

    def discard(self) -> int:
        """Drop every held item unapplied; return how many (a node that lost the PBX, ADR
        0026: the new owner rebuilds this state from the PBX). An item being applied now
        finishes its attempt."""
        dropped = len(self._items)
        self._items.clear()
        self._changed()
        if dropped:
            log.warning("held_writes_discarded", kind=self.kind, items=dropped)
        return dropped

    def _changed(self) -> None:
        size = len(self._items)
        if self._metrics is not None:
            self._metrics.held.labels(kind=self.kind).set(size)
        if size >= NEAR_BOUND * self._capacity:
            if not self._warned:
                self._warned = True
                log.warning(
                    "held_writes_near_bound", kind=self.kind, held=size, capacity=self._capacity
                )
        elif self._warned and size < NEAR_BOUND * self._capacity / 2:
            self._warned = False

    async def run(self) -> None:
        """Apply held items in order until cancelled."""
        while True:
            while not self._items:
                self._ready.clear()
                await self._ready.wait()
            item = self._items[0]
            if await self._apply_one(item):
                if self._items and self._items[0] is item:  # not discarded meanwhile
                    self._items.popleft()
                self._changed()
                if self._on_done is not None:
                    self._on_done(item)

    async def _apply_one(self, item: T) -> bool:
        """True when the item is done with (applied, or skipped as a bug); False to retry."""
        context = self._log_context(item) if self._log_context is not None else {}
        with structlog.contextvars.bound_contextvars(**context):
            return await self._attempt(item)

    async def _attempt(self, item: T) -> bool:
        try:
            await self._apply(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage = self._on_error(exc, self.kind) if self._on_error is not None else False
            if not outage:
                self.failed += 1
                log.exception("held_write_failed", kind=self.kind)
                return True
            self.retries += 1
            await asyncio.sleep(self._backoff.next_delay())
            if self._wait_ready is not None:
                await self._wait_ready()
            return False
        self._backoff.reset()
        self.applied += 1
        return True
