"""An in-memory lease store with the database's semantics and a switch to cut it off; and
the wait the HA unit tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

GUARD = 30.0


async def until(cond: Callable[[], bool], what: str) -> None:
    """Wait for a condition (the guard only stops a hang; no timing is asserted)."""
    try:
        async with asyncio.timeout(GUARD):
            while not cond():  # noqa: ASYNC110
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


class StoreUnavailable(ConnectionError):
    """The store is cut off (a partition)."""


@dataclass
class _Row:
    node: str
    epoch: int
    expires_at: float


class MemoryLeases:
    """``PgPbxLeases`` in memory: one clock (monotonic), the same conditional upserts."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}
        self.cut_nodes: set[str] = set()
        self.stall_nodes: set[str] = set()
        self.releases: list[tuple[str, int]] = []

    def _check(self, node: str) -> None:
        if node in self.cut_nodes:
            raise StoreUnavailable(f"{node} cannot reach the database")

    async def _maybe_stall(self, node: str) -> None:
        while node in self.stall_nodes:  # noqa: ASYNC110 (a request that hangs: half-open link)
            await asyncio.sleep(0.01)

    async def acquire(self, pbx: str, node: str, ttl: float, *, deadline: float) -> int | None:
        self._check(node)
        now = time.monotonic()
        row = self.rows.get(pbx)
        if row is not None and row.expires_at >= now:
            return None
        epoch = 1 if row is None else row.epoch + 1
        self.rows[pbx] = _Row(node, epoch, now + ttl)
        return epoch

    async def renew(self, pbx: str, node: str, epoch: int, ttl: float, *, deadline: float) -> bool:
        self._check(node)
        await self._maybe_stall(node)
        now = time.monotonic()
        row = self.rows.get(pbx)
        if row is None or (row.node, row.epoch) != (node, epoch) or row.expires_at <= now:
            return False
        row.expires_at = now + ttl
        return True

    async def release(self, pbx: str, node: str, epoch: int, *, deadline: float) -> None:
        self._check(node)
        row = self.rows.get(pbx)
        if row is not None and (row.node, row.epoch) == (node, epoch):
            row.expires_at = time.monotonic() - 0.001
            self.releases.append((node, epoch))

    async def close(self) -> None:
        return None
