"""A table read whole and kept in memory for calls, reloaded when this process changes it (at
once) and every few seconds (changes made by another process)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")
DEFAULT_TTL_SECONDS = 30.0


class SnapshotCache(Generic[T]):
    """The last snapshot ``load`` returned; :meth:`invalidate` makes the next read load again.

    A load that started before an invalidation never satisfies a read made after it, so an
    API change is seen by the very next call. While the store cannot be read, the last
    snapshot stands; with none yet, the read fails.
    """

    def __init__(
        self,
        load: Callable[[], Awaitable[T]],
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._monotonic = monotonic
        self._value: T | None = None
        self._loaded_at = -float("inf")
        self._generation = 0
        self._loaded_generation = -1
        self._loading: tuple[int, asyncio.Future[T]] | None = None
        self.loads = 0

    def invalidate(self) -> None:
        """The store changed: the next read loads a fresh snapshot."""
        self._generation += 1

    async def get(self) -> T:
        """The snapshot, loaded again when invalidated or older than ``ttl`` seconds.

        Merely old (not invalidated), the snapshot answers at once and is reloaded in the
        background: a call never waits on a slow or unreachable store for data it has.
        """
        fresh = self._monotonic() - self._loaded_at < self._ttl
        if self._value is not None and self._loaded_generation == self._generation:
            if not fresh and self._loading is None:
                future = asyncio.ensure_future(self._reload(self._generation))
                self._loading = (self._generation, future)
            return self._value
        if self._loading is None or self._loading[0] != self._generation:
            future = asyncio.ensure_future(self._reload(self._generation))
            self._loading = (self._generation, future)
        return await asyncio.shield(self._loading[1])

    async def _reload(self, generation: int) -> T:
        try:
            self.loads += 1
            value = await self._load()
        except Exception:
            if self._value is None:
                raise
            log.exception("routing_cache_unreadable")
            self._loaded_at = self._monotonic()  # keep the snapshot; try again after ``ttl``
            return self._value
        finally:
            if self._loading is not None and self._loading[0] == generation:
                self._loading = None
        if generation >= self._loaded_generation:
            self._value, self._loaded_at, self._loaded_generation = (
                value,
                self._monotonic(),
                generation,
            )
        return value
